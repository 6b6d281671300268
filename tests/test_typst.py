"""A PDF without TeX: where no LaTeX is installed, ``save("report.pdf")`` and ``symtrans
report --format pdf`` write the same report through Typst (the ``typst`` package: compiler
and fonts in one wheel). Same sections, every table row, the verification line, vector fonts;
and where neither is installed, an error that names what to install."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import symtrans as st
from symtrans.cli import main as cli

from .latex_tools import bitmap_fonts, compile_tex, pdf_text, require

TEX = {"pdflatex", "latexmk", "lualatex", "xelatex"}


@pytest.fixture
def no_tex(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine as one without LaTeX."""
    which = shutil.which

    def without_tex(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in TEX else which(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "which", without_tex)


def producer(pdf: Path) -> str:
    """What made the PDF (pdfinfo's Producer and Creator)."""
    require("pdfinfo")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return " ".join(re.findall(r"^(?:Producer|Creator):\s*(.*)$", info, flags=re.M))


def test_every_report_as_a_pdf_through_typst(no_tex, report_results, tmp_path):
    for name, result in report_results.items():
        path = tmp_path / f"{name}.pdf"
        result.save(path)
        assert "typst" in producer(path).lower(), name
        text = pdf_text(path)
        assert "Verification" in text and "holds" in text, name
        assert not bitmap_fonts(path), name
    text = pdf_text(tmp_path / "decomposition.pdf")
    d = report_results["decomposition"]
    for term in d.top(12):
        assert term.name in text, term.name
    assert "logit" in text and ("𝜆" in text or "λ" in text)  # the identity, as math


def test_a_long_table_keeps_every_row_through_typst(no_tex, report_results, tmp_path):
    long = report_results["neurons"]
    path = tmp_path / "long.pdf"
    long.save(path, top_k=100)
    text = pdf_text(path)
    missing = [t.name for t in long.top(100) if t.name not in text]
    assert not missing, missing[:3]
    assert text.count("\f") >= 2  # it ran over pages


def test_typst_and_latex_write_the_same_report(report_results, tmp_path):
    """The same rows and numbers in both PDFs (the LaTeX one is the reference)."""
    d = report_results["decomposition"]
    typst_pdf = tmp_path / "typst.pdf"
    d.save(typst_pdf, engine="typst")
    (tmp_path / "doc.tex").write_text(d.to_latex(standalone=True))
    latex_pdf, _ = compile_tex(tmp_path)
    numbers_in = [set(re.findall(r"−?\d+\.\d{3,}", pdf_text(p))) for p in (typst_pdf, latex_pdf)]
    assert numbers_in[1] and numbers_in[1] <= numbers_in[0], numbers_in[1] - numbers_in[0]


def test_the_command_line_writes_a_pdf_without_tex(no_tex, tmp_path, capsys):
    code = cli(
        [
            "report",
            "--model",
            "tiny-capitals",
            "--prompt",
            "Dublin is the capital city of",
            "--answer",
            " Ireland",
            "--format",
            "pdf",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr()
    (pdf,) = tmp_path.glob("*.pdf")
    assert "typst" in producer(pdf).lower()


def test_without_tex_or_typst_the_error_says_what_to_install(
    no_tex, monkeypatch, report_results, tmp_path
):
    from symtrans.report import pdf

    monkeypatch.setattr(pdf, "has_typst", lambda: False)
    with pytest.raises(st.SymtransError) as info:
        report_results["lens"].save(tmp_path / "lens.pdf")
    message = str(info.value)
    assert "texlive-latex-recommended" in message and "pip install typst" in message
    assert not (tmp_path / "lens.pdf").exists()
