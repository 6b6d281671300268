"""What a report says, independent of the format it is written in: the one content model
every result is rendered from.

A :class:`Document` is a title, a few facts, the prompt's tokens, and sections of blocks
(paragraphs, displayed equations, tables, figures), with a verification line. Text is data
(:data:`Text`: plain strings, token strings, labels, inline math) that each renderer escapes
for its own format; math is always LaTeX in macro form (``symtrans.sty``): the LaTeX renderer
keeps it, Markdown writes it plain (:func:`~symtrans.printing.notation.plain`), HTML and Typst
translate it (:mod:`symtrans.printing.mathml`, :mod:`symtrans.printing.typst`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..verify import Check

# -- inline text ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A token string, printed with its spaces made visible."""

    text: str


@dataclass(frozen=True)
class Code:
    """A name printed in a fixed-width font (a term's label, a split)."""

    text: str


@dataclass(frozen=True)
class Math:
    """Inline math (LaTeX in macro form), e.g. a symbol named in prose."""

    tex: str


@dataclass(frozen=True)
class Strong:
    """Plain text set in bold."""

    text: str


Inline = str | Token | Code | Math | Strong
Text = tuple[Inline, ...]


def as_text(value: str | Inline | Text) -> Text:
    """A plain string (or one inline piece) as :data:`Text`."""
    if isinstance(value, tuple):
        return value
    return (value,)


def plain_text(t: Text) -> str:
    """``t`` as plain text (a page title, a file's metadata)."""
    out = []
    for piece in t:
        if isinstance(piece, str):
            out.append(piece)
        elif isinstance(piece, Math):
            out.append(piece.tex)
        else:
            out.append(piece.text)
    return "".join(out)


# -- tables ---------------------------------------------------------------------------------

# code: a label; token: a token string (spaces shown); math: LaTeX; percent: a share in [0, 1]
CellKind = Literal["text", "code", "token", "number", "int", "math", "percent"]


@dataclass(frozen=True)
class Column:
    """A table column: its header (text, or a symbol) and how its cells are written."""

    header: str | Math
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
    rules_after: tuple[int, ...] = ()  # rows after which a rule is drawn (before summaries)
    strong_rows: tuple[int, ...] = ()  # rows set in bold (the total)


# -- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of a waterfall: from ``start`` to ``end`` (the running sum)."""

    label: str
    start: float
    end: float
    kind: Literal["positive", "negative", "total"]


@dataclass(frozen=True)
class Waterfall:
    """Each term moves the running sum; the last bar is the total."""

    bars: tuple[Bar, ...]
    xlabel: str = "contribution to the logit (running sum)"


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


Picture = Waterfall | LinePlot | Heatmap


# -- blocks and the document ----------------------------------------------------------------


@dataclass(frozen=True)
class Paragraph:
    text: Text


@dataclass(frozen=True)
class Equation:
    """A displayed equation as lines of an ``aligned`` block (``&`` marks the alignment),
    with the sentence that introduces it."""

    lines: tuple[str, ...]
    caption: Text = ()


@dataclass(frozen=True)
class Figure:
    """A picture, its caption, and the name of its side file (``<stem>.<name>.svg``)."""

    picture: Picture
    caption: str
    name: str


Block = Paragraph | Equation | Table | Figure


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...]
    level: int = 1  # 2: a subsection of the section before it


@dataclass(frozen=True)
class Verification:
    """The check, what it compared (``value`` against ``reference``: "sum of terms" against
    "model logit") and, where it needs saying, what it is about."""

    check: Check
    value: str = "sum"
    reference: str = "model"
    what: str = ""


@dataclass(frozen=True)
class Document:
    title: Text
    facts: tuple[tuple[str, Text], ...]  # ("Model", "..."), shown before the tokens
    sections: tuple[Section, ...]
    verification: Verification | None = None
    tokens: tuple[tuple[str, bool], ...] = ()  # (token, highlighted)
    prompt: str = ""  # the prompt the result is about, where it has one (for templates)

    def figures(self) -> list[Figure]:
        """Every figure, in order."""
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


@dataclass(frozen=True)
class Style:
    """How a document is built for a target: the line budget of displayed sums in rough
    characters, how many rows a largest-first table lists, and whether it must fit one column
    of a two-column paper (``narrow``: fewer table columns)."""

    width: float
    top_k: int = 12
    narrow: bool = False
