"""A :class:`~.sheet.Sheet` as Markdown, LaTeX (fragment, document, PDF) and HTML."""

from __future__ import annotations

import os
from collections.abc import Callable

from markupsafe import Markup

from ..errors import InvalidArgumentError
from ..printing.escape import latex_text, markdown_code, markdown_text, visible_token
from ..printing.notation import expand
from ..templates import render
from .latex import fixed_decimals, heatmap_context, inline_sty, num
from .layout import plain_number, tex_number
from .sheet import Cell, Column, Heatmap, LinePlot, Plain, Section, Sheet, Table, Verification

FORMATS = ("md", "tex", "pdf", "html")


# Symbols of the sheets' own prose that pdflatex gets as math (token strings never pass here:
# they stay escaped by ``latex_text`` alone).
_PROSE_MATH = {
    "2212": "-",
    "03C3": r"\sigma",
    "00D7": r"\times",
    "2192": r"\rightarrow",
    "00B1": r"\pm",
}


def _prose(text: str) -> str:
    out = latex_text(text, macros=True)
    for code, math in _PROSE_MATH.items():
        out = out.replace(rf"\stU{{{code}}}", rf"\ensuremath{{{math}}}")
    return out


# -- cells -----------------------------------------------------------------------------------


def _md_cell(value: Cell, column: Column, digits: int) -> str:
    kind = column.kind
    if isinstance(value, Plain):
        return markdown_text(value.text)
    if value is None or (kind == "math" and value == ""):
        return ""
    if kind == "number":
        return plain_number(float(value), digits)
    if kind == "int":
        return str(value)
    if kind == "math":
        return f"${expand(str(value))}$"
    if kind in ("code", "token"):
        return markdown_code(str(value), in_table=True)
    return markdown_text(str(value))


def _html_cell(value: Cell, column: Column, digits: int) -> dict[str, object]:
    from .html import mathml

    kind = column.kind
    if isinstance(value, Plain):
        return {"text": value.text, "num": False, "code": False}
    if value is None or (kind == "math" and value == ""):
        return {"text": "", "num": False, "code": False}
    if kind == "number":
        return {"text": plain_number(float(value), digits), "num": True, "code": False}
    if kind == "int":
        return {"text": str(value), "num": True, "code": False}
    if kind == "math":
        return {"text": mathml(str(value)), "num": False, "code": False}
    if kind in ("code", "token"):
        return {"text": visible_token(str(value)), "num": False, "code": True}
    return {"text": str(value), "num": False, "code": False}


def _tex_table(table: Table, digits: int) -> dict[str, object]:
    specs, formats = [], {}
    for i, column in enumerate(table.columns):
        if column.kind == "number":
            values = [float(v) for row in table.rows if isinstance(v := row[i], (int, float))]
            decimals = fixed_decimals(values, digits)
            integer = max([1] + [len(str(int(abs(v)))) for v in values])
            formats[i] = decimals
            specs.append(f"S[table-format=-{integer}.{decimals}]")
        else:
            specs.append("r" if column.kind == "int" else "l")

    def cell(i: int, value: Cell) -> str:
        kind = table.columns[i].kind
        if isinstance(value, Plain):
            return _prose(value.text)
        if value is None:
            return "{}"
        if kind == "number":
            return f"{float(value):.{formats[i]}f}"
        if kind == "int":
            return str(value)
        if kind == "math":
            return f"${value}$" if value else ""
        if kind == "code":
            return r"\stLabel{" + latex_text(str(value)) + "}"
        if kind == "token":
            return r"\stTokenList{" + latex_text(str(value), macros=True, visible_spaces=True) + "}"
        return _prose(str(value))

    header = [
        "{" + _prose(c.header) + "}" if c.kind == "number" else _prose(c.header)
        for c in table.columns
    ]
    return {
        "spec": " ".join(specs),
        "header": " & ".join(header),
        "rows": [
            {
                "cells": " & ".join(cell(i, v) for i, v in enumerate(row)),
                "rule": r in table.rules_after,
            }
            for r, row in enumerate(table.rows)
        ],
    }


# -- figures ---------------------------------------------------------------------------------


def _tex_figure(figure: LinePlot | Heatmap | None) -> dict[str, object] | None:
    if figure is None:
        return None
    if isinstance(figure, LinePlot):
        values = [v for _, series in figure.series for v in series]
        if figure.reference is not None:
            values.append(figure.reference)
        return {
            "kind": "line",
            "xticks": ",".join(str(i) for i in range(len(figure.x_labels))),
            "xticklabels": ",".join(
                "{" + r"\stLabel{" + latex_text(x) + "}}" for x in figure.x_labels
            ),
            "xlabel": _prose(figure.xlabel),
            "ylabel": _prose(figure.ylabel),
            "series": [
                {
                    "name": _prose(name),
                    "points": " ".join(f"({i},{num(v)})" for i, v in enumerate(series)),
                }
                for name, series in figure.series
            ],
            "reference": None if figure.reference is None else num(figure.reference),
            "reference_label": _prose(figure.reference_label),
            "xmax": len(figure.x_labels) - 1,
            "legend": len(figure.series) > 1,
        }
    return {
        "kind": "heatmap",
        **heatmap_context(figure.grid),
        "xticklabels": ",".join("{" + latex_text(x, macros=True) + "}" for x in figure.x_labels),
        "yticklabels": ",".join("{" + latex_text(y, macros=True) + "}" for y in figure.y_labels),
        "xlabel": _prose(figure.xlabel),
        "ylabel": _prose(figure.ylabel),
    }


def _svg(figure: LinePlot | Heatmap) -> str:
    from .figures import grid_svg, line_svg

    return line_svg(figure) if isinstance(figure, LinePlot) else grid_svg(figure)


