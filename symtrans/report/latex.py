"""A :class:`~.document.Document` as LaTeX: a fragment to ``\\input`` after
``\\usepackage{symtrans}``, or a standalone article that carries the package inline. Compiles
with ``pdflatex -no-shell-escape``; every token string is escaped to ASCII text."""

from __future__ import annotations

import math
import os
from functools import singledispatch

import numpy as np

from ..printing.escape import latex_text
from ..printing.notation import sty_path
from ..templates import render
from .document import (
    Bar,
    Block,
    Cell,
    Code,
    Document,
    Equation,
    Heatmap,
    Inline,
    LinePlot,
    Math,
    Paragraph,
    Picture,
    Plain,
    Strong,
    Table,
    Text,
    Token,
    Waterfall,
)
from .layout import check_context, tex_number, verdict

_BAR_COLOR = {"positive": "stPositive", "negative": "stNegative", "total": "stTotal"}

# Symbols of symtrans's own prose that pdflatex gets as math (token strings never pass here:
# they stay escaped by ``latex_text`` alone).
_PROSE_MATH = {
    "2212": "-",
    "03C3": r"\sigma",
    "00D7": r"\times",
    "2192": r"\rightarrow",
    "00B1": r"\pm",
    "03A3": r"\Sigma",
}


def prose(text: str) -> str:
    """symtrans's own text (headings, captions) as LaTeX."""
    out = latex_text(text, macros=True)
    for code, symbol in _PROSE_MATH.items():
        out = out.replace(rf"\stU{{{code}}}", rf"\ensuremath{{{symbol}}}")
    out = out.replace(r"\textquotesingle{}", "'{}")  # prose: an apostrophe, not a glyph of code
    return out.replace(r"\stU{201C}", "``").replace(r"\stU{201D}", "''")


def token(text: str) -> str:
    return r"\stTokenList{" + latex_text(text, macros=True, visible_spaces=True) + "}"


@singledispatch
def inline(piece: Inline) -> str:
    return prose(str(piece))


@inline.register
def _(piece: Token) -> str:
    return token(piece.text)


@inline.register
def _(piece: Code) -> str:
    return r"\stLabel{" + latex_text(piece.text) + "}"


@inline.register
def _(piece: Math) -> str:
    return f"${piece.tex}$"


@inline.register
def _(piece: Strong) -> str:
    return r"\textbf{" + prose(piece.text) + "}"


def text(t: Text) -> str:
    return "".join(inline(piece) for piece in t)


def fixed_decimals(values: list[float], digits: int) -> int:
    """Decimals that give the largest |value| ``digits`` significant digits."""
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0 or not math.isfinite(largest):
        return digits - 1
    return max(0, digits - 1 - math.floor(math.log10(largest)))


def num(value: float) -> str:
    """A number for pgfplots coordinates (6 significant digits)."""
    return f"{value:.6g}"


# -- tables ---------------------------------------------------------------------------------


def table(t: Table, digits: int) -> dict[str, object]:
    specs, formats = [], {}
    for i, column in enumerate(t.columns):
        if column.kind == "number":
            values = [float(v) for row in t.rows if isinstance(v := row[i], (int, float))]
            decimals = fixed_decimals(values, digits)
            integer = max([1] + [len(str(int(abs(v)))) for v in values])
            formats[i] = decimals
            specs.append(f"S[table-format=-{integer}.{decimals}]")
        else:
            specs.append("r" if column.kind in ("int", "percent") else "l")

    def cell(i: int, value: Cell, strong: bool) -> str:
        kind = t.columns[i].kind
        if isinstance(value, Plain):
            out = prose(value.text)
        elif value is None:
            return "{}"
        elif kind == "number":
            return f"{float(value):.{formats[i]}f}"
        elif kind == "percent":
            out = f"{100 * float(value):.1f}\\,\\%"
        elif kind == "int":
            out = str(value)
        elif kind == "math":
            return f"${value}$" if value else ""
        elif kind == "code":
            out = r"\stLabel{" + latex_text(str(value)) + "}"
        elif kind == "token":
            out = token(str(value))
        else:
            out = prose(str(value))
        return r"\textbf{" + out + "}" if strong else out

    header = [
        "{" + prose(c.header) + "}" if c.kind == "number" else prose(c.header) for c in t.columns
    ]
    return {
        "spec": " ".join(specs),
        "header": " & ".join(header),
        "rows": [
            {
                "cells": " & ".join(cell(i, v, r in t.strong_rows) for i, v in enumerate(row)),
                "rule": r in t.rules_after,
            }
            for r, row in enumerate(t.rows)
        ],
    }


# -- pictures -------------------------------------------------------------------------------


def heatmap_cells(grid: np.ndarray) -> list[str]:
    """``x y c`` rows for a pgfplots ``patch type=rectangle`` plot: the four corners of each
    cell, each carrying the cell's value. (``matrix plot*`` would be shorter, but pgfplots
    takes a single row or column for a line plot and refuses it.)"""
    rows, cols = grid.shape
    out = []
    for r in range(rows):
        for c in range(cols):
            value = num(float(grid[r, c]))
            for dx, dy in ((-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)):
                out.append(f"{c + dx:g} {r + dy:g} {value}")
    return out


