"""Reports as PDF: LaTeX compiled safely (``-no-shell-escape``, TeX's file access restricted
to the working folder with ``openin_any=p`` and ``openout_any=p``, in a private temporary
folder), or, where no LaTeX is installed, the same report through Typst (the ``typst``
package from PyPI: a compiler and its fonts in one wheel, no system install).

Which: :func:`pdf_engine`. ``auto`` takes LaTeX when ``pdflatex`` is on PATH (the reference
output: the pictures are pgfplots, the fonts Computer Modern), else Typst, else an error that
names both ways to get a PDF.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import InvalidArgumentError, LatexCompileError, LatexNotFoundError

ENGINES = ("auto", "pdflatex", "lualatex", "xelatex", "typst")
INSTALL_HINT = (
    "install LaTeX (Debian/Ubuntu: `apt-get install texlive-latex-recommended "
    "texlive-pictures texlive-science`; TeX Live or MiKTeX elsewhere) or Typst (`pip install "
    "typst`, or `pip install 'symtrans[pdf]'`), or write .tex/.html and convert it yourself"
)


def has_typst() -> bool:
    try:
        import typst  # noqa: F401
    except ImportError:
        return False
    return True


def pdf_engine(engine: str = "auto") -> str:
    """The engine that writes a PDF: ``engine`` itself, or for ``auto`` pdflatex where it is
    installed and Typst otherwise."""
    if engine not in ENGINES:
        raise InvalidArgumentError(
            f"unknown PDF engine {engine!r}; use one of {', '.join(ENGINES)}"
        )
    if engine == "auto":
        if shutil.which("pdflatex"):
            return "pdflatex"
        if has_typst():
            return "typst"
        raise LatexNotFoundError(
            f"cannot write a PDF: neither pdflatex nor the typst package is installed; "
            f"{INSTALL_HINT}"
        )
    if engine == "typst":
        if not has_typst():
            raise LatexNotFoundError(
                "cannot write a PDF with Typst: the typst package is not installed; "
                "`pip install typst` (or `pip install 'symtrans[pdf]'`)"
            )
        return engine
    if not shutil.which(engine):
        raise LatexNotFoundError(f"cannot write a PDF: {engine} is not on PATH; {INSTALL_HINT}")
    return engine


def latex_command(engine: str = "pdflatex") -> list[str]:
    return [engine, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape"]


def _unicode_fonts(folder: Path) -> None:
    """LuaTeX/XeTeX: DejaVu Sans (matplotlib ships it) beside the report, for token text in
    scripts Latin Modern lacks (Greek, Cyrillic)."""
    import matplotlib

    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    if font.is_file():
        shutil.copyfile(font, folder / font.name)


def compile_pdf(tex: str, engine: str = "pdflatex", timeout: float = 180.0) -> bytes:
    """Compile a standalone document with ``engine``; return the PDF's bytes."""
    command = latex_command(engine)
    env = {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}
    with tempfile.TemporaryDirectory(prefix="symtrans-tex-") as name:
        folder = Path(name)
        (folder / "report.tex").write_text(tex, encoding="utf-8")
        if engine != "pdflatex":
            _unicode_fonts(folder)
        for _ in range(2):  # twice: pgfplots and the tables settle on the second run
            try:
                done = subprocess.run(
                    [*command, "report.tex"],
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise LatexCompileError(f"{engine} took longer than {timeout:.0f} s") from None
            if done.returncode != 0:
                log = folder / "report.log"
                tail = (
                    log.read_text(errors="replace")[-1500:] if log.exists() else done.stdout[-1500:]
                )
                errors = [ln for ln in tail.splitlines() if ln.startswith("!")]
                reason = "; ".join(errors) or (
                    tail.strip().splitlines()[-1] if tail.strip() else "no log"
                )
                raise LatexCompileError(f"{engine} failed on the generated report: {reason}")
        return (folder / "report.pdf").read_bytes()


def compile_typst(source: str, files: dict[str, str]) -> bytes:
    """Compile a Typst document (``files``: the pictures it reads, by name); return the
    PDF's bytes."""
    import typst

    with tempfile.TemporaryDirectory(prefix="symtrans-typst-") as name:
        folder = Path(name)
        (folder / "report.typ").write_text(source, encoding="utf-8")
        for file_name, content in files.items():
            (folder / file_name).write_text(content, encoding="utf-8")
        try:
            return bytes(typst.compile(str(folder / "report.typ"), root=str(folder)))
        except Exception as exc:  # typst.TypstError and friends
            raise LatexCompileError(f"typst failed on the generated report: {exc}") from None
