"""Reports that go into a paper unchanged: every fragment ``\\input`` into IEEEtran, acmart
(sigconf), llncs, revtex4-2, elsarticle, a plain article and a beamer frame, with and without
microtype. For each PDF: the text is all there (pdftotext: every row of a 100-row table and its
total, every verification line), no box overflows by more than 2 pt, and no font is a bitmap
(pdffonts: no Type 3). And the package behaves: it keeps the author's pgfplots compat level,
documents what it loads, and a fragment adds no sectioning or vertical space unless asked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import symtrans as st

from .latex_tools import bitmap_fonts, compile_tex, overfull_boxes, pdf_text

ROOT = Path(__file__).resolve().parent.parent
LONG_TOP_K = 100

CLASSES = {
    "article": r"\documentclass{article}",
    "IEEEtran": r"\documentclass[conference]{IEEEtran}",
    "acmart": r"\documentclass[sigconf,nonacm]{acmart}",
    "llncs": r"\documentclass{llncs}",
    "revtex4-2": r"\documentclass[twocolumn,aps,prl]{revtex4-2}",
    "elsarticle": r"\documentclass[5p,twocolumn]{elsarticle}",
    "beamer": r"\documentclass{beamer}",
}


def paper(klass: str, fragments: list[str], microtype: bool) -> str:
    """A document of class ``klass`` that inputs each fragment after ``\\usepackage{symtrans}``
    beside amsmath and hyperref, between sentences of its own (beamer: one frame each, broken
    across frames as needed)."""
    preamble = [CLASSES[klass]]
    if microtype:
        preamble.append(r"\usepackage{microtype}")
    preamble += [r"\usepackage{amsmath}", r"\usepackage{symtrans}", r"\usepackage{hyperref}"]
    title = r"\title{Reports}\author{A. Author}"
    body = []
    for name in fragments:
        if klass == "beamer":
            body.append(
                rf"\begin{{frame}}[allowframebreaks]{{{name}}}" + "\n"
                rf"\input{{{name}.tex}}" + "\n" + r"\end{frame}"
            )
        else:
            body.append(
                rf"\section{{{name}}}" + "\nText before the report.\n"
                rf"\input{{{name}.tex}}" + "\nText after the report.\n"
            )
    begin = [r"\begin{document}", title, r"\maketitle"]
    if klass == "beamer":
        begin = [r"\begin{document}"]
    return "\n".join(preamble + begin + body + [r"\end{document}", ""])


def write_fragments(folder: Path, results: dict[str, object]) -> list[str]:
    st.write_sty(folder)
    names = []
    for name, result in results.items():
        (folder / f"{name}.tex").write_text(result.to_latex())  # type: ignore[attr-defined]
        names.append(name)
    long = results["neurons"]
    (folder / "long.tex").write_text(long.to_latex(top_k=LONG_TOP_K))  # type: ignore[attr-defined]
    return names + ["long"]


@pytest.mark.parametrize(
    "klass,microtype",
    [(k, True) for k in CLASSES] + [("article", False), ("IEEEtran", False)],
)
def test_every_fragment_in_the_classes_papers_use(report_results, tmp_path, klass, microtype):
    names = write_fragments(tmp_path, report_results)
    (tmp_path / "doc.tex").write_text(paper(klass, names, microtype))
    pdf, log = compile_tex(tmp_path)
    text = pdf_text(pdf)
    assert text.count("holds") == len(names), text.count("holds")
    # the long table: all its rows (each neuron's label) and the total, whatever the breaks
    long = report_results["neurons"]
    labels = [str(term.label) for term in long.top(LONG_TOP_K)]
    missing = [label for label in labels if label not in text]
    assert not missing, f"{len(missing)} rows missing, e.g. {missing[:3]}"
    assert f"other {len(long.labels) - LONG_TOP_K} terms" in text and "total" in text
    assert not overfull_boxes(log), overfull_boxes(log)
    assert not bitmap_fonts(pdf), bitmap_fonts(pdf)


def test_a_long_table_breaks_across_columns_and_pages(report_results, tmp_path):
    """100 rows in an IEEEtran column: the table runs over several columns, row after row."""
    long = report_results["neurons"]
    st.write_sty(tmp_path)
    (tmp_path / "long.tex").write_text(long.to_latex(top_k=LONG_TOP_K))
    (tmp_path / "doc.tex").write_text(paper("IEEEtran", ["long"], microtype=True))
    pdf, log = compile_tex(tmp_path)
    text = pdf_text(pdf)
    pages = text.split("\f")
    assert len([p for p in pages if p.strip()]) >= 2
    labels = [str(term.label) for term in long.top(LONG_TOP_K)]
    found = [
        re.search(rf"(?m)^\f?{rank} {re.escape(label)} ", text)
        for rank, label in enumerate(labels, start=1)
    ]
    assert None not in found, labels[found.index(None)]
    where = [m.start() for m in found if m is not None]
    assert where == sorted(where)  # row after row, in order, across the breaks
    assert not overfull_boxes(log)


def test_fragments_add_no_sectioning_or_space_unless_asked(report_results):
    forbidden = re.compile(
        r"\\(section|subsection|subsubsection|paragraph|vspace|vskip|smallskip|medskip|"
        r"bigskip|resizebox|scalebox|tiny|scriptsize)\b|\\begin\{(center|figure|table)\}"
    )
    for name, result in report_results.items():
        fragment = result.to_latex()
        assert not forbidden.search(fragment), (name, forbidden.search(fragment))
        asked = result.to_latex(heading="subsection*")
        assert r"\subsection*{" in asked and r"\stHeading{" not in asked, name
    numbered = report_results["positions"].to_latex(heading="section")
    assert r"\section{" in numbered and r"\subsection{By source position" in numbered
    with pytest.raises(st.SymtransError, match="heading must be one of"):
        report_results["lens"].to_latex(heading="chapter")


def test_the_package_keeps_the_authors_pgfplots_compat(report_results, tmp_path):
    st.write_sty(tmp_path)
    (tmp_path / "lens.tex").write_text(report_results["lens"].to_latex())
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{pgfplots}\n\\pgfplotsset{compat=1.17}\n"
        "\\usepackage{symtrans}\n\\begin{document}\n\\input{lens.tex}\n"
        "\\par compat is \\pgfkeysvalueof{/pgfplots/compat/current}.\n\\end{document}\n"
    )
    pdf, log = compile_tex(tmp_path)
    assert "compat is 1.17." in pdf_text(pdf)
    # the pictures set a level of their own only where the document has none
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage{symtrans}\n\\begin{document}\n"
        "\\input{lens.tex}\n\\par compat is [\\pgfkeysvalueof{/pgfplots/compat/current}].\n"
        "\\end{document}\n"
    )
    pdf, log = compile_tex(tmp_path)
    assert "compat is [default]." in pdf_text(pdf)  # left as the document had it


def test_the_package_documents_what_it_loads():
    sty = (ROOT / "templates" / "symtrans.sty").read_text()
    header = sty[: sty.index(r"\NeedsTeXFormat")]
    readme = (ROOT / "README.md").read_text()
    loaded = re.findall(r"\\RequirePackage(?:\[[^]]*\])?\{([^}]+)\}", sty)
    assert loaded
    for package in loaded:
        assert re.search(rf"%\s+{package}\b", header), f"{package} is not named in the header"
        assert package in readme, f"the README does not say symtrans.sty loads {package}"
    assert r"\pgfplotsset{compat" not in sty.replace(r"\ifx\st@compat\st@nocompat\pgfplotsset", "")


def test_nothing_is_smaller_than_footnotesize():
    for name in ("fragment.tex", "report.tex", "symtrans.sty", "notebook.tex"):
        source = (ROOT / "templates" / name).read_text()
        assert not re.search(r"\\(tiny|scriptsize)\b", source), name
