"""Helpers for tests that compile LaTeX: pdflatex the way symtrans runs it, pdftotext,
pdffonts, and the log's overfull boxes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed; `bash scripts/system-deps.sh` installs it")
    return path


def compile_tex(
    folder: Path,
    name: str = "doc.tex",
    engine: str = "pdflatex",
    env: dict[str, str] | None = None,
    runs: int = 2,
) -> tuple[Path, str]:
    """``engine`` (twice, for pgfplots and the tables) with -no-shell-escape and restricted
    file access; ``env``: extra environment (a minimal TeX tree). Returns the PDF and the
    log; fails the test with the log's errors."""
    require(engine)
    full = {**os.environ, "openin_any": "p", "openout_any": "p", **(env or {})}
    for _ in range(runs):
        done = subprocess.run(
            [
                engine,
                "-no-shell-escape",
                "-interaction=nonstopmode",
                "-halt-on-error",
                "-recorder",
                name,
            ],
            cwd=folder,
            env=full,
            capture_output=True,
            text=True,
            errors="replace",  # TeX writes the bytes of 8-bit fonts' characters as they are
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        log_path = (folder / name).with_suffix(".log")
        log = log_path.read_text(errors="replace") if log_path.exists() else done.stdout
        if done.returncode != 0:
            errors = "\n".join(line for line in log.splitlines() if line.startswith("!"))
            pytest.fail(f"{engine} failed on {name}:\n{errors or log[-2000:]}")
    return (folder / name).with_suffix(".pdf"), log


def pdf_text(pdf: Path) -> str:
    require("pdftotext")
    return subprocess.run(
        ["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout


def pdf_fonts(pdf: Path) -> list[tuple[str, str]]:
    """``(name, type)`` of every font in the PDF (pdffonts)."""
    require("pdffonts")
    out = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True)
    fonts = []
    for line in out.stdout.splitlines()[2:]:
        match = re.match(
            r"(\S+)\s+(Type 1C|Type 1|Type 3|TrueType|CID Type 0C|CID TrueType|"
            r"CID Type 0|Type 0C|Type 0|\S+)",
            line,
        )
        if match:
            fonts.append((match.group(1), match.group(2)))
    return fonts


def bitmap_fonts(pdf: Path) -> list[str]:
    """The Type 3 (bitmap) fonts of a PDF, which publishers' checkers reject."""
    return [name for name, kind in pdf_fonts(pdf) if kind == "Type 3"]


def overfull_boxes(log: str, tolerance_pt: float = 2.0) -> list[str]:
    """Overfull hboxes and vboxes of more than ``tolerance_pt`` (not the class's own page
    headers and footers, reported "while \\output is active": a report's lines and rows are
    reported where they are built)."""
    out = []
    for line in log.splitlines():
        match = re.match(r"Overfull \\[hv]box \(([\d.]+)pt too (wide|high)\)", line)
        if match and float(match.group(1)) > tolerance_pt and "output is active" not in line:
            out.append(line)
    return out


def files_read(folder: Path, name: str = "doc.tex") -> list[str]:
    """Every file TeX read (``-recorder``'s .fls)."""
    fls = (folder / name).with_suffix(".fls").read_text(errors="replace")
    return [line[6:] for line in fls.splitlines() if line.startswith("INPUT ")]
