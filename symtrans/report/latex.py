"""A :class:`~.document.Document` as LaTeX.

- ``fragment``: to ``\\input`` after ``\\usepackage{symtrans}`` in any class (IEEEtran,
  acmart, llncs, revtex, elsarticle, article, a beamer frame). Tables are ``\\stTable``: set
  row by row into the page, so they break across pages and columns; the widest text column
  wraps when a table is wider than the line. No sectioning command and no vertical space of
  its own unless asked (``heading``).
- ``standalone``: a compilable article that carries the package inline.
- ``bare``: the same report for any LaTeX document that loads only amsmath and longtable (a
  notebook's ``_repr_latex_``, which nbconvert puts in its PDF): math written plain, tables as
  ``longtable``, no pictures.

Every token string is escaped to ASCII text; every glyph exists as a Type 1 font in any TeX
installation."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import singledispatch

import numpy as np

from ..errors import InvalidArgumentError
from ..printing.escape import latex_text
from ..printing.notation import plain, sty_path
from ..templates import render
from . import numbers
from .document import (
    Bar,
    Block,
    Cell,
    Code,
    Column,
    Document,
    Equation,
    Figure,
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
from .layout import check_context, text_width, verdict

_BAR_COLOR = {"positive": "stPositive", "negative": "stNegative", "total": "stTotal"}

# Symbols of symtrans's own prose that LaTeX gets as math (token strings never pass here).
_PROSE_MATH = {
    "−": "-",
    "σ": r"\sigma",
    "λ": r"\lambda",
    "×": r"\times",
    "→": r"\rightarrow",
    "±": r"\pm",
    "Σ": r"\Sigma",
    "≤": r"\le",
}
_PROSE_TEXT = {"“": "``", "”": "''", "’": "'", "‘": "`", "–": "--", "—": "---"}
_SECTIONS = ("section", "subsection", "subsubsection", "paragraph", "subparagraph")


@dataclass(frozen=True)
class Flavor:
    """``macros``: the document loads symtrans.sty (fragment, standalone); otherwise bare."""

    macros: bool = True


SYMTRANS = Flavor(True)
BARE = Flavor(False)


_POWER = re.compile(r"×10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)")
_SUPERSCRIPT = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def prose(text: str, flavor: Flavor = SYMTRANS) -> str:
    """symtrans's own text (headings, captions, sentences) as LaTeX (``1.0×10⁻⁵``, which
    :mod:`.numbers` writes in text, as math)."""
    pieces = _POWER.split(text)
    if len(pieces) > 1:
        return "".join(
            prose(piece, flavor)
            if i % 2 == 0
            else rf"\ensuremath{{\times10^{{{piece.translate(_SUPERSCRIPT)}}}}}"
            for i, piece in enumerate(pieces)
        )
    out = []
    for ch in text:
        if ch in _PROSE_MATH:
            out.append(rf"\ensuremath{{{_PROSE_MATH[ch]}}}")
        elif ch in _PROSE_TEXT:
            out.append(_PROSE_TEXT[ch])
        elif ch == "'":
            out.append("'")  # prose: an apostrophe, not a straight quote of code
        else:
            out.append(latex_text(ch, macros=flavor.macros))
    return "".join(out)


def token(text: str, flavor: Flavor = SYMTRANS) -> str:
    if flavor.macros:
        return r"\stTokenList{" + latex_text(text, macros=True, visible_spaces=True) + "}"
    body = latex_text(text).replace(" ", r"\textvisiblespace{}")
    return r"\texttt{" + body + "}"


def label(text: str, flavor: Flavor = SYMTRANS) -> str:
    """A term's label in a fixed-width font; a path (``L0H0->L1H0``) may break after ``->``."""
    body = latex_text(text).replace(r"\textgreater{}", r"\textgreater{}\allowbreak{}")
    return (r"\stLabel{" if flavor.macros else r"\texttt{") + body + "}"


def math(tex: str, flavor: Flavor = SYMTRANS) -> str:
    return tex if flavor.macros else plain(tex)


