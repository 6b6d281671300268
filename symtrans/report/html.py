"""A :class:`~.document.Document` as one self-contained HTML page: math as MathML (rendered by
the browser, no script, no network), pictures as inline SVG, every string HTML-escaped."""

from __future__ import annotations

import os
import re
from functools import singledispatch

from markupsafe import Markup, escape

from ..printing.escape import visible_token
from ..printing.notation import expand
from ..templates import render
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
from .layout import check_context, plain_number, verdict


def mathml(latex: str, display: bool = True) -> Markup:
    """Presentation MathML of a (plain, macro-free) LaTeX snippet."""
    import latex2mathml.converter

    return Markup(
        latex2mathml.converter.convert(expand(latex), display="block" if display else "inline")
    )


def _line(line: str) -> str:
    # An aligned line ("lhs &= ..." or "&\quad + ...") becomes a line of its own.
    return re.sub(r"(?<!\\)&", "", line)


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
    return mathml(piece.tex, display=False)


@inline.register
def _(piece: Strong) -> Markup:
    return Markup("<strong>{}</strong>").format(piece.text)


def text(t: Text) -> Markup:
    return Markup("").join(inline(piece) for piece in t)


def cell(value: Cell, column: Column, digits: int) -> dict[str, object]:
    kind = column.kind
    numeric = kind in ("number", "int", "percent")
    if isinstance(value, Plain):
        return {"text": value.text, "num": False, "code": False}
    if value is None or (kind == "math" and value == ""):
        return {"text": "", "num": numeric, "code": False}
    if kind == "number":
        return {"text": plain_number(float(value), digits), "num": True, "code": False}
    if kind == "percent":
        return {"text": f"{float(value):.1%}", "num": True, "code": False}
    if kind == "int":
        return {"text": str(value), "num": True, "code": False}
    if kind == "math":
        return {"text": mathml(str(value)), "num": False, "code": False}
    if kind in ("code", "token"):
        return {"text": visible_token(str(value)), "num": False, "code": True}
    return {"text": str(value), "num": False, "code": False}


def block(b: Block, digits: int, svgs: dict[str, str]) -> dict[str, object]:
    if isinstance(b, Paragraph):
        return {"kind": "paragraph", "text": text(b.text)}
    if isinstance(b, Equation):
        return {
            "kind": "equation",
            "caption": text(b.caption),
            "lines": [mathml(_line(line)) for line in b.lines],
        }
    if isinstance(b, Table):
        return {
            "kind": "table",
            "header": [c.header for c in b.columns],
            "rows": [
                {
                    "cells": [cell(v, c, digits) for v, c in zip(row, b.columns, strict=True)],
                    "rule": r in b.rules_after,
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
                    "blocks": [block(b, doc.digits, svgs) for b in s.blocks],
                }
                for s in doc.sections
            ],
            "check": check_context(doc, plain_number, str),
            "verdict": verdict(doc, "Pass", "FAIL"),
            "prompt": doc.prompt,
        },
        template_folder,
    )


def _strip_xml(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def body_html(page: str) -> str:
    """The inside of ``<body>`` with the page's style, for a notebook cell."""
    style = page[page.find("<style>") : page.find("</style>") + len("</style>")]
    body = page[page.find("<body>") + len("<body>") : page.rfind("</body>")]
    return f'<div class="symtrans-report">{style}{body}</div>'
