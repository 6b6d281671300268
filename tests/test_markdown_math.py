"""Markdown math renders the same in KaTeX, MathJax 2 and MathJax 3 (base and ams) and
survives a GFM renderer: every math block of every report (and of every notebook Markdown
form) is typeset by KaTeX and by MathJax 3, both show the same characters and no LaTeX escape
as letters, uses only commands MathJax 2 also knows, and comes out of a GFM renderer as it
went in."""

from __future__ import annotations

import re

import pytest

from .math_tools import leaves, mangled_by_gfm, math_blocks, typeset

# The control sequences symtrans's Markdown math may use: each is in the default TeX input
# of KaTeX, MathJax 3 (base, ams) and MathJax 2 (TeX/AMSmath), and in amsmath (pandoc turns
# Markdown math into LaTeX for nbconvert's PDF). A new one fails this test until it is
# checked against all of them.
COMMANDS = {
    "begin",
    "end",
    "cr",
    "text",
    "mathrm",
    "mathop",
    "mathord",
    "nolimits",
    "underline",
    "overline",
    "hat",
    "grave",
    "sqrt",
    "frac",
    "sum",
    "left",
    "right",
    "Bigl",
    "Bigr",
    "langle",
    "rangle",
    "lbrace",
    "rbrace",
    "lbrack",
    "rbrack",
    "vert",
    "backslash",
    "ast",
    "sim",
    "odot",
    "cdot",
    "cdots",
    "times",
    "to",
    "le",
    "quad",
    "qquad",
    "thinspace",
    "parallel",
    "perp",
    "ell",
    "gamma",
    "beta",
    "epsilon",
    "lambda",
    "Delta",
    "Omega",
    "sigma",
    "prime",
}


@pytest.fixture(scope="module")
def markdowns(report_results) -> dict[str, str]:
    out = {}
    for name, result in report_results.items():
        out[name] = result.to_markdown()
        out[f"{name} (notebook)"] = result._repr_markdown_()
    return out


@pytest.fixture(scope="module")
def blocks(markdowns) -> list[tuple[str, bool]]:
    items = sorted({block for md in markdowns.values() for block in math_blocks(md)})
    assert len(items) > 50
    return items


def test_every_math_block_typesets_in_katex_and_mathjax_3(blocks):
    katex = typeset(blocks, "katex")
    mathjax = typeset(blocks, "mathjax")
    failed = [(tex, r["error"]) for (tex, _), r in zip(blocks, katex, strict=True) if "error" in r]
    assert not failed, failed[:3]
    failed = [
        (tex, r["error"]) for (tex, _), r in zip(blocks, mathjax, strict=True) if "error" in r
    ]
    assert not failed, failed[:3]


def _normal(text: str) -> str:
    """The characters a reader sees, whichever engine drew them (each picks its own glyph for
    a few: ⟨ or 〈, ∣ or |, ‾ or ―; KaTeX adds invisible operators)."""
    same = str.maketrans(
        {
            "〈": "⟨",
            "〉": "⟩",
            "∣": "|",
            "―": "_",
            "‾": "_",
            "∖": "\\",
            "’": "'",
            "′": "'",
            "ˉ": "_",
            "¯": "_",
        }
    )
    return re.sub(r"\s+", "", text.translate(same))


def test_katex_and_mathjax_show_the_same_characters(blocks):
    """Not only accepted: both engines draw the same text, and none of it is a LaTeX escape
    such as \\textless{} or \\_ shown as letters (MathJax prints those literally)."""
    katex = typeset(blocks, "katex")
    mathjax = typeset(blocks, "mathjax")
    for (tex, _), k, m in zip(blocks, katex, mathjax, strict=True):
        shown_k, shown_m = _normal(leaves(k["mathml"])), _normal(leaves(m["mathml"]))
        assert shown_k == shown_m, (tex, shown_k, shown_m)
        assert not re.search(r"\\[A-Za-z]", shown_m), (tex, shown_m)


def test_math_survives_a_gfm_renderer(markdowns):
    for name, md in markdowns.items():
        assert not mangled_by_gfm(md), (name, mangled_by_gfm(md)[:2])


def test_only_commands_every_engine_knows(blocks):
    used = {c for tex, _ in blocks for c in re.findall(r"\\([A-Za-z]+)", tex)}
    assert used <= COMMANDS, used - COMMANDS
    # and no \\ (a GFM renderer turns it into one backslash), no \_ \{ \, (it drops the \)
    for tex, _ in blocks:
        assert not re.search(r"\\[^A-Za-z ]", tex), tex