def text(t: Text, flavor: Flavor = SYMTRANS) -> str:
    @singledispatch
    def inline(piece: Inline) -> str:
        return prose(str(piece), flavor)

    @inline.register
    def _(piece: Token) -> str:
        return token(piece.text, flavor)

    @inline.register
    def _(piece: Code) -> str:
        return label(piece.text, flavor)

    @inline.register
    def _(piece: Math) -> str:
        return f"${math(piece.tex, flavor)}$"

    @inline.register
    def _(piece: Strong) -> str:
        return r"\textbf{" + prose(piece.text, flavor) + "}"

    return "".join(inline(piece) for piece in t)


def header(column: Column, flavor: Flavor = SYMTRANS) -> str:
    """A column's header; a number column's header of several words on two lines, so it is no
    wider than its numbers need."""
    if isinstance(column.header, Math):
        return f"${math(column.header.tex, flavor)}$"
    numeric = column.kind in ("number", "percent")
    lines = _header_lines(column.header) if numeric else (column.header,)
    if len(lines) == 1:
        return prose(column.header, flavor)
    first, second = (prose(line, flavor) for line in lines)
    if flavor.macros:
        return rf"\stStack{{{first}}}{{{second}}}"
    return rf"\begin{{tabular}}[b]{{@{{}}r@{{}}}}{first}\\{second}\end{{tabular}}"


# -- tables ---------------------------------------------------------------------------------


def _estimate(cell: Cell, column: Column) -> float:
    if cell is None:
        return 0.0
    if isinstance(cell, Plain):
        return len(cell.text)
    if column.kind == "math":
        return text_width(str(cell))
    return len(str(cell))


def _breakable(t: Table, i: int) -> bool:
    """Whether column ``i``'s cells can break into lines: text and math can; a label only
    after ``->``; tokens and numbers never."""
    kind = t.columns[i].kind
    if kind in ("math", "text"):
        return True
    return kind == "code" and any("->" in str(row[i]) for row in t.rows)


def wrap_column(t: Table) -> int | None:
    """The column that wraps when the table is wider than the line: the widest of the columns
    whose cells can break (None: the table shrinks to ``\\footnotesize`` instead)."""
    best, width = None, 4.0  # a column of a few letters is not worth wrapping
    for i, column in enumerate(t.columns):
        if not _breakable(t, i):
            continue
        w = max((_estimate(row[i], column) for row in t.rows), default=0.0)
        if w > width:
            best, width = i, w
    return best