def _strip_xml(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


# -- documents -------------------------------------------------------------------------------


def _check(v: Verification | None, number: Callable[[float, int], str]) -> dict[str, object] | None:
    if v is None:
        return None
    c = v.check
    return {
        "what": v.what,
        "passed": c.passed,
        "total": number(c.total, 12),
        "model_logit": number(c.model_logit, 12),
        "difference": number(c.difference, 3),
        "tolerance": number(c.tolerance, 3),
    }


def sheet_latex(sheet: Sheet, standalone: bool = False) -> str:
    """The sheet as a fragment (needs ``\\usepackage{symtrans}``) or a standalone document."""
    sections = [
        {
            "title": _prose(s.title),
            "text": _prose(s.text),
            "math": " \\\\\n".join(s.math),
            "table": None if s.table is None else _tex_table(s.table, sheet.digits),
            "figure": _tex_figure(s.figure),
            "caption": _prose(s.caption),
        }
        for s in sheet.sections
    ]
    context = {
        "title": _prose(sheet.title),
        "facts": [{"key": _prose(k), "value": _prose(v)} for k, v in sheet.facts],
        "tokens": r"\ ".join(
            (r"\fbox{" if here else "{")
            + r"\stTokenList{"
            + latex_text(t, macros=True, visible_spaces=True)
            + "}}"
            for t, here in sheet.tokens
        ),
        "sections": sections,
        "check": _check(sheet.verification, tex_number),
        "check_what": "" if sheet.verification is None else _prose(sheet.verification.what),
        "sty": inline_sty() if standalone else "",
    }
    return render("sheet.tex" if standalone else "sheet-fragment.tex", context)


def _figures(sheet: Sheet) -> list[tuple[int, str, str]]:
    """(section index, caption, svg) for every section with a figure."""
    return [
        (i, s.caption, _svg(s.figure)) for i, s in enumerate(sheet.sections) if s.figure is not None
    ]


def _markdown(sheet: Sheet, figure_paths: dict[int, str]) -> str:
    def table(t: Table) -> dict[str, object]:
        align = ["---:" if c.kind in ("number", "int") else ":---" for c in t.columns]
        return {
            "header": " | ".join(markdown_text(c.header) for c in t.columns),
            "align": " | ".join(align),
            "rows": [
                " | ".join(
                    _md_cell(v, c, sheet.digits) for v, c in zip(row, t.columns, strict=True)
                )
                for row in t.rows
            ],
        }

    def section(i: int, s: Section) -> dict[str, object]:
        return {
            "title": markdown_text(s.title),
            "text": markdown_text(s.text),
            "math": " \\\\\n".join(expand(line) for line in s.math),
            "table": None if s.table is None else table(s.table),
            "figure": figure_paths.get(i),
            "caption": markdown_text(s.caption),
        }

    return render(
        "sheet.md",
        {
            "title": markdown_text(sheet.title),
            "facts": [{"key": markdown_text(k), "value": markdown_text(v)} for k, v in sheet.facts],
            "tokens": " ".join(
                f"**{markdown_code(t)}**" if here else markdown_code(t) for t, here in sheet.tokens
            ),
            "sections": [section(i, s) for i, s in enumerate(sheet.sections)],
            "check": _check(sheet.verification, plain_number),
        },
    )


def _html(sheet: Sheet) -> str:
    from .html import mathml

    svgs = {i: svg for i, _, svg in _figures(sheet)}

    def section(i: int, s: Section) -> dict[str, object]:
        t = s.table
        return {
            "title": s.title,
            "text": s.text,
            "math": [mathml(line.replace("&", "")) for line in s.math],
            "table": None
            if t is None
            else {
                "header": [c.header for c in t.columns],
                "rows": [
                    {
                        "cells": [
                            _html_cell(v, c, sheet.digits)
                            for v, c in zip(row, t.columns, strict=True)
                        ],
                        "rule": r in t.rules_after,
                    }
                    for r, row in enumerate(t.rows)
                ],
            },
            "svg": Markup(_strip_xml(svgs[i])) if i in svgs else None,
            "caption": s.caption,
        }

    return render(
        "sheet.html",
        {
            "title": sheet.title,
            "facts": [{"key": k, "value": v} for k, v in sheet.facts],
            "tokens": [{"text": visible_token(t), "here": here} for t, here in sheet.tokens],
            "sections": [section(i, s) for i, s in enumerate(sheet.sections)],
            "check": _check(sheet.verification, plain_number),
        },
    )


def render_sheet(
    sheet: Sheet, fmt: str, figure_stem: str | None = None
) -> tuple[str | bytes, list[tuple[str, str]]]:
    """The document in ``fmt`` and the side files it refers to ([(name, svg)])."""
    if fmt in ("tex", "pdf"):
        from .pdf import compile_pdf

        tex = sheet_latex(sheet, standalone=True)
        return (tex if fmt == "tex" else compile_pdf(tex)), []
    if fmt == "html":
        return _html(sheet), []
    if fmt == "md":
        if figure_stem is None:
            return _markdown(sheet, {}), []
        side = [(i, f"{figure_stem}.{sheet.name}-{i}.svg", svg) for i, _, svg in _figures(sheet)]
        document = _markdown(sheet, {i: name for i, name, _ in side})
        return document, [(name, svg) for _, name, svg in side]
    raise InvalidArgumentError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


def save_sheet(sheet: Sheet, path: str | os.PathLike[str]) -> str:
    """Write the sheet in the format its suffix names, atomically (figures first)."""
    from . import suffix_format, write_document

    target, fmt = suffix_format(path)
    document, side_files = render_sheet(sheet, fmt, figure_stem=target.stem)
    return write_document(target, document, side_files)
