"""The report as LaTeX: a fragment to ``\\input`` after ``\\usepackage{symtrans}``, or a
standalone article that carries the package inline. Compiles with ``pdflatex
-no-shell-escape``; every token string is escaped to ASCII text."""

from __future__ import annotations

import math
import os

import numpy as np

from ..printing.escape import latex_text
from ..printing.notation import sty_path
from ..templates import render
from .content import ReportContent
from .layout import tex_number

_BAR_COLOR = {"positive": "stPositive", "negative": "stNegative", "total": "stTotal"}


def fixed_decimals(values: list[float], digits: int) -> int:
    """Decimals that give the largest |value| ``digits`` significant digits."""
    largest = max((abs(v) for v in values), default=0.0)
    if largest == 0 or not math.isfinite(largest):
        return digits - 1
    return max(0, digits - 1 - math.floor(math.log10(largest)))


def num(value: float) -> str:
    """A number for pgfplots coordinates (6 significant digits)."""
    return f"{value:.6g}"


def _token_list(tokens: tuple[tuple[str, bool], ...]) -> str:
    parts = []
    for token, here in tokens:
        text = r"\stTokenList{" + latex_text(token, macros=True, visible_spaces=True) + "}"
        parts.append(r"\fbox{" + text + "}" if here else text)
    return r"\ ".join(parts)


def _waterfall(content: ReportContent) -> dict[str, object]:
    bars = content.bars
    ends = [0.0] + [b.start for b in bars] + [b.end for b in bars]
    lo, hi = min(ends), max(ends)
    pad = 0.05 * ((hi - lo) or 1.0)
    return {
        "height": f"{0.42 * len(bars):.2f}",
        "ymax": f"{len(bars) - 0.4:.1f}",
        "xmin": num(lo - pad),
        "xmax": num(hi + pad),
        "ticks": ",".join(str(i) for i in range(len(bars))),
        "labels": ",".join("{" + r"\stLabel{" + latex_text(b.label) + "}}" for b in bars),
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


def inline_sty() -> str:
    """The body of symtrans.sty for a standalone document's preamble."""
    keep = []
    for line in sty_path().read_text(encoding="utf-8").splitlines():
        if line.startswith((r"\NeedsTeXFormat", r"\ProvidesPackage", r"\endinput")):
            continue
        keep.append(line)
    return "\n".join(keep)


def latex(
    content: ReportContent, standalone: bool, template_folder: str | os.PathLike[str] | None = None
) -> str:
    c = content
    values = [r.value for r in c.rows]
    decimals = fixed_decimals(values, c.digits)
    integer_digits = max(1, max(len(str(int(abs(v)))) for v in values))
    rows = [
        {
            "kind": r.kind,
            "rank": "" if r.rank is None else str(r.rank),
            "label": r"\textbf{total}"
            if r.kind == "total"
            else (
                r"\stLabel{" + latex_text(r.label) + "}"
                if r.kind in ("term", "bias")
                else latex_text(r.label)
            ),
            "symbol": f"${r.symbol}$" if r.symbol else "",
            "value": f"{r.value:.{decimals}f}",
        }
        for r in c.rows
    ]
    check = c.check
    context = {
        "answer": latex_text(c.title_answer, macros=True, visible_spaces=True),
        "vs": None
        if c.title_vs is None
        else latex_text(c.title_vs, macros=True, visible_spaces=True),
        "prompt": "``" + latex_text(c.prompt, macros=True) + "''",
        "model_line": latex_text(c.model_line, macros=True),
        "split": c.split,
        "position": c.position,
        "tokens": _token_list(c.tokens),
        "equations": [{"caption": e.caption, "body": " \\\\\n".join(e.lines)} for e in c.equations],
        "table_format": f"-{integer_digits}.{decimals}",
        "rows": rows,
        "sources": [
            {
                "position": s.position,
                "token": r"\stTokenList{"
                + latex_text(s.token, macros=True, visible_spaces=True)
                + "}",
                "value": f"{s.value:.{decimals}f}",
            }
            for s in c.sources
        ],
        "waterfall": _waterfall(c),
        "heatmap": None if c.heatmap is None else heatmap_context(c.heatmap),
        "verdict": r"\textbf{holds}" if check.passed else r"\textbf{FAILS}",
        "total": tex_number(check.total, 12),
        "model_logit": tex_number(check.model_logit, 12),
        "difference": tex_number(check.difference, 3),
        "tolerance": tex_number(check.tolerance, 3),
        "sty": inline_sty() if standalone else "",
    }
    return render("report.tex" if standalone else "fragment.tex", context, template_folder)
