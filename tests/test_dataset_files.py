"""Studies over dataset files (issue 15): ``symtrans dataset`` reads .jsonl/.csv prompts,
writes Parquet or CSV tables that hold the same numbers as ``st.decompose`` (and Hugging
Face's own logits), resumes after an interrupt to exactly the tables of an uninterrupted run,
and refuses bad input before writing anything; ``to_pandas`` gives tidy frames."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symtrans as st
from symtrans import cli
from symtrans.analyses import dataset_files

from . import reference

pd = pytest.importorskip("pandas", reason="the symtrans[data] extra is not installed")

ROWS = [
    ("Dublin is the capital city of", " Ireland", " France"),
    ("Paris is the capital city of", " France", " Ireland"),
    ("Berlin is the capital city of", " Germany", None),
    ("Rome is the capital city of", " Italy", " Spain"),
    ("Madrid is the capital city of", " Spain", " Italy"),
]


def _jsonl(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    with path.open("w") as fh:
        for p, a, v in rows:
            fh.write(json.dumps({"prompt": p, "answer": a, **({"vs": v} if v else {})}) + "\n")
    return path


def _csv(path: Path, rows: list[tuple[str, str, str | None]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["prompt", "answer", "vs"])
        writer.writerows([(p, a, v or "") for p, a, v in rows])
    return path


def _tables(out: Path, fmt: str) -> tuple[Any, Any]:
    if fmt == "csv":
        return pd.read_csv(out / "prompts.csv"), pd.read_csv(out / "terms.csv")
    return pd.read_parquet(out / "prompts"), pd.read_parquet(out / "terms")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["dataset", "--no-progress", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("source", "fmt"), [("jsonl", "parquet"), ("csv", "csv")])
def test_the_tables_hold_the_decomposition(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bridge: Any,
    hf_model: Any,
    source: str,
    fmt: str,
) -> None:
    rows = ROWS * 3
    file = (_jsonl if source == "jsonl" else _csv)(tmp_path / f"p.{source}", rows)
    code, out, err = _run(
        capsys, "--file", str(file), "--split", "heads", "--format", fmt, "--batch-size", "4",
        "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0 and err == "" and "wrote 15 prompts" in out
    prompts, terms = _tables(tmp_path / "out", fmt)
    assert list(prompts["index"]) == list(range(15)) and list(prompts["prompt"]) == [
        r[0] for r in rows
    ]
    model = bridge("tiny-capitals")
    b = st.decompose(
        model, [r[0] for r in rows], [r[1] for r in rows], vs=[r[2] for r in rows], split="heads"
    )
    values = terms.pivot(index="index", columns="term", values="value")
    names = [str(label) for label in b.labels]
    np.testing.assert_allclose(
        values[names].to_numpy(), b.values, rtol=1e-13, atol=1e-14
    )  # batches of 4 against 15
    np.testing.assert_allclose(
        values["bias"].to_numpy(), b.constants, rtol=1e-13, atol=1e-14
    )  # batches of 4 against 15
    # Each prompt's rows add up to its total, and that is Hugging Face's own logit.
    sums = terms.groupby("index")["value"].sum().to_numpy()
    np.testing.assert_allclose(sums, prompts["total"].to_numpy(), rtol=0, atol=1e-12)
    hf = hf_model("tiny-capitals")
    tok = model.tokenizer
    for d in list(b)[:3]:
        a = tok.encode(d.answer, add_special_tokens=False)[0]
        v = None if d.vs is None else tok.encode(d.vs, add_special_tokens=False)[0]
        ref = reference.logit(hf, list(d.tokens), d.position, a, v)
        row = prompts[prompts["prompt"] == d.prompt].iloc[0]
        assert row["model_logit"] == pytest.approx(ref, abs=1e-12)
    heads = terms[terms["kind"] == "head_out"]
    assert set(heads["head"]) == set(range(4)) and heads["neuron"].isna().all()


class _Interrupt:
    """``decompose`` that raises KeyboardInterrupt (Ctrl-C) on its ``at``-th call."""

    def __init__(self, at: int) -> None:
        self.calls, self.at = 0, at
        self.real = dataset_files.decompose

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.real(*args, **kwargs)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_restart_continues_where_the_run_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    file = _jsonl(tmp_path / "p.jsonl", ROWS * 4)  # 20 prompts, 5 batches of 4
    common = ["--file", str(file), "--split", "neurons", "--format", fmt, "--batch-size", "4"]
    assert _run(capsys, *common, "-o", str(tmp_path / "whole"))[0] == 0

    monkeypatch.setattr(dataset_files, "decompose", _Interrupt(at=3))
    code, _, err = _run(capsys, *common, "-o", str(tmp_path / "cut"))
    assert code == 130 and "run the same command again to continue" in err
    assert "Traceback" not in err
    cut = tmp_path / "cut"
    assert (cut / "progress.jsonl").read_text().count("\n") == 2  # two whole batches
    # What an interrupt in the middle of writing a batch leaves behind, which must not count:
    if fmt == "csv":
        with (cut / "terms.csv").open("a") as fh:
            fh.write("8,L0N3,neuron,0,,3,,0.12")  # half a row of the third batch
    else:
        (cut / "terms" / "part-00002.parquet.partial").write_bytes(b"PAR1 half")
        (cut / "prompts" / "part-00002.parquet").write_bytes(b"not recorded")
    with (cut / "progress.jsonl").open("a") as fh:
        fh.write('{"batch": 3, "do')  # a progress line cut short

    monkeypatch.setattr(dataset_files, "decompose", _Interrupt(at=0))
    code, out, _ = _run(capsys, *common, "-o", str(cut))
    assert code == 0 and "continued after 8" in out
    for whole, resumed in zip(_tables(tmp_path / "whole", fmt), _tables(cut, fmt), strict=True):
        pd.testing.assert_frame_equal(
            whole.sort_values(list(whole.columns[:2])).reset_index(drop=True),
            resumed.sort_values(list(whole.columns[:2])).reset_index(drop=True),
        )
    # Running the finished command again adds nothing.
    code, out, _ = _run(capsys, *common, "-o", str(cut))
    assert code == 0 and "continued after 20" in out
    assert len(_tables(cut, fmt)[0]) == 20


def test_other_settings_in_the_folder_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = _jsonl(tmp_path / "p.jsonl", ROWS)
    out = str(tmp_path / "out")
    assert _run(capsys, "--file", str(file), "-o", out)[0] == 0
    code, _, err = _run(capsys, "--file", str(file), "--split", "heads", "-o", out)
    assert code == 2 and "split differ" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"prompt": "Dublin is the capital city of", "answer": " Ireland"}\n'
            '{"prompt": "Paris is", "answer": " Franceland and more"}\n',
            "line 2: answer",
        ),
        ('{"prompt": "Dublin is the capital city of"}\n', "no answer"),
        ("{not json\n", "line 1 is not JSON"),
        ('{"text": "Dublin"}\n', "'prompt' must be a non-empty string"),
    ],
)
def test_bad_input_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    file = tmp_path / "p.jsonl"
    file.write_text(content)
    code, out, err = _run(capsys, "--file", str(file), "-o", str(tmp_path / "out"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_a_csv_without_a_prompt_column_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "p.csv"
    file.write_text("text,answer\nDublin is the capital city of, Ireland\n")
    code, _, err = _run(capsys, "--file", str(file), "-o", str(tmp_path / "out"))
    assert code == 2 and "'prompt' column" in err and not (tmp_path / "out").exists()


# -- to_pandas ---------------------------------------------------------------------------


def test_tidy_frames(bridge: Any) -> None:
    model = bridge("tiny-capitals")
    prompts = [r[0] for r in ROWS]
    answers = [r[1] for r in ROWS]
    d = st.decompose(model, prompts[0], answers[0], vs=" France", split="heads")
    frame = d.to_pandas()
    assert list(frame.columns) == [
        "prompt", "answer", "vs", "position", "term", "kind", "layer", "head", "neuron",
        "source", "value",
    ]  # fmt: skip
    assert len(frame) == len(d.labels) + 1 and frame["value"].sum() == pytest.approx(d.total)
    head = frame[frame["term"] == "L1H2"].iloc[0]
    assert (head["layer"], head["head"], head["kind"]) == (1, 2, "head_out")
    assert frame[frame["term"] == "bias"].iloc[0]["value"] == d.constant

    b = st.decompose(model, prompts, answers, split="neurons")
    tidy = b.to_pandas()
    assert len(tidy) == len(prompts) * (len(b.labels) + 1)
    sums = tidy.groupby("prompt", sort=False)["value"].sum().to_numpy()
    np.testing.assert_allclose(sums, b.totals, rtol=0, atol=1e-12)
    neuron = tidy[(tidy["kind"] == "neuron")].iloc[5]
    assert neuron["term"] == f"L{neuron['layer']}N{neuron['neuron']}"

    ds = st.decompose_dataset(model, prompts, answers, split="positions", progress=False)
    frame = ds.to_pandas()
    assert set(frame["prompt"]) == set(prompts) and frame["source"].max() == ds.items[0][3]
    np.testing.assert_allclose(
        frame.groupby("prompt", sort=False)["value"].sum().to_numpy(), ds.totals, atol=1e-12
    )
    streamed = st.decompose_dataset(model, prompts, answers, progress=False, keep_values=False)
    with pytest.raises(st.InvalidArgumentError, match="keep_values=True"):
        streamed.to_pandas()


def test_without_pandas_the_error_names_the_extra(
    bridge: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = st.decompose(bridge("tiny-capitals"), ROWS[0][0], ROWS[0][1])
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(st.InvalidArgumentError, match=r"symtrans\[data\]"):
        d.to_pandas()
    file = _jsonl(tmp_path / "p.jsonl", ROWS)
    code, _, err = _run(capsys, "--file", str(file), "-o", str(tmp_path / "out"))
    assert code == 2 and "symtrans[data]" in err and not (tmp_path / "out").exists()


def test_nnsight_models_write_datasets_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], model_dirs: dict[str, Path]
) -> None:
    pytest.importorskip("nnsight", reason="the symtrans[nnsight] extra is not installed")
    file = _csv(tmp_path / "p.csv", ROWS)
    code, out, err = _run(
        capsys, "--file", str(file), "--library", "nnsight", "--split", "neurons", "--format",
        "csv", "-o", str(tmp_path / "out"),
    )  # fmt: skip
    assert code == 0, err
    prompts, _ = _tables(tmp_path / "out", "csv")
    assert (prompts["total"] - prompts["model_logit"]).abs().max() < 1e-12
