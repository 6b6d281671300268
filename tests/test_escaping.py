"""Token strings are data, never markup: Hypothesis-generated strings (500 and more per
format) through LaTeX (compiles; pdftotext shows the text), Markdown (parses; no raw HTML;
the text comes back), KaTeX, and HTML."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from markdown_it import MarkdownIt

import symtrans as st
from symtrans.printing.escape import latex_text, markdown_code, markdown_text, visible_token
from symtrans.report.latex import inline_sty

from .latex_tools import compile_tex, pdf_text
from .test_report import katex_errors

HOSTILE = [
    r"\input{/etc/passwd}",
    r"\write18{touch /tmp/symtrans-pwned}",
    r"\catcode`\^=7",
    "^^5c",
    "^^5cinput{/etc/passwd}",
    r"\def\x{y}",
    "$x$",
    "% comment",
    "{",
    "}",
    "\\",
    "~",
    "#",
    "&",
    "_",
    "é",
    "→",
    "中文",
    "😀",
    "\x00",
    "\n",
    "\t",
    "\x1b[31m",
    "<script>alert(1)</script>",
    "| table |",
    "`code`",
    "**bold**",
    "[link](http://x)",
    "![img](x.png)",
    "<b>",
    "&amp;",
    "\\(",
    "\\[",
    "$$",
    '"quoted"',
    "--- ``x'' ,,y!`?` <<z>>",
    "\u200b",
    "\ufeff",
    "  two  spaces ",
    "",
]

TOKENS = hs.text(
    alphabet=hs.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
) | hs.sampled_from(HOSTILE[:-1])

BATCH = 100


def expected_latex(token: str) -> str:
    """What pdftotext shows for a token typeset by symtrans."""
    return "".join(ch if " " <= ch <= "~" else f"[U+{ord(ch):04X}]" for ch in token)


def _squash(text: str) -> str:
    # Line breaks (allowed after each code point) become spaces in pdftotext: compare
    # without whitespace; spaces themselves are checked through Markdown. A visible space
    # reads as "␣" where the font maps its glyph to Unicode (Type 1 fonts: cm-super, Latin
    # Modern) and as nothing where it does not: both are a space shown.
    return re.sub(r"[\s\u2423]+", "", text)


def test_latex_compiles_and_shows_every_token(tmp_path_factory):
    """6 documents × 100 tokens, each in text (visible spaces) and in math: all 600 found."""
    shown: list[str] = []

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hs.lists(TOKENS, min_size=BATCH, max_size=BATCH))
    def case(tokens: list[str]) -> None:
        shown.extend(_latex_document_shows(tmp_path_factory.mktemp("fuzz"), tokens))

    case()
    assert len(shown) >= 6 * BATCH


def _latex_document_shows(folder: Path, tokens: list[str]) -> list[str]:
    lines = []
    for i, tok in enumerate(tokens):
        body = latex_text(tok, macros=True, visible_spaces=True)
        lines.append(
            f"\\noindent BEGIN{i}:\\stTokenList{{{body}}}:END "
            f"$\\stUnemb{{{latex_text(tok.strip() or tok, macros=True)}}}$\\par"
        )
    (folder / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\sloppy\n\\makeatletter\n"
        + inline_sty()
        + "\n\\makeatother\n\\begin{document}\n"
        + "\n".join(lines)
        + "\n\\end{document}\n"
    )
    pdf, _ = compile_tex(folder)
    text = _squash(pdf_text(pdf))
    for i, tok in enumerate(tokens):
        want = _squash(f"BEGIN{i}:{expected_latex(tok)}:END")
        assert want in text, (tok, want)
    assert not Path("/tmp/symtrans-pwned").exists()
    return tokens


_md = MarkdownIt("commonmark")


def _md_inline(source: str) -> tuple[str, list[str]]:
    """Parse a paragraph; return its text content and the token types seen."""
    tokens = _md.parse(source)
    types, text = [], []
    for tok in tokens:
        types.append(tok.type)
        for child in tok.children or []:
            types.append(child.type)
            if child.type in ("text", "code_inline"):
                text.append(child.content)
    return "".join(text), types


def test_markdown_text_and_code_render_literally():
    """600 tokens, each as Markdown text and as a code span: all render literally."""
    checked: list[str] = []

    @settings(max_examples=600, deadline=None)
    @given(TOKENS)
    def case(token: str) -> None:
        _markdown_renders_literally(token)
        checked.append(token)

    case()
    assert len(checked) >= 600


def _markdown_renders_literally(token: str) -> None:
    for rendered, expected in (
        (
            markdown_text(token),
            "".join(
                f"U+{ord(c):04X}" if unicodedata.category(c).startswith("C") else c for c in token
            ),
        ),
        (markdown_code(token), visible_token(token)),
    ):
        text, types = _md_inline("x " + rendered + " y")
        assert "html_inline" not in types and "html_block" not in types, (token, rendered)
        assert not {"link_open", "image", "em_open", "strong_open"} & set(types), (token, types)
        assert text == "x " + expected + " y" or (
            # CommonMark trims one space inside code spans padded on both sides
            text.replace("  ", " ") == ("x " + expected + " y").replace("  ", " ")
        ), (token, rendered, text)


def test_katex_accepts_every_token_in_math():
    """6 × 100 tokens in math: KaTeX (strict) accepts all 600."""
    checked: list[str] = []

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hs.lists(TOKENS, min_size=BATCH, max_size=BATCH))
    def case(tokens: list[str]) -> None:
        items = [(r"\overline{\text{" + latex_text(t) + "}}", False) for t in tokens]
        errors = [(t, e) for t, e in zip(tokens, katex_errors(items), strict=True) if e]
        assert not errors, errors[:3]
        checked.extend(tokens)

    case()
    assert len(checked) >= 6 * BATCH


@pytest.mark.parametrize("token", HOSTILE[:-1])
def test_hostile_prompt_and_answer_through_every_format(bridge, tmp_path, token):
    """A hostile string as the prompt's tail: every report format stays data-only."""
    model = bridge("tiny-capitals")
    prompt = "Dublin is the capital city of" + (token if token.strip() else " x")
    d = st.decompose(model, prompt, answer=" Ireland")
    md = d.to_markdown()
    _, types = _md_inline(md)
    parsed = _md.parse(md)
    assert not any(t.type.startswith("html") for t in parsed)
    assert all(not (c.type.startswith("html")) for t in parsed for c in (t.children or []))
    page = d.to_html()
    assert "<script>alert" not in page and "<b>" not in page.split("<body>")[1].replace(
        "<b>", "", 0
    )
    d.save(tmp_path / "r.pdf")  # compiles: the token cannot break or escape the document
    assert not Path("/tmp/symtrans-pwned").exists()


_gfm = MarkdownIt("commonmark").enable("table")


@pytest.mark.parametrize("token", ["|", "a|b", "<|endoftext|>", "\\|", "`|`"])
def test_pipes_stay_inside_their_table_cell(bridge, token):
    """In a GFM table a "|" ends the cell even inside a code span: the per-source table
    keeps three cells per row whatever the token."""
    model = bridge("tiny-capitals")
    d = st.decompose(model, "Dublin" + token + " is", answer=" Ireland", split="positions")
    md = d.to_markdown()
    section = md[md.index("### By source position") :]
    tokens = _gfm.parse(section)
    rows = [t for t in tokens if t.type == "tr_open"]
    cells = [t for t in tokens if t.type in ("td_open", "th_open")]
    assert len(rows) == len(d.tokens) + 1 and len(cells) == 3 * len(rows)
    texts = [
        t.children[0].content
        for t in tokens
        if t.type == "inline" and t.children and t.children[0].type == "code_inline"
    ]
    assert texts == [tok.replace(" ", "␣") for tok in d.token_strings]
