"""``st.patch``: seed 003's activation patching, cell by cell against the same patching done
with torch hooks on Hugging Face's own modules (:mod:`tests.reference_patching`), on every
family the fast path starts at a block for and on the embedded models; every explained cell
adds up to its effect; the report shows the heatmap and the explanations; bad input is one
clear error and nothing is written.

Hugging Face has two attention implementations whose float64 arithmetic differs: ``eager``
runs the softmax in float32 for GPT-NeoX and Llama and GPT-J's scores in float32, ``sdpa``
stays in float64 (up to 1e-7 apart on these random models). The reference uses the one the
bridge runs — Hugging Face's eager attention for Llama and GPT-J, TransformerLens's own
float64 attention (``sdpa``'s numbers) for GPT-2 and GPT-NeoX — and checks that its plain
forward pass is the bridge's to 1e-12 before any cell is compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.adapter import as_adapter
from symtrans.kinds import SITES, SPLITS
from symtrans.models.facts import CAPITALS, fact_prompt

from . import arch_models as am
from . import reference_patching as ref

ATOL = 1e-9  # float64, against Hugging Face's own forward with hooks
CLEAN = ["Dublin is the capital city of", "Paris is the capital city of"]
CORRUPTED = ["Paris is the capital city of", "Dublin is the capital city of"]
ANSWERS = [" Ireland", " France"]
VERSUS = [" France", " Ireland"]


def capital_pairs(n: int = 4) -> tuple[list[str], list[str], list[str], list[str]]:
    """Seed 003 on the embedded models: each fact against the next fact's city."""
    facts = CAPITALS[:n]
    clean = [fact_prompt(city) for city, _ in facts]
    corrupted = clean[1:] + clean[:1]
    answers = [f" {country}" for _, country in facts]
    return clean, corrupted, answers, answers[1:] + answers[:1]


# The attention implementation whose arithmetic the bridge runs, per model type.
ATTENTION = {"gpt2": "eager", "gpt_neox": "sdpa", "llama": "eager", "gptj": "eager"}


