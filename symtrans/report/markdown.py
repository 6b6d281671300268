"""A :class:`~.document.Document` as Markdown: math in ``$$ \\begin{aligned} ... $$`` blocks
written plain (:func:`~symtrans.printing.notation.plain`), so KaTeX, MathJax 2 and 3 and
amsmath read it alike and a GFM renderer leaves it as it is (lines end in ``\\cr``, not
``\\\\``, which GFM would turn into one backslash); every token string escaped (code spans or
backslash escapes, never HTML); numbers aligned in their column; pictures as SVG files beside
the document."""

from __future__ import annotations

import os
from functools import singledispatch

from ..printing.escape import markdown_code, markdown_text
from ..printing.notation import plain
from ..templates import render
from . import numbers
from .document import (
    Block,
    Cell,
    Code,
    Column,
    Document,
    Equation,
    Figure,
    Inline,
    Math,
    Paragraph,
    Plain,
    Strong,
    Table,
    Text,
    Token,
)
from .layout import check_context, verdict


@singledispatch
def inline(piece: Inline) -> str:
    return markdown_text(str(piece))


@inline.register
def _(piece: Token) -> str:
    return markdown_code(piece.text)


@inline.register
def _(piece: Code) -> str:
    return markdown_code(piece.text)


@inline.register
def _(piece: Math) -> str:
    return f"${plain(piece.tex)}$"


@inline.register
def _(piece: Strong) -> str:
    return f"**{markdown_text(piece.text)}**"


def text(t: Text) -> str:
    return "".join(inline(piece) for piece in t)


def header(column: Column) -> str:
    if isinstance(column.header, Math):
        return f"${plain(column.header.tex)}$"
    return markdown_text(column.header)


def cell(value: Cell, column: Column, form: numbers.Form | None) -> str:
    kind = column.kind
    if isinstance(value, Plain):
        return markdown_text(value.text)
    if value is None or (kind == "math" and value == ""):
        return ""
    if kind == "number":
        assert form is not None
        return numbers.text(float(value), form=form)
    if kind == "percent":
        return numbers.percent_text(float(value))
    if kind == "int":
        return str(value)
    if kind == "math":
        return f"${plain(str(value))}$"
    if kind in ("code", "token"):
        return markdown_code(str(value), in_table=True)
    return markdown_text(str(value))


def table_forms(t: Table) -> list[numbers.Form | None]:
    """Each number column's form (one per column, so its decimals align)."""
    return [
        numbers.column_form(
            [float(v) for row in t.rows if isinstance(v := row[i], (int, float))],
            numbers.TABLE_DIGITS,
        )
        if c.kind == "number"
        else None
        for i, c in enumerate(t.columns)
    ]


def block(b: Block, figures: dict[str, str]) -> dict[str, object]:
    """A block as the template lays it out (``kind`` and its parts)."""
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text)}
    if isinstance(b, Equation):
        body = " \\cr\n".join(plain(line) for line in b.lines)
        return {"kind": "equation", "caption": text(b.caption), "body": body}
    if isinstance(b, Table):
        forms = table_forms(b)
        rows = []
        for r, row in enumerate(b.rows):
            cells = [cell(v, c, f) for v, c, f in zip(row, b.columns, forms, strict=True)]
            if r in b.strong_rows:
                cells = [f"**{c}**" if c else c for c in cells]
            rows.append(" | ".join(cells))
        return {
            "kind": "table",
            "header": " | ".join(header(c) for c in b.columns),
            "align": " | ".join(
                "---:" if c.kind in ("number", "int", "percent") else ":---" for c in b.columns
            ),
            "rows": rows,
        }
    return {
        "kind": "figure",
        "caption": markdown_text(b.caption),
        "path": figures.get(b.name),
    }


def markdown(
    doc: Document,
    figures: dict[str, str] | None = None,
    template_folder: str | os.PathLike[str] | None = None,
) -> str:
    """``figures``: the side file each figure's picture is in (by figure name); figures
    without one are left out."""
    paths = figures or {}
    return render(
        "report.md",
        {
            "title": text(doc.title),
            "facts": [{"key": markdown_text(k), "value": text(v)} for k, v in doc.facts],
            "tokens": " ".join(
                f"**{markdown_code(t)}**" if here else markdown_code(t) for t, here in doc.tokens
            ),
            "sections": [
                {
                    "title": markdown_text(s.title),
                    "level": s.level,
                    "blocks": [
                        block(b, paths)
                        for b in s.blocks
                        if not isinstance(b, Figure) or b.name in paths
                    ],
                }
                for s in doc.sections
            ],
            "check": check_context(doc, lambda v, d: numbers.text(v, d), markdown_text),
            "verdict": verdict(doc, "**Pass**", "**FAIL**"),
            "prompt": markdown_text(doc.prompt),
        },
        template_folder,
    )
