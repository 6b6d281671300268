"""Helpers for tests that compile LaTeX: pdflatex the way symtrans runs it, pdftotext."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; `.ci/run` installs it (see README: Development)")
    return path


def compile_tex(folder: Path, name: str = "doc.tex") -> tuple[Path, str]:
    """pdflatex (twice, for pgfplots) with -no-shell-escape and restricted file access.
    Returns the PDF and the log; fails the test with the log's errors."""
    require("pdflatex")
    env = {**os.environ, "openin_any": "p", "openout_any": "p"}
    for _ in range(2):
        done = subprocess.run(
            ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", name],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        log = (folder / name).with_suffix(".log").read_text(errors="replace")
        if done.returncode != 0:
            errors = "\n".join(line for line in log.splitlines() if line.startswith("!"))
            pytest.fail(f"pdflatex failed on {name}:\n{errors or log[-2000:]}")
    return (folder / name).with_suffix(".pdf"), log


def pdf_text(pdf: Path) -> str:
    require("pdftotext")
    return subprocess.run(
        ["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def overfull_boxes(log: str, tolerance_pt: float = 1.0) -> list[str]:
    out = []
    for line in log.splitlines():
        if line.startswith("Overfull \\hbox ("):
            amount = float(line.split("(")[1].split("pt")[0])
            if amount > tolerance_pt:
                out.append(line)
    return out