@pytest.fixture(scope="module")
def hf_ref() -> Callable[[Path], torch.nn.Module]:
    """``hf_ref(folder)``: the Hugging Face model in ``folder``, float64, loaded apart from
    TransformerLens, with the attention implementation of :data:`ATTENTION`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    cache: dict[Path, torch.nn.Module] = {}

    def get(folder: Path) -> torch.nn.Module:
        if folder not in cache:
            kind = AutoConfig.from_pretrained(folder).model_type
            cache[folder] = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float64, attn_implementation=ATTENTION[kind]
            ).eval()
        return cache[folder]

    return get


def reference_effects(hf: torch.nn.Module, model: Any, p: st.Patching) -> dict[str, Any]:
    """The clean and corrupted metrics and every cell's effect of ``p``, from ``hf`` with
    hooks, the token ids the adapter gives (BOS where the model prepends one)."""
    adapter = as_adapter(model)
    clean = torch.tensor([adapter.tokenize(x) for x in p.clean])
    corrupted = torch.tensor([adapter.tokenize(x) for x in p.corrupted])
    answer = torch.tensor([adapter.single_token(a, "answer") for a in p.answers])
    vs = (
        None
        if p.versus[0] is None
        else torch.tensor([adapter.single_token(v, "vs") for v in p.versus])
    )  # type: ignore[arg-type]
    with torch.no_grad():  # the reference computes what the bridge computes
        gap = (hf(clean).logits[:, -1] - model(clean)[:, -1]).abs().max()
    assert float(gap) <= 1e-12, float(gap)
    base = ref.metric(hf, corrupted, answer, vs)
    effects = np.array(
        [
            [
                ref.patched_metric(
                    hf, clean, corrupted, answer, vs, p.site, layer, index, p.positions
                )
                - base
                for index in p.columns
            ]
            for layer in range(p.effects.shape[0])
        ]
    )
    return {"clean": ref.metric(hf, clean, answer, vs), "corrupted": base, "effects": effects}


def worst_error(p: st.Patching, expected: dict[str, Any]) -> float:
    return max(
        abs(p.clean_metric - expected["clean"]),
        abs(p.corrupted_metric - expected["corrupted"]),
        float(np.max(np.abs(p.effects - expected["effects"]))),
    )


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("arch", am.HF_ARCHITECTURES)
def test_patching_is_hugging_faces_own_patching(arch_bridge, arch_dirs, hf_ref, arch, site):
    model = arch_bridge(arch, torch.float64, False)
    # the fast path (blocks below and positions before the patch not run) is what is checked
    assert as_adapter(model).resumable and as_adapter(model).runs_cells
    p = st.patch(model, CLEAN, CORRUPTED, ANSWERS, VERSUS, site=site, explain=0).verify()
    expected = reference_effects(hf_ref(arch_dirs[arch]), model, p)
    assert np.max(np.abs(expected["effects"])) > 1e-4  # the patches move the metric
    assert worst_error(p, expected) <= ATOL
    np.testing.assert_allclose(
        p.values,
        expected["effects"] / (expected["clean"] - expected["corrupted"]),
        rtol=0,
        atol=1e-7,
    )


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("name", ["tiny-capitals", "tiny-capitals-neox"])
def test_embedded_models_patch_as_hugging_face_does(bridge, model_dirs, hf_ref, name, site):
    model = bridge(name)
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site=site, explain=0).verify()
    expected = reference_effects(hf_ref(model_dirs[name]), model, p)
    assert abs(p.clean_metric - p.corrupted_metric) > 1.0  # the city swap flips the answer
    assert worst_error(p, expected) <= ATOL


def test_a_cell_patched_at_the_wrong_position_is_caught(bridge, model_dirs, hf_ref):
    """The comparison can fail: the reference patched one position off differs."""
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site="resid_pre", explain=0)
    expected = reference_effects(hf_ref(model_dirs["tiny-capitals"]), model, p)
    shifted = replace(p, effects=np.roll(p.effects, 1, axis=1))
    assert worst_error(shifted, expected) > 1.0


@pytest.mark.parametrize("compat", [False, True])
@pytest.mark.parametrize("arch", am.HF_ARCHITECTURES)
def test_a_pass_resumed_at_a_block_is_the_whole_pass(arch_bridge, arch, compat):
    """``forward_from`` on the fast path (blocks below not run) against the whole pass with
    resid_pre replaced: the same logits and activations."""
    from symtrans.adapter.protocol import Hook, HookKey
    from symtrans.trace.run import forward, forward_from

    adapter = as_adapter(arch_bridge(arch, torch.float64, compat))
    tokens = torch.tensor([adapter.tokenize(p) for p in CLEAN])
    dest = [tokens.shape[1] - 1] * 2
    resid = forward(adapter, tokens, dest, {HookKey(Hook.RESID_PRE, 1, all_positions=True)})
    x = resid.activations[HookKey(Hook.RESID_PRE, 1, all_positions=True)].clone()
    x[:, 2] += 0.5  # a residual no prompt gives
    keys = {HookKey(Hook.RESID_FINAL), HookKey(Hook.Z, 1), HookKey(Hook.MLP_OUT, 1)}
    fast = forward_from(adapter, 1, x, tokens, dest, keys)
    whole = forward(
        adapter, tokens, dest, keys, patches={HookKey(Hook.RESID_PRE, 1): lambda _: x.clone()}
    )
    assert adapter.resumable
    torch.testing.assert_close(fast.logits, whole.logits, rtol=0, atol=1e-13)
    for key in keys:
        torch.testing.assert_close(
            fast.activations[key], whole.activations[key], rtol=0, atol=1e-13
        )
    with pytest.raises(st.InvalidArgumentError, match="attn_out of block 0"):
        forward_from(adapter, 1, x, tokens, dest, {HookKey(Hook.ATTN_OUT, 0)})


class Without:
    """An adapter with some of its capabilities switched off."""

    def __init__(self, inner: Any, *off: str) -> None:
        self.inner, self.off = inner, off

    def __getattr__(self, name: str) -> Any:
        return False if name in self.off else getattr(self.inner, name)


@pytest.mark.parametrize(
    "off",
    [("runs_cells",), ("runs_cells", "resumable")],
    ids=["from-each-block", "whole-pass"],
)
def test_the_slower_passes_give_the_same_numbers(bridge, off):
    """An adapter that cannot run cells from a position runs them from their block (the
    positions before the patch too), and one that cannot start at a block runs the whole
    pass with resid_pre replaced: the same numbers (to rounding), every cell."""
    model = bridge("tiny-capitals-neox")
    clean, corrupted, answers, versus = capital_pairs(3)
    for site in SITES:
        fast = st.patch(model, clean, corrupted, answers, versus, site=site, explain=0)
        slow = st.patch(
            Without(as_adapter(model), *off),
            clean,
            corrupted,
            answers,
            versus,
            site=site,
            explain=0,
        )
        np.testing.assert_allclose(fast.effects, slow.effects, rtol=0, atol=1e-12)
        np.testing.assert_allclose(fast.controls, slow.controls, rtol=0, atol=1e-12)


@pytest.mark.parametrize("arch", am.HF_ARCHITECTURES)
def test_cells_run_from_a_position_are_the_whole_pass(arch_bridge, arch):
    """``run_cells`` (Hugging Face's own blocks on the bridge's weights, rows joining at
    their block, positions before ``offset`` from the corrupted run's keys and values)
    against the same rows run from their block at every position: every row's logits."""
    from symtrans.adapter.protocol import CellBatch, Hook, HookKey
    from symtrans.trace.run import forward, forward_cells

    adapter = as_adapter(arch_bridge(arch, torch.float64, False))
    assert adapter.runs_cells
    tokens = torch.tensor([adapter.tokenize(p) for p in CORRUPTED])
    n, length = tokens.shape
    keys = {HookKey(Hook.RESID_PRE, layer, all_positions=True) for layer in (0, 1)}
    run = forward(adapter, tokens, [length - 1] * n, keys)
    resid = [
        run.activations[HookKey(Hook.RESID_PRE, layer, all_positions=True)] for layer in (0, 1)
    ]
    offset = 2
    starts = torch.tensor([0, 0, 1, 1, 1])
    pairs = torch.tensor([0, 1, 1, 0, 1])
    x = torch.stack([resid[int(s)][int(p)] for s, p in zip(starts, pairs, strict=True)])
    x[0, offset] += 0.25  # a residual no prompt gives, at the first position run
    x[3, offset + 1] -= 0.5
    bump = torch.zeros(adapter.spec.n_heads, adapter.spec.d_head)
    bump[1] = 0.3

    def on_z(z: torch.Tensor) -> torch.Tensor:  # the rows starting at block 1, positions 2..
        assert z.shape[:2] == (3, length - offset), z.shape
        out = z.clone()
        out[1:, 1] += bump
        return out

    def on_attn(a: torch.Tensor) -> torch.Tensor:
        assert a.shape[:2] == (2, length - offset), a.shape
        out = a.clone()
        out[1, 0] *= 1.5
        return out

    batch = CellBatch(
        tokens=tokens,
        pairs=pairs,
        starts=starts,
        offset=offset,
        resid=x,
        patches={HookKey(Hook.Z, 1): on_z, HookKey(Hook.ATTN_OUT, 0): on_attn},
        columns=torch.tensor([[3, 4], [5, 6], [7, 8], [3, 9], [1, 2]]),
        prefix=adapter.key_values(tokens),
    )
    fast = forward_cells(adapter, batch)
    slow = forward_cells(Without(adapter, "runs_cells"), batch)
    whole = forward_cells(Without(adapter, "runs_cells", "resumable"), batch)
    assert fast.shape == (5, 2)
    assert float((slow - forward_cells(adapter, replace(batch, patches={}))).abs().max()) > 1e-3
    torch.testing.assert_close(fast, slow, rtol=0, atol=1e-13)
    torch.testing.assert_close(slow, whole, rtol=0, atol=1e-13)


def test_batches_of_any_size_give_the_same_numbers(bridge):
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs(3)
    one = st.patch(model, clean, corrupted, answers, versus, site="z", explain=0, batch_size=1)
    many = st.patch(model, clean, corrupted, answers, versus, site="z", explain=0, batch_size=1000)
    np.testing.assert_allclose(one.effects, many.effects, rtol=0, atol=1e-12)


def test_compatibility_mode_patches_and_adds_up(arch_bridge):
    model = arch_bridge("gpt2", torch.float64, True)
    p = st.patch(model, CLEAN, CORRUPTED, ANSWERS, VERSUS, site="attn_out", explain=2).verify()
    assert len(p.explained) == 2 and len(p.claims()) == p.effects.shape[0] + 2


def test_seed_normalisation_and_its_checks(bridge):
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site="resid_pre", explain=0)
    np.testing.assert_allclose(p.values, p.effects / (p.clean_metric - p.corrupted_metric))
    assert p.effects.shape == (2, len(p.token_strings)) and p.positions == tuple(range(7))
    # Patching every position of a block's input gives the clean run: the patches land.
    np.testing.assert_allclose(p.full, p.clean_metric, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.controls, p.corrupted_metric, rtol=0, atol=1e-12)
    # Position 0 (BOS) is the same in both runs: patching it changes nothing.
    assert np.all(p.effects[:, 0] == 0) or np.max(np.abs(p.effects[:, 0])) < 1e-12
    wrong = replace(p, controls=p.controls + 1e-3)
    with pytest.raises(st.IdentityError, match="resumed at this block"):
        wrong.verify()


