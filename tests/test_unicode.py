"""Prompts in other scripts: with pdflatex, Latin letters print as text in any font encoding,
Greek where LGR is declared (the standalone report declares it; its fonts come with
texlive-science), Cyrillic where T2A is, and otherwise the code point; with lualatex the text
itself prints. A byte-level BPE splits a character it has not learnt into byte tokens, which
print as their bytes (<0xC3>), distinct from one another, in every format."""

from __future__ import annotations

import re
import unicodedata

import pytest

import symtrans as st

from .latex_tools import compile_tex, pdf_text

PROMPT = "Zürich Αθήνα Москва: Dublin is the capital city of"


@pytest.fixture(scope="module")
def abroad(bridge):  # type: ignore[no-untyped-def]
    return st.decompose(bridge("tiny-capitals"), PROMPT, answer=" Ireland", split="layers")


def test_bytes_of_a_split_character_stay_distinct(abroad):
    # the embedded tokenizer learnt ASCII: ü is two byte tokens, 0xC3 and 0xBC
    strings = abroad.token_strings
    assert "\udcc3" in strings and "\udcbc" in strings
    md = abroad.to_markdown()
    assert "`<0xC3>`" in md and "`<0xBC>`" in md
    page = abroad.to_html()
    assert "&lt;0xC3&gt;" in page and "&lt;0xBC&gt;" in page and "\ufffd" not in page
    assert "\ufffd" not in md


def _loose(text: str) -> str:
    """pdftotext of an accent built by OT1 (u and ¨, in either order) read as the letter."""
    return unicodedata.normalize("NFC", re.sub(r"u\s?¨|¨\s?u", "ü", text))


def test_pdflatex_prints_latin_and_greek_as_text_and_cyrillic_as_code_points(abroad, tmp_path):
    (tmp_path / "doc.tex").write_text(abroad.to_latex(standalone=True))
    pdf, _ = compile_tex(tmp_path)
    text = _loose(pdf_text(pdf))
    assert "Zürich" in text
    assert "Αθήνα" in text  # LGR, declared by the standalone report
    assert "[U+041C]" in text  # М: no T2A (and no Cyrillic fonts) in the three packages
    assert "<0xC3>" in text and "<0xBC>" in text


def test_a_document_that_declares_t2a_gets_cyrillic_text(abroad, tmp_path):
    """The fragment asks the document: with T2A declared (here a stand-in built on Computer
    Modern, as no Cyrillic font comes with the three packages) the letter's command prints
    instead of its code point."""
    st.write_sty(tmp_path)
    (tmp_path / "frag.tex").write_text(abroad.to_latex())
    (tmp_path / "doc.tex").write_text(
        "\\documentclass{article}\n"
        "\\DeclareFontEncoding{T2A}{}{}\n\\DeclareFontSubstitution{T2A}{cmr}{m}{n}\n"
        "\\DeclareFontFamily{T2A}{cmr}{}\n\\DeclareFontShape{T2A}{cmr}{m}{n}{<->cmr10}{}\n"
        # Москва's letters, each at the slot of a Latin look-alike in the stand-in font
        + "".join(
            f"\\DeclareTextSymbol{{\\{command}}}{{T2A}}{{{ord(latin)}}}\n"
            for command, latin in (
                ("CYRM", "M"),
                ("cyro", "o"),
                ("cyrs", "s"),
                ("cyrk", "k"),
                ("cyrv", "v"),
                ("cyra", "a"),
            )
        )
        + "\\usepackage{symtrans}\n\\begin{document}\n\\input{frag.tex}\n\\end{document}\n"
    )
    pdf, _ = compile_tex(tmp_path)
    text = pdf_text(pdf).replace("\n", "")
    assert "Moskva" in text and "[U+041C]" not in text


def test_a_unicode_engine_prints_every_script_as_text(abroad, tmp_path):
    """xelatex (lualatex likewise: the package asks the engine, not the option)."""
    path = abroad.save(tmp_path / "report.pdf", engine="xelatex")
    text = pdf_text(tmp_path / "report.pdf")
    assert path.endswith(".pdf")
    for word in ("Zürich", "Αθήνα", "Москва"):
        assert word in text, word
    assert "<0xC3>" in text and "<0xBC>" in text
