"""Reports need only texlive-latex-recommended, texlive-pictures and texlive-science: every
standalone report and every fragment (in an article, with and without microtype) compiles in
a TeX tree that holds exactly those packages and their dependencies (tests/minimal_tex.py),
and the PDF embeds no bitmap (Type 3) font. Whatever else this machine has installed (lmodern,
cm-super, texlive-latex-extra) cannot be found there."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import symtrans as st

from . import minimal_tex
from .latex_tools import bitmap_fonts, compile_tex, files_read, overfull_boxes, pdf_text


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment that points pdflatex at the minimal tree."""
    tree = tmp_path_factory.mktemp("minimal-texmf")
    return {**minimal_tex.build(tree), "MINIMAL_TREE": str(tree)}


def _find(name: str, env: dict[str, str]) -> str:
    return subprocess.run(
        ["kpsewhich", name], env={**os.environ, **env}, capture_output=True, text=True
    ).stdout.strip()


def test_the_tree_holds_those_packages_and_nothing_else(minimal):
    for present in (
        "siunitx.sty",
        "pgfplots.sty",
        "microtype.sty",
        "booktabs.sty",
        "hyperref.sty",
        "cmr10.pfb",
        "lgrenc.def",
    ):
        assert _find(present, minimal).startswith(minimal["MINIMAL_TREE"]), present
    # lmodern (its LaTeX support), cm-super (T1 Type 1 fonts), latex-extra, publishers
    for absent in ("lmodern.sty", "type1ec.sty", "sfrm1000.pfb", "tcolorbox.sty", "IEEEtran.cls"):
        assert _find(absent, minimal) == "", absent


def test_the_check_bites_a_t1_document_gets_bitmap_fonts_or_fails(minimal, tmp_path):
    """What the reports did before: T1 text without cm-super. Here it cannot be set in Type 1
    fonts (pdflatex fails, or embeds Type 3), so the tests below would catch it."""
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\begin{document}\n"
        "Text in T1.\n\\end{document}\n"
    )
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
        cwd=tmp_path,
        env={**os.environ, **minimal},
        capture_output=True,
        text=True,
        timeout=600,
    )
    pdf = tmp_path / "doc.pdf"
    assert done.returncode != 0 or not pdf.exists() or bitmap_fonts(pdf)


def _outside(folder: Path, tree: str) -> list[str]:
    """Files TeX read from neither the minimal tree nor the document's folder."""
    out = []
    for path in files_read(folder):
        resolved = str(Path(path).resolve()) if Path(path).is_absolute() else path
        if not path.startswith(tree) and Path(path).is_absolute() and "/web2c/" not in path:
            out.append(resolved)
    return out


def test_every_standalone_report_needs_only_those_packages(minimal, report_results, tmp_path):
    for name, result in report_results.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "doc.tex").write_text(result.to_latex(standalone=True))
        pdf, log = compile_tex(folder, env=minimal)
        assert "holds" in pdf_text(pdf), name
        assert not bitmap_fonts(pdf), (name, bitmap_fonts(pdf))
        assert not overfull_boxes(log), (name, overfull_boxes(log))
        assert not _outside(folder, minimal["MINIMAL_TREE"]), _outside(folder, "")


@pytest.mark.parametrize("microtype", [False, True])
def test_every_fragment_needs_only_those_packages(minimal, report_results, tmp_path, microtype):
    st.write_sty(tmp_path)
    inputs = []
    for name, result in report_results.items():
        (tmp_path / f"{name}.tex").write_text(result.to_latex())
        inputs.append(f"\\section{{{name}}}\n\\input{{{name}.tex}}\n")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n"
        + ("\\usepackage{microtype}\n" if microtype else "")
        + "\\usepackage{amsmath}\n\\usepackage{symtrans}\n\\usepackage{hyperref}\n"
        "\\begin{document}\n" + "\n".join(inputs) + "\\end{document}\n"
    )
    pdf, log = compile_tex(tmp_path, env=minimal)
    assert pdf_text(pdf).count("holds") == len(report_results)
    assert not bitmap_fonts(pdf), bitmap_fonts(pdf)
    assert not overfull_boxes(log), overfull_boxes(log)
    assert not _outside(tmp_path, minimal["MINIMAL_TREE"])