def heatmap_context(grid: np.ndarray) -> dict[str, object]:
    """What a pgfplots heatmap of ``grid`` (``[rows, cols]``) needs: colour limit, ticks,
    height, the cells as patches, and the numbers in the cells while they stay legible."""
    rows, cols = grid.shape
    return {
        "limit": num(float(np.max(np.abs(grid))) or 1.0),
        "xticks": ",".join(str(c) for c in range(cols)),
        "yticks": ",".join(str(r) for r in range(rows)),
        "height": f"{max(1.6, min(0.7 * rows, 9.0)):.2f}",
        "cells": heatmap_cells(grid),
        "labels": []
        if rows * cols > 64
        else [
            {"x": c, "y": r, "text": f"{float(grid[r, c]):.2f}"}
            for r in range(rows)
            for c in range(cols)
        ],
    }


def _waterfall(bars: tuple[Bar, ...], xlabel: str) -> dict[str, object]:
    ends = [0.0] + [b.start for b in bars] + [b.end for b in bars]
    lo, hi = min(ends), max(ends)
    pad = 0.05 * ((hi - lo) or 1.0)
    return {
        "kind": "waterfall",
        "height": f"{0.42 * len(bars):.2f}",
        "ymax": f"{len(bars) - 0.4:.1f}",
        "xmin": num(lo - pad),
        "xmax": num(hi + pad),
        "ticks": ",".join(str(i) for i in range(len(bars))),
        "labels": ",".join("{" + r"\stLabel{" + latex_text(b.label) + "}}" for b in bars),
        "xlabel": prose(xlabel),
        "bars": [
            {
                "color": _BAR_COLOR[b.kind],
                "left": num(min(b.start, b.end)),
                "right": num(max(b.start, b.end)),
                "low": f"{i - 0.35:.2f}",
                "high": f"{i + 0.35:.2f}",
            }
            for i, b in enumerate(bars)
        ],
    }


def picture(p: Picture) -> dict[str, object]:
    if isinstance(p, Waterfall):
        return _waterfall(p.bars, p.xlabel)
    if isinstance(p, LinePlot):
        values = [v for _, series in p.series for v in series]
        if p.reference is not None:
            values.append(p.reference)
        return {
            "kind": "line",
            "xticks": ",".join(str(i) for i in range(len(p.x_labels))),
            "xticklabels": ",".join("{" + r"\stLabel{" + latex_text(x) + "}}" for x in p.x_labels),
            "xlabel": prose(p.xlabel),
            "ylabel": prose(p.ylabel),
            "series": [
                {
                    "name": prose(name),
                    "points": " ".join(f"({i},{num(v)})" for i, v in enumerate(series)),
                }
                for name, series in p.series
            ],
            "reference": None if p.reference is None else num(p.reference),
            "reference_label": prose(p.reference_label),
            "xmax": len(p.x_labels) - 1,
            "legend": len(p.series) > 1,
        }
    assert isinstance(p, Heatmap)
    return {
        "kind": "heatmap",
        **heatmap_context(p.grid),
        "xticklabels": ",".join("{" + latex_text(x, macros=True) + "}" for x in p.x_labels),
        "yticklabels": ",".join("{" + latex_text(y, macros=True) + "}" for y in p.y_labels),
        "xlabel": prose(p.xlabel),
        "ylabel": prose(p.ylabel),
    }


# -- documents ------------------------------------------------------------------------------


def block(b: Block, digits: int) -> dict[str, object]:
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text)}
    if isinstance(b, Equation):
        return {"kind": "equation", "caption": text(b.caption), "body": " \\\\\n".join(b.lines)}
    if isinstance(b, Table):
        return {"kind": "table", **table(b, digits)}
    return {"kind": "figure", "picture": picture(b.picture), "caption": prose(b.caption)}


def inline_sty() -> str:
    """The body of symtrans.sty for a standalone document's preamble."""
    keep = []
    for line in sty_path().read_text(encoding="utf-8").splitlines():
        if line.startswith((r"\NeedsTeXFormat", r"\ProvidesPackage", r"\endinput")):
            continue
        keep.append(line)
    return "\n".join(keep)


def latex(
    doc: Document, standalone: bool, template_folder: str | os.PathLike[str] | None = None
) -> str:
    """The document as a fragment (needs ``\\usepackage{symtrans}``) or a standalone
    article."""
    context = {
        "title": text(doc.title),
        "facts": [{"key": prose(k), "value": text(v)} for k, v in doc.facts],
        "tokens": r"\ ".join(
            (r"\fbox{" + token(t) + "}") if here else token(t) for t, here in doc.tokens
        ),
        "sections": [
            {
                "title": prose(s.title),
                "level": s.level,
                "blocks": [block(b, doc.digits) for b in s.blocks],
            }
            for s in doc.sections
        ],
        "check": check_context(doc, tex_number, prose),
        "verdict": verdict(doc, r"\textbf{holds}", r"\textbf{FAILS}"),
        "prompt": latex_text(doc.prompt, macros=True),
        "sty": inline_sty() if standalone else "",
    }
    return render("report.tex" if standalone else "fragment.tex", context, template_folder)
