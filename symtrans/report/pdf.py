"""LaTeX to PDF, safely: ``-no-shell-escape`` and TeX's file access restricted to the
working folder (``openin_any=p``, ``openout_any=p``), in a private temporary folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import LatexCompileError, LatexNotFoundError

INSTALL_HINT = (
    "install LaTeX, e.g. `apt-get install texlive-latex-recommended texlive-pictures "
    "texlive-science latexmk` on Debian/Ubuntu (or TeX Live / MiKTeX elsewhere), or write "
    ".tex and compile it yourself"
)


def latex_command() -> list[str]:
    if shutil.which("latexmk"):
        return [
            "latexmk",
            "-pdf",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-no-shell-escape",
            "-quiet",
        ]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]
    raise LatexNotFoundError(
        f"cannot write a PDF: neither latexmk nor pdflatex is on PATH; {INSTALL_HINT}"
    )


def compile_pdf(tex: str, timeout: float = 120.0) -> bytes:
    """Compile a standalone document; return the PDF's bytes."""
    command = latex_command()
    env = {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}
    with tempfile.TemporaryDirectory(prefix="symtrans-tex-") as folder:
        source = Path(folder) / "report.tex"
        source.write_text(tex, encoding="utf-8")
        runs = 1 if command[0] == "latexmk" else 2  # pdflatex twice settles pgfplots
        for _ in range(runs):
            try:
                done = subprocess.run(
                    [*command, source.name],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise LatexCompileError(f"pdflatex took longer than {timeout:.0f} s") from None
            if done.returncode != 0:
                log = Path(folder) / "report.log"
                tail = (
                    log.read_text(errors="replace")[-1500:] if log.exists() else done.stdout[-1500:]
                )
                errors = [ln for ln in tail.splitlines() if ln.startswith("!")]
                raise LatexCompileError(
                    "pdflatex failed on the generated report: "
                    + (
                        "; ".join(errors) or tail.strip().splitlines()[-1]
                        if tail.strip()
                        else "no log"
                    )
                )
        return (Path(folder) / "report.pdf").read_bytes()
