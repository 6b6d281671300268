"""Token strings are data, never markup: escaping for LaTeX, Markdown and HTML.

LaTeX output is pure ASCII: every character outside printable ASCII becomes a visible code
point (``\\stU{00E9}`` with symtrans.sty, ``[U+00E9]`` without), so no token can break a
pdflatex run or reach the TeX input processor (``^^5c``, ``\\catcode``, ``\\input`` and
``\\write18`` come out as their letters).
"""

from __future__ import annotations

import unicodedata

# Inside \text{...}; each replacement works in pdflatex, KaTeX and MathJax alike.
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
    # OT1 text fonts print these as other glyphs; the named forms work everywhere.
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


# pdflatex (T1) turns these into curly quotes; KaTeX knows neither macro and keeps them as is.
_PDFLATEX_ONLY = {"'": r"\textquotesingle{}", "`": r"\textasciigrave{}"}
# A character that starts a ligature (-- --- ,, !` ?` << >>) is closed with {} to stay itself.
_LIGATURE_START = set("-,!?`'")


def latex_text(text: str, macros: bool = False, visible_spaces: bool = False) -> str:
    """``text`` as the body of ``\\text{...}`` (or any text-mode group), printed as itself.

    ``macros=True`` is for documents that load symtrans.sty and go through pdflatex; the
    default is for KaTeX and MathJax (and plain LaTeX)."""
    out = []
    for ch in text:
        if macros and ch in _PDFLATEX_ONLY:
            out.append(_PDFLATEX_ONLY[ch])
        elif ch in _LIGATURE_START:
            out.append(ch + "{}")
        elif ch in _LATEX_TEXT:
            out.append(_LATEX_TEXT[ch])
        elif ch == " ":
            out.append(
                (r"\stSpace{}" if macros else r"\textvisiblespace{}") if visible_spaces else " "
            )
        elif " " < ch <= "~":
            out.append(ch)
        else:
            code = f"{ord(ch):04X}"
            out.append(rf"\stU{{{code}}}" if macros else f"[U+{code}]")
    return "".join(out)


def is_control(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "C"


def visible_token(token: str) -> str:
    """A token with its spaces made visible (``␣``) and control characters named
    (``U+000A``), for Markdown code spans and HTML."""
    return "".join(
        "␣" if ch == " " else (f"U+{ord(ch):04X}" if is_control(ch) else ch) for ch in token
    )


# Mid-line, only these can start markup (links need "[", images "![", headings and lists a
# line start, which a token in running text never is: newlines are named, not kept).
_MARKDOWN_SPECIAL = set("\\`*_{}[]|~$")


def markdown_text(text: str) -> str:
    """``text`` as inline Markdown that renders literally: specials backslash-escaped,
    ``< > &`` as entities (never raw HTML), control characters named, newlines kept out."""
    out = []
    for ch in text:
        if ch in _MARKDOWN_SPECIAL:
            out.append("\\" + ch)
        elif ch in "<>&":
            out.append(f"&#{ord(ch)};")
        elif is_control(ch):
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def markdown_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span (literal by definition), fenced by more backticks
    than it contains, with spaces shown as ``␣``. In a table cell a ``|`` would end the cell
    even inside a code span (GFM), so it is written ``\\|`` there."""
    body = visible_token(text)
    if in_table:
        body = body.replace("|", "\\|")
    longest = run = 0
    for ch in body:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"