def table(t: Table, flavor: Flavor = SYMTRANS) -> dict[str, object]:
    forms = {
        i: numbers.column_form(
            [float(v) for row in t.rows if isinstance(v := row[i], (int, float))],
            numbers.TABLE_DIGITS,
        )
        for i, c in enumerate(t.columns)
        if c.kind == "number"
    }
    wrap = wrap_column(t)

    def cell(i: int, value: Cell, strong: bool) -> str:
        kind = t.columns[i].kind
        if isinstance(value, Plain):
            out = prose(value.text, flavor)
        elif value is None or (kind == "math" and value == ""):
            return ""
        elif kind == "number":
            p = numbers.parts(float(value), forms[i])
            if not flavor.macros:
                out = f"${p.tex()}$"
            else:
                fmt = forms[i].table_format()
                return (r"\stNumBold" if strong else r"\stNum") + f"{{{fmt}}}{{{p.siunitx()}}}"
        elif kind == "percent":
            out = numbers.percent_text(float(value)).replace("%", r"\,\%")
        elif kind == "int":
            out = str(value)
        elif kind == "math":
            return f"${math(str(value), flavor)}$"
        elif kind == "code":
            out = label(str(value), flavor)
        elif kind == "token":
            out = token(str(value), flavor)
        else:
            out = prose(str(value), flavor)
        return r"\textbf{" + out + "}" if strong else out

    templates = []
    for i, column in enumerate(t.columns):
        if i == wrap and flavor.macros:
            body = r"\stWrapBegin#\stWrapEnd"
        elif column.kind in ("number", "int", "percent"):
            body = r"\hfil#"
        else:
            body = r"#\hfil"
        templates.append((r"\strut" if i == 0 else "") + body)
    rows = []
    last = len(t.rows) - 1
    for r, row in enumerate(t.rows):
        rule_after = r in t.rules_after and r != last
        keep = r + 1 == last and (r in t.rules_after or last in t.strong_rows)
        rows.append(
            {
                "cells": " & ".join(cell(i, v, r in t.strong_rows) for i, v in enumerate(row)),
                "rule": rule_after,
                "keep": keep,
            }
        )
    # bare (longtable, whose columns cannot stretch): a table wider than the line gives its
    # breakable columns paragraph widths, sharing what the other columns leave
    widths = [_column_width(t, i) for i in range(len(t.columns))]
    breakable = [i for i in range(len(t.columns)) if _breakable(t, i)]
    left = BARE_LINE - sum(w for i, w in enumerate(widths) if i not in breakable)
    paragraphs = {}
    if sum(widths) > BARE_LINE and breakable:
        room = max(left, 12.0 * len(breakable))
        total = sum(widths[i] for i in breakable)
        paragraphs = {i: room * widths[i] / total / BARE_LINE for i in breakable}
    bare_specs = []
    for i, column in enumerate(t.columns):
        if column.kind in ("number", "int", "percent"):
            bare_specs.append("r")
        elif i in paragraphs:
            bare_specs.append(
                rf">{{\raggedright\arraybackslash}}p{{{paragraphs[i]:.2f}\linewidth}}"
            )
        else:
            bare_specs.append("l")
    return {
        "preamble": r"\tabskip\stColSep&".join(templates),
        "spec": "@{}" + "".join(bare_specs) + "@{}",
        "header": " & ".join(header(c, flavor) for c in t.columns),
        "rows": rows,
    }


# A bare table's line in rough characters (\\small, a notebook's PDF page).
BARE_LINE = 80.0


def _column_width(t: Table, i: int) -> float:
    """A column's rough width in characters: its widest cell or header line, and the gap."""
    column = t.columns[i]
    head = column.header if isinstance(column.header, str) else "xxxx"
    lines = _header_lines(head) if column.kind in ("number", "percent") else (head,)
    cells = [_estimate(row[i], column) for row in t.rows]
    return max(cells + [float(len(line)) for line in lines]) + 2.0


def _header_lines(words: str) -> tuple[str, ...]:
    """A number column's header on two lines when it is longer than its numbers need."""
    if len(words) <= 8 or " " not in words:
        return (words,)
    cut = ", " if ", " in words else " "
    spaces = [i for i in range(len(words)) if words.startswith(cut, i)]
    at = min(spaces, key=lambda i: abs(2 * i - len(words)))
    return words[:at], words[at + len(cut) :]


# -- pictures -------------------------------------------------------------------------------


