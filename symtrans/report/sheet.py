"""A report sheet: what the analyses beyond one decomposition (logit lens, a dataset, an
attention score, path expansion, projection) say, independent of the format.

A :class:`Sheet` is a title, a few facts, and sections, each with optional display math, a
table and a figure, and a verification line. :mod:`.sheet_render` lays it out as Markdown,
LaTeX (fragment or document; PDF) and HTML. Text is raw data that each renderer escapes; math
is LaTeX in macro form (``symtrans.sty``), expanded for Markdown and HTML.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..verify import Check

# code: a label (TL-style name); token: a token string (spaces shown); math: LaTeX, macro form
CellKind = Literal["text", "code", "token", "number", "int", "math"]


@dataclass(frozen=True)
class Column:
    """A table column: its header (text) and how its cells are written."""

    header: str
    kind: CellKind = "number"


@dataclass(frozen=True)
class Plain:
    """A cell written as plain text whatever its column's kind (``other 12 terms``)."""

    text: str


Cell = str | float | int | Plain | None  # None: an empty cell


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    # Rows after which a rule is drawn (summary rows: "other", "total").
    rules_after: tuple[int, ...] = ()


@dataclass(frozen=True)
class LinePlot:
    """One or more series over categorical x positions."""

    x_labels: tuple[str, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (name, values)
    xlabel: str
    ylabel: str
    reference: float | None = None  # a horizontal line (e.g. the model's logit)
    reference_label: str = ""


@dataclass(frozen=True, eq=False)
class Heatmap:
    """A grid on a diverging scale centred at zero."""

    grid: np.ndarray  # [rows, cols]
    xlabel: str
    ylabel: str
    x_labels: tuple[str, ...]
    y_labels: tuple[str, ...]
    colorbar: str


Figure = LinePlot | Heatmap


@dataclass(frozen=True)
class Section:
    title: str
    text: str = ""
    math: tuple[str, ...] = ()  # lines of one aligned display, macro form
    table: Table | None = None
    figure: Figure | None = None
    caption: str = ""  # the figure's caption


@dataclass(frozen=True)
class Verification:
    """What was checked, and the check."""

    what: str  # e.g. "the last lens value against the model's logit"
    check: Check


@dataclass(frozen=True)
class Sheet:
    title: str
    facts: tuple[tuple[str, str], ...]  # ("Model", "..."), plain text
    sections: tuple[Section, ...]
    verification: Verification | None = None
    tokens: tuple[tuple[str, bool], ...] = ()  # (token, highlighted)
    name: str = "analysis"  # stem of side files
    digits: int = 6


class Reportable:
    """``to_markdown`` / ``to_latex`` / ``to_html`` / ``save`` for a result with a
    :meth:`sheet`."""

    def sheet(self, use_macros: bool = False) -> Sheet:
        """The report's content; math in macro form (LaTeX documents) or plain (KaTeX,
        MathJax, MathML)."""
        raise NotImplementedError

    def to_markdown(self) -> str:
        """The report as Markdown (math for KaTeX and MathJax; pictures only through save)."""
        from .sheet_render import render_sheet

        return str(render_sheet(self.sheet(use_macros=False), "md")[0])

    def to_latex(self, standalone: bool = False) -> str:
        """A fragment to ``\\input`` after ``\\usepackage{symtrans}``, or a document."""
        from .sheet_render import sheet_latex

        return sheet_latex(self.sheet(use_macros=True), standalone=standalone)

    def to_html(self) -> str:
        """A self-contained HTML page (MathML, inline SVG)."""
        from .sheet_render import render_sheet

        return str(render_sheet(self.sheet(use_macros=False), "html")[0])

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the report in the format its suffix names (``.md .tex .pdf .html``),
        atomically; Markdown pictures go beside it as ``<stem>.<picture>.svg``."""
        from . import suffix_format
        from .sheet_render import save_sheet

        _, fmt = suffix_format(path)  # a bad suffix is refused before any work
        return save_sheet(self.sheet(use_macros=fmt in ("tex", "pdf")), path)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