def test_z_patches_each_head_at_the_given_positions(bridge, model_dirs, hf_ref):
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site="z", positions=[1, -1], explain=0)
    assert p.positions == (1, 6) and p.effects.shape == (2, 4)
    expected = reference_effects(hf_ref(model_dirs["tiny-capitals"]), model, p)
    assert worst_error(p, expected) <= ATOL


# -- explained cells ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def by_site(bridge) -> dict[str, st.Patching]:
    """Seed 003's four patchings of the capital facts, nothing explained yet."""
    clean, corrupted, answers, versus = capital_pairs()
    model = bridge("tiny-capitals")
    return {
        site: st.patch(model, clean, corrupted, answers, versus, site=site, explain=0)
        for site in SITES
    }


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("site", SITES)
def test_every_cell_is_an_exact_sum(bridge, by_site, site, split):
    model, p = bridge("tiny-capitals"), by_site[site]
    for layer, index, _, effect in p.top(2):
        e = p.explain(layer, index, model, split=split).verify()
        assert e.split == split and e.direct in e.labels and e.effect == effect
        assert abs(e.total - effect) <= 1e-12
        assert abs(effect) > 0.1  # the largest cells of a city swap are not rounding


def test_direct_part_is_the_patched_term(bridge):
    """Patching resid_pre at a position other than the last one reaches the logit only
    through later components: its own term at the destination does not change. At the last
    position it does, by the clean residual minus the corrupted one under the new scale."""
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site="resid_pre", explain=0)
    early = p.explain(1, 1, model, split="heads")
    last = p.explain(1, -1, model, split="heads")
    assert early.direct == lb.ResidPre(1) and early.direct_part == 0.0
    assert abs(last.direct_part) > 1.0
    # Upstream terms are the corrupted run's in both runs: exactly zero.
    z = p.explain(1, 1, model)  # same cell, the default split
    np.testing.assert_array_equal(z.deltas, early.deltas)
    for e in (early, last):
        assert abs(e.total - e.effect) <= 1e-12


