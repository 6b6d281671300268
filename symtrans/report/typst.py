"""A :class:`~.document.Document` as Typst, for a PDF where no LaTeX is installed: the same
sections, math (printed from the math's tree, :mod:`symtrans.printing.typst`), tables (they
break across pages; numbers aligned with tabular figures) and pictures (the SVGs of the
Markdown and HTML reports). Every string is a Typst string literal, never markup."""

from __future__ import annotations

import os
from functools import singledispatch

from ..printing.escape import plain_token, visible_token
from ..printing.typst import string, typst_math
from ..templates import render
from . import numbers
from .document import (
    Block,
    Cell,
    Code,
    Column,
    Document,
    Equation,
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
from .markdown import table_forms


def words(text: str) -> str:
    """Plain text as Typst content (a string literal)."""
    return "#" + string(text)


def code(text: str) -> str:
    return f"#raw({string(visible_token(text))})"


@singledispatch
def inline(piece: Inline) -> str:
    return words(str(piece))


@inline.register
def _(piece: Token) -> str:
    return code(piece.text)


@inline.register
def _(piece: Code) -> str:
    return code(piece.text)


@inline.register
def _(piece: Math) -> str:
    return f"${typst_math(piece.tex)}$"


@inline.register
def _(piece: Strong) -> str:
    return f"#strong({string(piece.text)})"


def text(t: Text) -> str:
    return "".join(inline(piece) for piece in t)


def header(column: Column) -> str:
    if isinstance(column.header, Math):
        return f"[${typst_math(column.header.tex)}$]"
    return f"[#strong({string(column.header)})]"


def cell(value: Cell, column: Column, form: numbers.Form | None, strong: bool) -> str:
    kind = column.kind
    if isinstance(value, Plain):
        body = words(value.text)
    elif value is None or (kind == "math" and value == ""):
        return "[]"
    elif kind == "number":
        assert form is not None
        body = words(numbers.text(float(value), form=form))
    elif kind == "percent":
        body = words(numbers.percent_text(float(value)))
    elif kind == "int":
        body = words(str(value))
    elif kind == "math":
        return f"[${typst_math(str(value))}$]"
    elif kind in ("code", "token"):
        body = code(str(value))
    else:
        body = words(plain_token(str(value)))
    return f"[#strong[{body}]]" if strong else f"[{body}]"


def block(b: Block, figures: dict[str, str]) -> dict[str, object]:
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text)}
    if isinstance(b, Equation):
        return {
            "kind": "equation",
            "caption": text(b.caption),
            "body": " \\\n".join(typst_math(line) for line in b.lines),
        }
    if isinstance(b, Table):
        forms = table_forms(b)
        rows = []
        for r, row in enumerate(b.rows):
            cells = ", ".join(
                cell(v, c, f, r in b.strong_rows)
                for v, c, f in zip(row, b.columns, forms, strict=True)
            )
            rows.append({"cells": cells, "rule": r in b.rules_after and r != len(b.rows) - 1})
        return {
            "kind": "table",
            "n": len(b.columns),
            "align": ", ".join(
                "right" if c.kind in ("number", "int", "percent") else "left" for c in b.columns
            ),
            "header": ", ".join(header(c) for c in b.columns),
            "rows": rows,
        }
    return {"kind": "figure", "caption": words(b.caption), "path": string(figures[b.name])}


def typst(
    doc: Document, template_folder: str | os.PathLike[str] | None = None
) -> tuple[str, dict[str, str]]:
    """The Typst source and the pictures it reads (``{file name: svg}``)."""
    from .figures import svg

    files = {f"report.{f.name}.svg": svg(f.picture) for f in doc.figures()}
    paths = {f.name: f"report.{f.name}.svg" for f in doc.figures()}
    source = render(
        "report.typ",
        {
            "title": text(doc.title),
            "facts": [{"key": string(k), "value": text(v)} for k, v in doc.facts],
            "tokens": [{"text": string(visible_token(t)), "here": here} for t, here in doc.tokens],
            "sections": [
                {
                    "title": string(s.title),
                    "level": s.level + 1,
                    "blocks": [block(b, paths) for b in s.blocks],
                }
                for s in doc.sections
            ],
            "check": check_context(
                doc, lambda v, d: words(numbers.text(v, d)), lambda s: words(s) if s else ""
            ),
            "verdict": verdict(doc, "#strong[holds]", "#strong[FAILS]"),
        },
        template_folder,
    )
    return source, files
