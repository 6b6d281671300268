"""Token strings are data, never markup: escaping for LaTeX and Markdown."""

from __future__ import annotations

import unicodedata

# Inside \text{...} (works in LaTeX, KaTeX and MathJax alike).
_LATEX_TEXT = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "%": r"\%",
}


def latex_text(text: str) -> str:
    """``text`` as the body of a ``\\text{...}``: specials escaped, control characters shown
    as ``U+XXXX``, non-ASCII characters shown by their code point (always compiles)."""
    out = []
    for ch in text:
        if ch in _LATEX_TEXT:
            out.append(_LATEX_TEXT[ch])
        elif ch == " ":
            out.append(" ")
        elif ch.isascii() and ch.isprintable():
            out.append(ch)
        else:
            out.append(f"<U+{ord(ch):04X}>" if unicodedata.category(ch)[0] == "C" else
                       f"[U+{ord(ch):04X}]")
    return "".join(out)


_MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>$~&")


def markdown_text(text: str) -> str:
    """``text`` as inline Markdown that renders literally (no markup, no raw HTML)."""
    out = []
    for ch in text:
        if ch in _MARKDOWN_SPECIAL:
            out.append("&#" + str(ord(ch)) + ";" if ch in "<>&" else "\\" + ch)
        elif unicodedata.category(ch)[0] == "C":
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def visible_token(token: str) -> str:
    """A token with its spaces made visible (``␣``) and control characters named."""
    return "".join(
        "␣" if ch == " " else (f"U+{ord(ch):04X}" if unicodedata.category(ch)[0] == "C" else ch)
        for ch in token
    )
