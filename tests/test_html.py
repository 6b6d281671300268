"""The HTML reports: math as MathML printed from the math's tree, token text as plain text
in ``<mtext>`` (never a LaTeX escape), lines over and under a word spanning the word, and
pages that fit a 1000 px window (tables scroll inside their box), measured in headless
Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

import symtrans as st
from symtrans.printing.mathml import mathml

from .latex_tools import require


def test_token_text_is_plain_text_in_mathml(report_results):
    for name in ("paths",):  # <|endoftext|> is a source of its paths
        page = report_results[name].to_html()
        assert "<mtext>&lt;|endoftext|&gt;</mtext>" in page, name
    for name, result in report_results.items():
        page = result.to_html()
        for text in re.findall(r"<mtext>(.*?)</mtext>", page):
            assert "\\" not in text, (name, text)  # no \textless{}, \_, \&
        assert "\\text" not in page and "\\st" not in page, name


def test_lines_over_and_under_span_the_word():
    out = mathml(r"\stUnemb{Ireland} - \stEmb{of}")
    assert re.search(r'<mrow class="st-over" style="border-top:[^"]+"><mtext>Ireland</mtext>', out)
    assert re.search(r'<mrow class="st-under" style="border-bottom:[^"]+"><mtext>of</mtext>', out)


def test_unknown_latex_is_refused_not_passed_through():
    with pytest.raises(st.SymtransError, match=r"cannot translate the command \\frobnicate"):
        mathml(r"x + \frobnicate{y}")


def test_every_table_scrolls_inside_its_box(report_results):
    for name, result in report_results.items():
        page = result.to_html()
        tables = page.count("<table>")
        assert tables and page.count('<div class="table"><table>') == tables, name
    style = report_results["decomposition"].to_html()
    assert ".symtrans-report .table { overflow-x: auto;" in style


# Appended to a copy of each page (the report itself carries no script): the page's width
# once laid out, written where --dump-dom shows it.
_MEASURE = (
    "<script>document.body.setAttribute('data-width', "
    "String(document.documentElement.scrollWidth));</script>"
)


def page_width(html_file: Path) -> int:
    chromium = require("chromium")
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--window-size=1000,2000",
            "--dump-dom",
            html_file.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    match = re.search(r'data-width="(\d+)"', done.stdout)
    assert match, done.stderr[-500:]
    return int(match.group(1))


def test_every_page_fits_a_1000_px_window(report_results, tmp_path):
    for name, result in list(report_results.items()) + [
        ("long", report_results["neurons"].to_html(top_k=100)),
    ]:
        page = result if isinstance(result, str) else result.to_html()
        copy = tmp_path / f"{name}.html"
        copy.write_text(page.replace("</body>", _MEASURE + "</body>"))
        assert page_width(copy) <= 1000, name
