"""A :class:`~.document.Document` as one self-contained HTML page: math as MathML printed from
the math's tree (:mod:`symtrans.printing.mathml`; rendered by the browser, no script, no
network), pictures as inline SVG, every string HTML-escaped. The style is scoped to
``.symtrans-report``, so the same body can sit in a notebook cell; wide tables scroll inside
their box instead of widening the page."""

from __future__ import annotations

import os
from functools import singledispatch

from markupsafe import Markup, escape

from ..printing.escape import plain_token, visible_token
from ..printing.mathml import mathml, mathml_lines
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
    plain_text,
)
from .layout import check_context, verdict
from .markdown import table_forms


@singledispatch
def inline(piece: Inline) -> Markup:
    return escape(str(piece))


@inline.register
def _(piece: Token) -> Markup:
    return Markup('<code class="tok">{}</code>').format(visible_token(piece.text))


@inline.register
def _(piece: Code) -> Markup:
    return Markup("<code>{}</code>").format(piece.text)


@inline.register
def _(piece: Math) -> Markup:
    return Markup(mathml(piece.tex, display=False))


@inline.register
def _(piece: Strong) -> Markup:
    return Markup("<strong>{}</strong>").format(piece.text)


def text(t: Text) -> Markup:
    return Markup("").join(inline(piece) for piece in t)


def header(column: Column) -> dict[str, object]:
    numeric = column.kind in ("number", "int", "percent")
    if isinstance(column.header, Math):
        return {"text": Markup(mathml(column.header.tex, display=False)), "num": numeric}
    return {"text": column.header, "num": numeric}


def cell(value: Cell, column: Column, form: numbers.Form | None) -> dict[str, object]:
    kind = column.kind
    numeric = kind in ("number", "int", "percent")
    if isinstance(value, Plain):
        return {"text": value.text, "num": False, "code": False}
    if value is None or (kind == "math" and value == ""):
        return {"text": "", "num": numeric, "code": False}
    if kind == "number":
        assert form is not None
        return {"text": numbers.text(float(value), form=form), "num": True, "code": False}
    if kind == "percent":
        return {"text": numbers.percent_text(float(value)), "num": True, "code": False}
    if kind == "int":
        return {"text": str(value), "num": True, "code": False}
    if kind == "math":
        return {"text": Markup(mathml(str(value), display=False)), "num": False, "code": False}
    if kind in ("code", "token"):
        return {"text": visible_token(str(value)), "num": False, "code": True}
    return {"text": plain_token(str(value)), "num": False, "code": False}


def block(b: Block, svgs: dict[str, str]) -> dict[str, object]:
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text)}
    if isinstance(b, Equation):
        return {
            "kind": "equation",
            "caption": text(b.caption),
            "lines": [Markup(m) for m in mathml_lines(" \\\\ ".join(b.lines))],
        }
    if isinstance(b, Table):
        forms = table_forms(b)
        return {
            "kind": "table",
            "header": [header(c) for c in b.columns],
            "rows": [
                {
                    "cells": [cell(v, c, f) for v, c, f in zip(row, b.columns, forms, strict=True)],
                    "rule": r in b.rules_after and r != len(b.rows) - 1,
                    "strong": r in b.strong_rows,
                }
                for r, row in enumerate(b.rows)
            ],
        }
    return {"kind": "figure", "caption": b.caption, "svg": Markup(svgs[b.name])}


def html(doc: Document, template_folder: str | os.PathLike[str] | None = None) -> str:
    from .figures import svg

    svgs = {f.name: _strip_xml(svg(f.picture)) for f in doc.figures()}
    return render(
        "report.html",
        {
            "title": text(doc.title),
            "title_text": plain_text(doc.title),
            "facts": [{"key": k, "value": text(v)} for k, v in doc.facts],
            "tokens": [{"text": visible_token(t), "here": here} for t, here in doc.tokens],
            "sections": [
                {
                    "title": s.title,
                    "level": s.level,
                    "blocks": [block(b, svgs) for b in s.blocks],
                }
                for s in doc.sections
            ],
            "check": check_context(doc, lambda v, d: numbers.text(v, d), str),
            "verdict": verdict(doc, "Pass", "FAIL"),
            "prompt": doc.prompt,
        },
        template_folder,
    )


def _strip_xml(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def body_html(page: str) -> str:
    """The report's ``<div class="symtrans-report">`` with its (scoped) style, for a notebook
    cell."""
    style = page[page.find("<style>") : page.find("</style>") + len("</style>")]
    start = page.find('<div class="symtrans-report">')
    body = page[start : page.rfind("</div>") + len("</div>")]
    return style + body
