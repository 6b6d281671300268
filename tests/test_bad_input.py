"""Bad input, hostile tokens and failures: clear errors, nothing lost, nothing injected.

Every error is a SymtransError that says what was expected, what was given and what to do;
the CLI prints one line and exits 2 (1 when the identity does not hold); files are written
atomically; pickle checkpoints are refused unless the user opts in.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

import symtrans as st
from symtrans.cli import main
from symtrans.models.facts import CAPITALS, DEMO_ANSWER, DEMO_PROMPT
from symtrans.report import pdf


@pytest.fixture(scope="module")
def model(bridge):  # type: ignore[no-untyped-def]
    return bridge("tiny-capitals")


@pytest.fixture(scope="module")
def demo(model):  # type: ignore[no-untyped-def]
    return st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")


def run_main(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse's own errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


# -- errors through the API -------------------------------------------------------------------
def test_nan_in_weights_is_a_clear_error(model_dirs):
    broken = st.load_model(str(model_dirs["random-gpt2"]))
    with torch.no_grad():
        broken.blocks[1].mlp.out.weight[0, 0] = float("nan")  # type: ignore[attr-defined]
    match = r"NaN or inf in the model's .* for prompt 'Dublin.*Check the weights"
    with pytest.raises(st.NonFiniteError, match=match):
        st.decompose(broken, DEMO_PROMPT, answer=" Ireland")
    with pytest.raises(st.NonFiniteError, match=match):
        st.patch(broken, [DEMO_PROMPT], [DEMO_PROMPT.replace("Dublin", "Paris")], [" Ireland"])


def test_pickle_checkpoint_refused_unless_allowed(model_dirs, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "pickled"
    AutoModelForCausalLM.from_pretrained(model_dirs["random-gpt2"]).save_pretrained(folder)
    AutoTokenizer.from_pretrained(model_dirs["random-gpt2"]).save_pretrained(folder)
    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")  # an old-style checkpoint
    weights.unlink()
    assert not list(folder.glob("*.safetensors")) and list(folder.glob("*.bin"))
    with pytest.raises(st.UnsafeCheckpointError, match=r"pytorch_model\.bin.*allow_pickle=True"):
        st.load_model(folder)
    model = st.load_model(folder, allow_pickle=True)
    st.decompose(model, DEMO_PROMPT, answer=" Ireland").verify(atol=1e-10)
    code, _, err = run_main(["verify", "--model", str(folder), "--prompt", "x", "--answer", " x"])
    assert code == 2 and "--allow-pickle" in err


@pytest.mark.parametrize("atol", [-1.0, float("nan"), float("inf"), "1e-3"])
def test_bad_atol(demo, atol):
    with pytest.raises(st.InvalidArgumentError, match="finite number >= 0"):
        demo.verify(atol)


def test_bad_top_k(demo):
    with pytest.raises(st.InvalidArgumentError, match="non-negative int, got -1"):
        demo.to_markdown(top_k=-1)


def test_template_missing_a_variable(demo, tmp_path):
    (tmp_path / "report.md").write_text("# \\VAR{title_that_does_not_exist}\n")
    with pytest.raises(st.TemplateError, match="title_that_does_not_exist"):
        demo.to_markdown(templates=tmp_path)
    with pytest.raises(st.TemplateError, match="no template 'report.html'"):
        demo.to_html(templates=tmp_path)


def test_users_own_template_folder(demo, tmp_path):
    (tmp_path / "report.md").write_text("prompt=\\VAR{prompt} verdict=\\VAR{verdict}\n")
    assert (
        demo.to_markdown(templates=tmp_path)
        == "prompt=Dublin is the capital city of verdict=**Pass**\n"
    )


# -- files ---------------------------------------------------------------------------------
def test_failed_pdf_leaves_existing_file_untouched(demo, tmp_path, monkeypatch):
    target = tmp_path / "report.pdf"
    target.write_bytes(b"%PDF old report")
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no LaTeX
    monkeypatch.setattr(pdf, "has_typst", lambda: False)  # and no Typst either
    with pytest.raises(st.LatexNotFoundError, match="apt-get install texlive-latex-recommended"):
        demo.save(target)
    assert target.read_bytes() == b"%PDF old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]  # no temporary left


def test_no_latex_through_the_cli(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)  # no LaTeX
    monkeypatch.setattr(pdf, "has_typst", lambda: False)  # and no Typst (else it writes the PDF)
    code, out, err = run_main(
        [
            "report",
            "--prompt",
            DEMO_PROMPT,
            "--answer",
            DEMO_ANSWER,
            "--format",
            "md,pdf",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 2 and err.count("\n") == 1 and "install LaTeX" in err
    code, out, _ = run_main(["demo", "-o", str(tmp_path / "demo")])
    assert code == 0 and "skipped report.pdf" in out
    assert {p.suffix for p in (tmp_path / "demo").iterdir()} == {".md", ".tex", ".html", ".svg"}


def test_failure_midway_keeps_the_old_file(demo, tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    target.write_text("old")
    import symtrans.report as report

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report.os, "replace", boom)
    with pytest.raises(st.SymtransError, match="No space left on device"):
        demo.save(target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unwritable_destination(demo, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(st.SymtransError, match="cannot write"):
        demo.save(blocker / "report.md")
    code, _, err = run_main(
        ["report", "--prompt", DEMO_PROMPT, "--answer", DEMO_ANSWER, "-o", str(blocker / "out")]
    )
    assert code == 2 and "cannot write" in err and "Traceback" not in err


def test_output_folders_are_created(demo, tmp_path):
    path = Path(demo.save(tmp_path / "a" / "b" / "report.html"))
    assert path.exists() and oct(path.stat().st_mode & 0o777) != "0o600"


def test_unknown_suffix(demo, tmp_path):
    with pytest.raises(st.InvalidArgumentError, match=r"'\.docx' is not a report format"):
        demo.save(tmp_path / "r.docx")


# -- fuzzing -------------------------------------------------------------------------------
# Half the prompts are facts the model knows (so the exact path is taken often), half any text.
PROMPTS = hs.one_of(
    hs.sampled_from([f"{city} is the capital city of" for city, _ in CAPITALS[:20]]),
    hs.text(alphabet=hs.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
)
ANSWERS = hs.one_of(
    hs.sampled_from([" Ireland", " France", "Ireland", " is", "", " Dublin x"]), hs.text(max_size=6)
)
SPLITS = hs.one_of(hs.sampled_from(st.SPLITS), hs.text(max_size=8))
POSITIONS = hs.one_of(hs.just(-1), hs.integers(min_value=-80, max_value=80))


def test_api_fuzz_adds_up_or_says_why(model):
    """Any prompt, answer, vs, split and position: an exact decomposition, or a SymtransError
    whose message names what was given — never another exception. Both paths are taken:
    the counts of exact decompositions and of refusals are asserted."""
    outcomes: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(PROMPTS, ANSWERS, hs.one_of(hs.none(), ANSWERS), SPLITS, POSITIONS)
    def case(prompt, answer, vs, split, position):  # type: ignore[no-untyped-def]
        try:
            d = st.decompose(model, prompt, answer=answer, vs=vs, split=split, position=position)
        except st.SymtransError as exc:
            message = str(exc)
            assert len(message) > 30 and "\n" not in message
            outcomes["refused"] += 1
            return
        d.verify()
        assert abs(d.total - d.model_logit) <= 1e-10
        outcomes["exact"] += 1

    case()
    assert outcomes["exact"] >= 10 and outcomes["refused"] >= 100, outcomes


def test_cli_fuzz_exit_codes_and_one_line(tmp_path_factory):
    """Any input to `verify` and `report`: exit 0 with the verification line, or exit 2 with
    one line on stderr. Both paths are taken (their counts are asserted)."""
    outcomes: Counter[int] = Counter()

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(PROMPTS, ANSWERS, SPLITS, POSITIONS, hs.sampled_from(["verify", "report"]))
    def case(prompt, answer, split, position, cmd):  # type: ignore[no-untyped-def]
        args = [cmd, "--prompt", prompt, "--answer", answer, "--split", split]
        args.append(f"--position={position}")
        if cmd == "report":
            args += ["-o", str(tmp_path_factory.mktemp("r")), "--format", "md,html"]
        code, out, err = run_main(args)
        assert code in (0, 2), (args, code, err)
        assert "Traceback" not in err
        if code == 2:
            assert err.startswith("symtrans: error: ") and err.count("\n") == 1
        else:
            assert out.rstrip().splitlines()[-1].startswith("ok: sum of")
        outcomes[code] += 1

    case()
    assert outcomes[0] >= 5 and outcomes[2] >= 50, outcomes
