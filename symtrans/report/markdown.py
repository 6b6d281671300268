"""A :class:`~.document.Document` as Markdown: math in ``$$ \\begin{aligned} ... $$`` blocks
that KaTeX and MathJax both read; every token string escaped (code spans or backslash
escapes, never HTML); pictures as SVG files beside the document."""

from __future__ import annotations

import os
from functools import singledispatch

from ..printing.escape import markdown_code, markdown_text
from ..printing.notation import expand
from ..templates import render
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
from .layout import check_context, plain_number, verdict


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
    return f"${expand(piece.tex)}$"


@inline.register
def _(piece: Strong) -> str:
    return f"**{markdown_text(piece.text)}**"


def text(t: Text) -> str:
    return "".join(inline(piece) for piece in t)


def cell(value: Cell, column: Column, digits: int) -> str:
    kind = column.kind
    if isinstance(value, Plain):
        return markdown_text(value.text)
    if value is None or (kind == "math" and value == ""):
        return ""
    if kind == "number":
        return plain_number(float(value), digits)
    if kind == "percent":
        return f"{float(value):.1%}"
    if kind == "int":
        return str(value)
    if kind == "math":
        return f"${expand(str(value))}$"
    if kind in ("code", "token"):
        return markdown_code(str(value), in_table=True)
    return markdown_text(str(value))


def block(b: Block, digits: int, figures: dict[str, str]) -> dict[str, object]:
    """A block as the template lays it out (``kind`` and its parts)."""
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text)}
    if isinstance(b, Equation):
        body = " \\\\\n".join(expand(line) for line in b.lines)
        return {"kind": "equation", "caption": text(b.caption), "body": body}
    if isinstance(b, Table):
        rows = []
        for r, row in enumerate(b.rows):
            cells = [cell(v, c, digits) for v, c in zip(row, b.columns, strict=True)]
            if r in b.strong_rows:
                cells = [f"**{c}**" if c else c for c in cells]
            rows.append(" | ".join(cells))
        return {
            "kind": "table",
            "header": " | ".join(markdown_text(c.header) for c in b.columns),
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
                        block(b, doc.digits, paths)
                        for b in s.blocks
                        if not isinstance(b, Figure) or b.name in paths
                    ],
                }
                for s in doc.sections
            ],
            "check": check_context(doc, plain_number, markdown_text),
            "verdict": verdict(doc, "**Pass**", "**FAIL**"),
            "prompt": markdown_text(doc.prompt),
        },
        template_folder,
    )
