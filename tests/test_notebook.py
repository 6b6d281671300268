"""Notebooks: a notebook that loads a model and shows one result of every type is executed
with nbclient and ipykernel, then exported with nbconvert to HTML and to PDF. Every result
shows as HTML, and has Markdown and LaTeX forms (nbconvert's PDF uses them: the math runs over
several lines and every table row is there); plain reprs stay under 2 KB; nothing is written
to stderr, loading included."""

from __future__ import annotations

import re
import shutil

import pytest

from .latex_tools import bitmap_fonts, compile_tex, overfull_boxes, pdf_text, require


def _modules():  # type: ignore[no-untyped-def]
    """nbformat, nbclient, nbconvert: in the dev extra, which `make test` installs."""
    try:
        import nbclient
        import nbconvert
        import nbformat
    except ImportError as exc:
        pytest.fail(f"{exc.name} is not installed: `pip install -e '.[dev]'` (make test does)")
    return nbformat, nbclient, nbconvert


SETUP = """\
import torch
import symtrans as st
from symtrans.models.facts import CAPITALS
model = st.load_model("tiny-capitals", dtype=torch.float64)
prompt = "Dublin is the capital city of"
prompts = [f"{c} is the capital city of" for c, _ in CAPITALS[:4]]
answers = [f" {k}" for _, k in CAPITALS[:4]]"""

RESULTS = {
    "Decomposition": 'd = st.decompose(model, prompt, " Ireland", split="heads")\nd',
    "BatchDecomposition": "st.decompose(model, prompts, answer=answers)",
    "LogitLens": 'st.logit_lens(model, prompt, " Ireland", vs=" France")',
    "PathExpansion": 'd.expand_head(model, "L1H0", depth=2)',
    "ScoreDecomposition": "st.attention_scores(model, prompt, 1, 0, query_pos=-1, key_pos=1)",
    "Projection": 'st.project(model, d, "L1H0")',
    "DatasetDecomposition": "st.decompose_dataset(model, prompts, answers, progress=False)",
    "Patching": "p = st.patch(model, prompts, prompts[1:] + prompts[:1], answers, "
    'answers[1:] + answers[:1], site="z", explain=1)\np',
    "PatchExplanation": "p.explain(1, 0, model)",
}
# the Markdown form, as nbconvert's PDF shows it where a result offers only Markdown
MARKDOWN = 'display(d, include=["text/markdown", "text/plain"])'


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):  # type: ignore[no-untyped-def]
    nbformat, nbclient, _ = _modules()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SETUP)]
    nb.cells += [nbformat.v4.new_code_cell(code) for code in RESULTS.values()]
    nb.cells.append(nbformat.v4.new_code_cell(MARKDOWN))
    folder = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute()
    return nb


def test_every_result_shows_in_every_form(notebook):
    cells = notebook.cells[1 : 1 + len(RESULTS)]
    for kind, cell in zip(RESULTS, cells, strict=True):
        (output,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        data = output.data
        for mime in ("text/html", "text/markdown", "text/latex", "text/plain"):
            assert mime in data, (kind, mime)
        assert kind in data["text/plain"] and len(data["text/plain"].encode()) < 2048, kind
        html = data["text/html"]
        assert "Pass" in html and "<table>" in html, kind
        assert "<math" in html or kind == "BatchDecomposition", kind
        assert "**Pass**" in data["text/markdown"], kind
        latex = data["text/latex"]
        assert r"\textbf{holds}" in latex and not re.search(r"\\st[A-Z]", latex), kind


def test_nothing_is_written_to_stderr(notebook):
    for cell in notebook.cells:
        for output in cell.outputs:
            assert not (output.output_type == "stream" and output.name == "stderr"), (
                cell.source.splitlines()[0],
                output.text[:300],
            )
            assert output.output_type != "error", output.get("evalue")


def test_nbconvert_html(notebook):
    _, _, nbconvert = _modules()
    body, _ = nbconvert.HTMLExporter().from_notebook_node(notebook)
    assert body.count('<div class="symtrans-report">') == len(RESULTS)
    assert body.count("<math") > 50 and "<style>\n.symtrans-report" in body


def test_nbconvert_pdf(notebook, tmp_path):
    """nbconvert's own PDF (xelatex, pandoc for the Markdown form): every report's check is
    there; and its LaTeX, compiled here, has no line that runs off the page."""
    _, _, nbconvert = _modules()
    require("xelatex")
    if shutil.which("pandoc") is None:
        pytest.fail("pandoc is not installed; `bash scripts/system-deps.sh` installs it")
    pdf_bytes, _ = nbconvert.PDFExporter().from_notebook_node(notebook)
    pdf = tmp_path / "notebook.pdf"
    pdf.write_bytes(pdf_bytes)
    text = pdf_text(pdf)
    assert text.count("holds") >= len(RESULTS) and "Pass" in text  # LaTeX forms, Markdown
    assert not bitmap_fonts(pdf)
    source, resources = nbconvert.LatexExporter().from_notebook_node(notebook)
    (tmp_path / "doc.tex").write_text(source)
    for name, data in resources.get("outputs", {}).items():
        (tmp_path / name).write_bytes(data)
    _, log = compile_tex(tmp_path, engine="xelatex", runs=1)
    assert not overfull_boxes(log), overfull_boxes(log)
