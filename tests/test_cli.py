"""The command line: demo, report, verify (exit 0 / 1 / 2), models; one line per error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from symtrans.cli import main
from symtrans.norm import FinalNorm

PROMPT = "Dublin is the capital city of"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "symtrans.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )


def test_demo_writes_the_report(tmp_path: Path):
    out = run_cli("demo", "-o", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr
    report = tmp_path / "demo" / "report.md"
    assert f"wrote {report}" in out.stdout
    text = report.read_text()
    assert "Dublin is the capital city of" in text
    assert "`␣Ireland`" in text
    assert r"\overline{\text{Ireland}}" in text and r"N \epsilon" in text
    assert "| 1 | `" in text  # the terms table
    assert "**Pass**: sum of terms" in text
    assert "Traceback" not in out.stderr


def test_verify_exit_zero_when_it_holds(capsys):
    code = main(
        [
            "verify",
            "--prompt",
            PROMPT,
            "--answer",
            " Ireland",
            "--vs",
            " France",
            "--split",
            "neurons",
        ]
    )
    assert code == 0
    assert capsys.readouterr().out.startswith("ok: sum of")


def test_verify_exit_one_on_mismatch(capsys, monkeypatch):
    def wrong_scale(self, x):  # type: ignore[no-untyped-def]
        c = self.center(x)
        return (c.pow(2).sum(-1) / self.d_model + self.eps).sqrt() * 1.01

    monkeypatch.setattr(FinalNorm, "scale", wrong_scale)
    code = main(["verify", "--prompt", PROMPT, "--answer", " Ireland"])
    captured = capsys.readouterr()
    assert code == 1
    assert "MISMATCH" in captured.out
    assert captured.err.count("\n") == 1 and "do not add up" in captured.err


@pytest.mark.parametrize(
    "args,needle",
    [
        (["verify", "--prompt", PROMPT, "--answer", "Ireland is"], "not a single token"),
        (
            ["verify", "--model", "/no/such/model", "--prompt", PROMPT, "--answer", " Ireland"],
            "not a model directory",
        ),
        (["verify", "--prompt", "", "--answer", " Ireland"], "empty"),
        (
            ["verify", "--prompt", PROMPT, "--answer", " Ireland", "--position", "50"],
            "out of range",
        ),
        (
            ["verify", "--prompt", PROMPT, "--answer", " Ireland", "--split", "rows"],
            "invalid choice",
        ),
        (
            ["report", "--prompt", PROMPT, "--answer", " Ireland", "--format", "docx"],
            "unknown --format",
        ),
        (["verify", "--prompt", PROMPT], "required"),
    ],
)
def test_bad_input_exit_two_one_line(args, needle):
    out = run_cli(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert needle in out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0, out.stderr


def test_debug_shows_the_traceback():
    out = run_cli("--debug", "verify", "--prompt", PROMPT, "--answer", "Ireland is")
    assert out.returncode == 2 and "Traceback" in out.stderr


def test_models_lists_embedded(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "tiny-capitals (default): GPT-2" in text and "tiny-capitals-neox: GPT-NeoX" in text


def test_report_writes_markdown(tmp_path: Path, capsys):
    code = main(
        [
            "report",
            "--prompt",
            PROMPT,
            "--answer",
            " Ireland",
            "--split",
            "heads",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert (tmp_path / "report.md").read_text().count("| `L") >= 3


def test_quickstart_example_runs(tmp_path: Path):
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, str(root / "examples" / "quickstart.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("logit difference") and (tmp_path / "report.html").exists()
