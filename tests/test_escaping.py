"""Token strings are data, never markup: Hypothesis-generated strings (500 and more per
format) through LaTeX (compiles; pdftotext shows the text), Markdown (parses; no raw HTML;
the text comes back), math (KaTeX and MathJax 3 show the token's own characters; a GFM
renderer leaves it alone), and HTML."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from markdown_it import MarkdownIt

import symtrans as st
from symtrans.printing.escape import (
    latex_text,
    markdown_code,
    markdown_text,
    math_text,
    unescape_latex_text,
    visible_token,
)
from symtrans.report.latex import inline_sty

from .latex_tools import compile_tex, pdf_text
from .math_tools import leaves, mangled_by_gfm, typeset

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
    "\udcc3\udcbc",  # two bytes of a byte-level BPE: one UTF-8 character, split
    "Ελλάδα Россия Zürich",
    "  two  spaces ",
    "",
]

TOKENS = hs.text(
    alphabet=hs.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
) | hs.sampled_from(HOSTILE[:-1])

BATCH = 100


def expected_latex(token: str) -> str:
    """What pdftotext shows for a token typeset by symtrans, as a regular expression: ASCII
    as itself, a Latin letter with its accent as the letter and its accent (in whichever order
    and form pdftotext gives them), a Greek letter as itself (the document declares LGR),
    raw bytes as <0xC3>, anything else as its code point."""
    out = []
    for ch in token:
        code = ord(ch)
        if " " <= ch <= "~":
            out.append(re.escape(ch))
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(re.escape(f"<0x{code - 0xDC00:02X}>"))
        elif latex_text(ch, macros=True).startswith(r"\stChar"):
            out.append(".{1,3}")
        elif latex_text(ch, macros=True).startswith(r"\stEnc{") and "{LGR}" in latex_text(
            ch, macros=True
        ):
            out.append(re.escape(ch))
        else:
            out.append(re.escape(f"[U+{code:04X}]"))
    return "".join(out)


def _squash(text: str) -> str:
    # Line breaks (allowed after each code point) become spaces in pdftotext: compare
    # without whitespace; spaces themselves are checked through Markdown. A visible space
    # reads as "␣" where the font maps its glyph to Unicode and as nothing where it does not:
    # both are a space shown.
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
    # as the standalone reports do: OT1 Computer Modern, Greek in LGR (no cm-super needed)
    (folder / "doc.tex").write_text(
        "\\documentclass{article}\n\\usepackage[LGR,OT1]{fontenc}\n\\sloppy\n"
        "\\makeatletter\n"
        + inline_sty()
        + "\n\\makeatother\n\\begin{document}\n"
        + "\n".join(lines)
        + "\n\\end{document}\n"
    )
    pdf, _ = compile_tex(folder)
    text = _squash(pdf_text(pdf))
    for i, tok in enumerate(tokens):
        want = f"BEGIN{i}:" + _squash(expected_latex(tok).replace("\\ ", " ")) + ":END"
        assert re.search(want, text), (tok, want)
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
                f"<0x{ord(c) - 0xDC00:02X}>"
                if 0xDC80 <= ord(c) <= 0xDCFF
                else f"U+{ord(c):04X}"
                if unicodedata.category(c).startswith("C")
                else c
                for c in token
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


def test_latex_escaping_has_an_exact_inverse():
    """The report's other formats read the token back out of its LaTeX (``\\stTok``)."""
    checked: list[str] = []

    @settings(max_examples=600, deadline=None)
    @given(TOKENS | hs.text(alphabet=hs.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)))
    def case(token: str) -> None:
        for spaces in (False, True):
            escaped = latex_text(token, macros=True, visible_spaces=spaces)
            assert escaped.isascii()
            assert unescape_latex_text(escaped) == token
        checked.append(token)

    case()
    assert len(checked) >= 600


_ENGINE_GLYPHS = str.maketrans(
    {"∖": "\\", "∣": "|", "’": "'", "―": "_", "‾": "_", "ı": "i", "ȷ": "j", "\u00a0": " "}
)


def _read(text: str) -> str:
    """Math text as a reader reads it: an accent over a space is its character (\\hat{\\ }
    is ^) and an engine's glyph for an ASCII character is that character."""
    text = text.translate(_ENGINE_GLYPHS)
    # math sets runs of spaces as one space, as TeX does (the token list shows every space)
    text = re.sub(" +", " ", text)
    for accent in "_^`":
        text = text.replace(" " + accent, accent)
    # outside ASCII, engines pick their own glyphs (KaTeX: · as ⋅, ü as u and ¨): compare the
    # ASCII, where a LaTeX escape shown as letters (\\textless{}) would be
    text = unicodedata.normalize("NFD", text)
    return "".join(c for c in text if c.isascii()).strip()


def expected_math(token: str) -> str:
    out = []
    for ch in token:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"<0x{code - 0xDC00:02X}>")
        elif ch in "$%&#" or unicodedata.category(ch)[0] == "C":
            out.append(f"U+{code:04X}")
        else:
            out.append(ch)
    return _read("".join(out))


@pytest.mark.parametrize("engine", ["katex", "mathjax"])
def test_math_shows_every_token_as_itself(engine):
    """6 × 100 tokens in math (under an overline, as an unembedding): KaTeX and MathJax 3
    typeset every one without an error, and the characters they show are the token's own
    (never a LaTeX escape such as \\textless{} shown as letters)."""
    checked: list[str] = []

    @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hs.lists(TOKENS, min_size=BATCH, max_size=BATCH))
    def case(tokens: list[str]) -> None:
        items = [(r"\overline{" + math_text(t) + "}", False) for t in tokens]
        for token, result in zip(tokens, typeset(items, engine), strict=True):
            assert "error" not in result, (token, result)
            shown = _read(leaves(result["mathml"]))[:-1]  # the overline's own glyph
            assert shown == expected_math(token), (token, shown)
        checked.extend(tokens)

    case()
    assert len(checked) >= 6 * BATCH


def test_math_survives_a_gfm_renderer():
    """600 tokens in inline math in a paragraph and in a table cell: a GFM renderer without
    a math extension leaves every one as it was written (no emphasis, no eaten backslash)."""
    checked: list[str] = []

    @settings(max_examples=600, deadline=None)
    @given(TOKENS)
    def case(token: str) -> None:
        tex = r"\overline{" + math_text(token) + "}"
        markdown = f"Text ${tex}$ and $x$.\n\n| a | b |\n|---|---|\n| ${tex}$ | 1 |\n"
        assert not mangled_by_gfm(markdown), (token, tex)
        checked.append(token)

    case()
    assert len(checked) >= 600


# a prompt is text: raw bytes (lone surrogates) come only from the tokenizer
PROMPTS = [t for t in HOSTILE[:-1] if not any(0xD800 <= ord(c) <= 0xDFFF for c in t)]


@pytest.mark.parametrize("token", PROMPTS)
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