def test_explained_head_keeps_its_own_term_in_every_split(bridge):
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site="z", explain=0)
    layer, head = 1, int(np.argmax(np.abs(p.effects[1])))
    parts = {split: p.explain(layer, head, model, split=split) for split in SPLITS}
    for split, e in parts.items():
        assert e.direct == lb.HeadOut(layer, head) and e.direct in e.labels, split
        assert abs(e.total - p.effects[layer, head]) <= 1e-12
    # The direct part is one number whatever the split around it.
    directs = [e.direct_part for e in parts.values()]
    assert max(directs) - min(directs) <= 1e-12


def test_an_explanation_missing_a_term_fails_its_check(bridge):
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, site="mlp_out", explain=1)
    e = p.explained[0]
    biggest = int(np.argmax(np.abs(e.deltas)))
    dropped = replace(e, deltas=np.where(np.arange(len(e.deltas)) == biggest, 0.0, e.deltas))
    with pytest.raises(st.IdentityError, match="the patching's effect"):
        dropped.verify()
    with pytest.raises(st.IdentityError):
        replace(p, explained=(dropped,)).verify()


def test_explain_needs_a_patched_cell_and_the_same_model(bridge):
    model = bridge("tiny-capitals")
    clean, corrupted, answers, versus = capital_pairs()
    p = st.patch(model, clean, corrupted, answers, versus, positions=[1, 6], explain=0)
    with pytest.raises(st.InvalidArgumentError, match="was not patched"):
        p.explain(0, 3, model)
    with pytest.raises(st.InvalidArgumentError, match="not a block"):
        p.explain(5, 1, model)
    with pytest.raises(st.SymtransError, match="pass the model"):
        p.explain(0, 1, bridge("tiny-capitals-neox"))


# -- reports and the CLI ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def capital_patching(bridge) -> st.Patching:
    clean, corrupted, answers, versus = capital_pairs()
    return st.patch(bridge("tiny-capitals"), clean, corrupted, answers, versus, explain=2)