def num(value: float) -> str:
    """A number for pgfplots coordinates (6 significant digits)."""
    return f"{value:.6g}"


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
    height, the cells as patches, and the numbers in the cells while they stay legible at
    ``\\footnotesize`` (at most 6 columns)."""
    rows, cols = grid.shape
    form = numbers.Form(decimals=2)
    return {
        "limit": num(float(np.max(np.abs(grid))) or 1.0),
        "xticks": ",".join(str(c) for c in range(cols)),
        "yticks": ",".join(str(r) for r in range(rows)),
        "height": f"{max(1.6, min(0.7 * rows, 9.0)):.2f}",
        "cells": heatmap_cells(grid),
        "labels": []
        if cols > 6 or rows * cols > 36
        else [
            {"x": c, "y": r, "text": "$" + numbers.tex(float(grid[r, c]), form=form) + "$"}
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
        "labels": ",".join("{" + label(b.label) + "}" for b in bars),
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
            "xticklabels": ",".join("{" + label(x) + "}" for x in p.x_labels),
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
    long_labels = max((len(x) for x in p.x_labels), default=0) > 2
    return {
        "kind": "heatmap",
        **heatmap_context(p.grid),
        "xticklabels": ",".join("{" + label(x) + "}" for x in p.x_labels),
        "yticklabels": ",".join("{" + label(y) + "}" for y in p.y_labels),
        "rotate": long_labels,  # long labels stand upright instead of overlapping
        "xlabel": prose(p.xlabel),
        "ylabel": prose(p.ylabel),
    }


# -- documents ------------------------------------------------------------------------------


def block(b: Block, flavor: Flavor) -> dict[str, object]:
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text, flavor)}
    if isinstance(b, Equation):
        return {
            "kind": "equation",
            "caption": text(b.caption, flavor),
            "body": " \\\\\n".join(math(line, flavor) for line in b.lines),
        }
    if isinstance(b, Table):
        return {"kind": "table", **table(b, flavor)}
    return {"kind": "figure", "picture": picture(b.picture), "caption": prose(b.caption)}


def inline_sty() -> str:
    """The body of symtrans.sty for a standalone document's preamble."""
    keep = []
    for line in sty_path().read_text(encoding="utf-8").splitlines():
        if line.startswith((r"\NeedsTeXFormat", r"\ProvidesPackage", r"\endinput")):
            continue
        keep.append(line)
    return "\n".join(keep)


def heading_commands(heading: str | None) -> tuple[str, str] | None:
    """``(section command, subsection command)`` for ``heading`` (``"subsection"``,
    ``"subsection*"``), or None for symtrans's own run-in headings (``\\stHeading``)."""
    if heading is None:
        return None
    star = "*" if heading.endswith("*") else ""
    name = heading.rstrip("*")
    if name not in _SECTIONS:
        raise InvalidArgumentError(
            f"heading must be one of {', '.join(_SECTIONS)} (optionally with *), or None for "
            f"symtrans's run-in headings; got {heading!r}"
        )
    below = _SECTIONS[min(_SECTIONS.index(name) + 1, len(_SECTIONS) - 1)]
    return name + star, below + star


def context(doc: Document, flavor: Flavor, heading: str | None = None) -> dict[str, object]:
    commands = heading_commands(heading)
    return {
        "title": text(doc.title, flavor),
        "facts": [{"key": prose(k, flavor), "value": text(v, flavor)} for k, v in doc.facts],
        "tokens": r"\ ".join(
            (r"\fbox{" + token(t, flavor) + "}") if here else token(t, flavor)
            for t, here in doc.tokens
        ),
        "sections": [
            {
                "title": prose(s.title, flavor),
                "command": None if commands is None else commands[s.level - 1],
                "blocks": [
                    block(b, flavor)
                    for b in s.blocks
                    if flavor.macros or not isinstance(b, Figure)  # bare: no pgfplots
                ],
            }
            for s in doc.sections
        ],
        "check": check_context(
            doc, lambda v, d: f"${numbers.tex(v, d)}$", lambda s: prose(s, flavor)
        ),
        "verdict": verdict(doc, r"\textbf{holds}", r"\textbf{FAILS}"),
        "prompt": latex_text(doc.prompt, macros=flavor.macros),
    }


def latex(
    doc: Document,
    standalone: bool,
    template_folder: str | os.PathLike[str] | None = None,
    heading: str | None = None,
) -> str:
    """The document as a fragment (needs ``\\usepackage{symtrans}``) or a standalone
    article (whose headings are ``\\subsection*`` unless ``heading`` says otherwise)."""
    if standalone and heading is None:
        heading = "subsection*"
    ctx = context(doc, SYMTRANS, heading)
    ctx["sty"] = inline_sty() if standalone else ""
    return render("report.tex" if standalone else "fragment.tex", ctx, template_folder)


def bare_latex(doc: Document, template_folder: str | os.PathLike[str] | None = None) -> str:
    """The document for a LaTeX document that loads only amsmath and longtable (nbconvert's
    PDF of a notebook)."""
    return render("notebook.tex", context(doc, BARE, "paragraph*"), template_folder)
