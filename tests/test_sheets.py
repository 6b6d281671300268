"""Reports of the analyses (logit lens, dataset, attention score, path expansion): every format
is written, LaTeX compiles standalone and as a fragment in a two-column paper without running
into the margin, Markdown math parses in KaTeX, HTML is self-contained, and each report's
verification line states the check the analysis passed."""

from __future__ import annotations

import re

import pytest
import torch

import symtrans as st
from symtrans.models.facts import CAPITALS, DEMO_ANSWER, DEMO_PROMPT

from .latex_tools import compile_tex, overfull_boxes, pdf_text
from .math_tools import math_blocks
from .test_report import _Collector, katex_errors


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    model = st.load_model("tiny-capitals", dtype=torch.float64)
    d = st.decompose(model, DEMO_PROMPT, DEMO_ANSWER, split="heads")
    prompts = [f"{city} is the capital city of" for city, _ in CAPITALS[:12]]
    answers = [f" {country}" for _, country in CAPITALS[:12]]
    vs = [f" {CAPITALS[(i + 1) % 12][1]}" for i in range(12)]
    return {
        "lens": st.logit_lens(model, DEMO_PROMPT, DEMO_ANSWER, vs=" France"),
        "dataset": st.decompose_dataset(model, prompts, answers, vs, progress=False),
        "score": st.attention_scores(model, DEMO_PROMPT, 1, 0, query_pos=-1, key_pos=1),
        "paths": d.expand_head(model, "L1H0", depth=2),
        "projection": st.project(model, d, "L1H0"),
    }


NAMES = ["lens", "dataset", "score", "paths", "projection"]


@pytest.mark.parametrize("name", NAMES)
def test_every_format_is_written(results, tmp_path, name):
    r = results[name]
    for suffix in ("md", "tex", "html", "pdf"):
        path = tmp_path / f"{name}.{suffix}"
        assert r.save(path) == str(path)
        assert path.stat().st_size > 500
    assert (tmp_path / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    md = (tmp_path / f"{name}.md").read_text()
    for svg in re.findall(r"\]\(([^)]+\.svg)\)", md):
        assert (tmp_path / svg).read_text().lstrip().startswith("<?xml")
    assert "**Pass**" in md


@pytest.mark.parametrize("name", NAMES)
def test_standalone_pdf_states_the_check(results, tmp_path, name):
    (tmp_path / "doc.tex").write_text(results[name].to_latex(standalone=True))
    pdf, log = compile_tex(tmp_path)
    text = pdf_text(pdf)
    assert "Verification" in text and "holds" in text
    assert not overfull_boxes(log), overfull_boxes(log)


def test_fragments_fit_a_two_column_paper(results, tmp_path):
    st.write_sty(tmp_path)
    inputs = []
    for name in NAMES:
        (tmp_path / f"{name}.tex").write_text(results[name].to_latex())
        inputs.append(f"\\section{{{name}}}\n\\input{{{name}.tex}}\n")
    (tmp_path / "doc.tex").write_text(
        "\\documentclass[conference]{IEEEtran}\n\\usepackage{amsmath}\n\\usepackage{symtrans}\n"
        "\\usepackage{hyperref}\n\\begin{document}\n" + "\n".join(inputs) + "\\end{document}\n"
    )
    pdf, log = compile_tex(tmp_path)
    assert pdf_text(pdf).count("holds") == len(NAMES)
    assert not overfull_boxes(log), overfull_boxes(log)


def test_markdown_math_parses_in_katex(results):
    items = [block for name in NAMES for block in math_blocks(results[name].to_markdown())]
    assert len(items) >= 20
    errors = [(tex, e) for (tex, _), e in zip(items, katex_errors(items), strict=True) if e]
    assert not errors, errors[:3]


@pytest.mark.parametrize("name", NAMES)
def test_html_is_self_contained_with_math(results, name):
    page = results[name].to_html()
    parser = _Collector()
    parser.feed(page)
    assert "script" not in parser.tags and "link" not in parser.tags
    assert "math" in parser.tags and "table" in parser.tags
    assert "Pass" in "".join(parser.text)


def test_lens_table_and_plot_carry_every_prefix(results):
    ll = results["lens"]
    md = ll.to_markdown()
    for label in ll.labels:
        assert f"`{label}`" in md
    from symtrans.report import Style, document
    from symtrans.report.document import Figure

    (figure,) = document(ll, Style(width=60)).figures()
    assert isinstance(figure, Figure) and len(figure.picture.x_labels) == len(ll.values)


def test_paths_report_lists_the_top_paths_with_their_symbols(results):
    pe = results["paths"]
    md = pe.to_markdown()
    top = pe.top(3)
    rows = [line for line in md.splitlines() if line.startswith("| 1 |")]
    assert rows and "->".join(str(n) for n in top[0].nodes) in rows[0]
    assert r"\to H_{6}^{(1,0)}" in rows[0]  # the symbolic form ends in the expanded head


def test_a_wrong_check_reads_fail(results):
    """The verification line is computed, not written: a sheet whose numbers disagree says so."""
    from dataclasses import replace

    ll = results["lens"]
    broken = replace(ll, model_logit=ll.model_logit + 1.0)
    assert "**FAIL**" in broken.to_markdown()


@pytest.mark.parametrize("shape", [(1, 3), (3, 1), (1, 1), (2, 4)])
def test_a_heatmap_of_any_shape_compiles(tmp_path, shape):
    """One layer, one head, one term: pgfplots's matrix plot refuses a single row or column (a
    one-layer model's head heatmap failed to compile); the cells are drawn as patches."""
    import numpy as np

    from symtrans.report.document import Document, Figure, Heatmap, Section
    from symtrans.report.latex import latex

    grid = np.arange(shape[0] * shape[1], dtype=float).reshape(shape) - 1.5
    heatmap = Heatmap(
        grid,
        "x",
        "y",
        tuple(str(i) for i in range(shape[1])),
        tuple(str(i) for i in range(shape[0])),
        "value",
    )
    doc = Document(
        title=("grid",), facts=(), sections=(Section("cells", (Figure(heatmap, "a grid", "g"),)),)
    )
    (tmp_path / "doc.tex").write_text(latex(doc, standalone=True))
    pdf, _ = compile_tex(tmp_path)
    assert "a grid" in pdf_text(pdf)


def test_a_one_layer_model_report_compiles(tmp_path):
    """The decomposition report's layer x head heatmap with a single layer."""
    from dataclasses import replace

    from symtrans import labels as lb

    model = st.load_model("tiny-capitals", dtype=torch.float64)
    base = st.decompose(model, DEMO_PROMPT, DEMO_ANSWER, split="heads")
    keep = [i for i, label in enumerate(base.labels) if getattr(label, "layer", 0) == 0]
    one = replace(
        base,
        model=replace(base.model, n_layers=1),
        labels=tuple(base.labels[i] for i in keep),
        values=base.values[keep],
    )
    assert any(isinstance(label, lb.HeadOut) for label in one.labels)
    (tmp_path / "doc.tex").write_text(one.to_latex(standalone=True))
    pdf, _ = compile_tex(tmp_path)
    assert "Verification" in pdf_text(pdf)