def test_report_has_the_heatmap_and_the_explained_cells(capital_patching, tmp_path):
    p = capital_patching
    text = Path(p.save(tmp_path / "patching.md")).read_text()
    assert "(patching.patching.svg)" in text and (tmp_path / "patching.patching.svg").is_file()
    svg = (tmp_path / "patching.patching.svg").read_text()
    assert "Dublin_1" in svg and "of_6" in svg  # seed 003's token labels
    for e in p.explained:
        assert f"of block {e.layer} at position {e.index}: effect" in text
    assert "the final norm's scale" in text and "**Pass**" in text
    html = Path(p.save(tmp_path / "patching.html")).read_text()
    assert "<svg" in html and "Dublin_1" in html
    tex = Path(p.save(tmp_path / "patching.tex")).read_text()
    assert "Dublin\\_1" in tex and "\\begin{document}" in tex
    pdf = Path(p.save(tmp_path / "patching.pdf"))
    assert pdf.read_bytes().startswith(b"%PDF")
    cell = Path(p.explained[0].save(tmp_path / "cell.md")).read_text()
    assert "direct" in cell and "downstream" in cell


def run_cli(*args: str) -> Any:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "symtrans.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_patches_pairs_from_a_file(tmp_path):
    clean, corrupted, answers, versus = capital_pairs(3)
    pairs = tmp_path / "pairs.jsonl"
    import json

    pairs.write_text(
        "\n".join(
            json.dumps({"clean": c, "corrupted": k, "answer": a, "vs": v})
            for c, k, a, v in zip(clean, corrupted, answers, versus, strict=True)
        )
    )
    out = tmp_path / "out"
    proc = run_cli(
        "patch", "--pairs", str(pairs), "--site", "z", "--format", "md,html", "-o", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    assert "z over 3 pairs" in proc.stdout and "ok:" in proc.stdout
    assert (out / "patching.md").is_file() and (out / "patching.html").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corrupted", "Paris is the capital city"], "same number of tokens"),
        (["--corrupted", "Dublin is the capital city of"], "divides by zero"),
        (["--corrupted", "Paris is the capital city of", "--positions", "7"], "out of range"),
        (["--corrupted", "Paris is the capital city of", "--positions", "x"], "comma-separated"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    from symtrans.cli import main

    out = tmp_path / "out"
    base = ["patch", "--clean", "Dublin is the capital city of", "--answer", " Ireland"]
    assert main([*base, *args, "-o", str(out), "--format", "md"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_bad_pairs_file(tmp_path, capsys):
    from symtrans.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"clean": "a"}\n')
    assert main(["patch", "--pairs", str(bad)]) == 2
    assert "line 1" in capsys.readouterr().err
    assert main(["patch", "--pairs", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["patch", "--pairs", str(bad), "--clean", "x"]) == 2
    assert "not both" in capsys.readouterr().err


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"corrupted": ["Paris is the capital city"] * 2}, "same number of tokens"),
        (
            {
                "clean": ["Dublin is the capital city of", "The river is long and the city is"],
                "corrupted": ["Paris is the capital city of", "The river is long and the city is"],
            },
            "different token lengths",
        ),
        ({"corrupted": CLEAN}, "divides by zero"),
        ({"site": "resid_post"}, "unknown site 'resid_post'"),
        ({"positions": [7]}, "position 7 is out of range"),
        ({"positions": [1, 1]}, "twice"),
        ({"corrupted": CORRUPTED[:1]}, "same length"),
        ({"vs": [" France", None]}, "for some pairs and not others"),
        ({"batch_size": 0}, "batch_size must be an int >= 1"),
        ({"split": "everything"}, "unknown split"),
    ],
)
def test_bad_input_is_one_clear_error(bridge, kwargs, message):
    model = bridge("tiny-capitals")
    args: dict[str, Any] = {
        "clean": CLEAN,
        "corrupted": CORRUPTED,
        "answer": ANSWERS,
        "vs": VERSUS,
    } | kwargs
    with pytest.raises(st.SymtransError, match=message):
        st.patch(model, **args)


def test_mlp_out_of_an_attention_only_model_is_refused(arch_bridge):
    model = arch_bridge(am.ATTN_ONLY, torch.float64, False)
    with pytest.raises(st.InvalidArgumentError, match="no MLPs"):
        st.patch(model, CLEAN, CORRUPTED, ANSWERS, VERSUS, site="mlp_out")
