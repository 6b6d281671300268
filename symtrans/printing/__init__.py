"""Printers: LaTeX (a sympy ``LatexPrinter`` subclass) and Markdown (KaTeX/MathJax-safe math)."""

from .latex import SymtransLatexPrinter, latex
from .markdown import markdown_math, markdown_text

__all__ = ["SymtransLatexPrinter", "latex", "markdown_math", "markdown_text"]
