"""Markdown with math that both KaTeX and MathJax accept."""

from __future__ import annotations

import sympy

from .escape import markdown_text
from .latex import SymtransLatexPrinter


def markdown_math(expr: sympy.Basic | str, display: bool = True) -> str:
    """``$$...$$`` (or ``$...$``) around the LaTeX of ``expr``; a string is taken as LaTeX."""
    body = expr if isinstance(expr, str) else SymtransLatexPrinter().doprint(expr)
    return f"$$\n{body}\n$$" if display else f"${body}$"


__all__ = ["markdown_math", "markdown_text"]
