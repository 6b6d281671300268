"""The report as Markdown: math in ``$$ \\begin{aligned} ... $$`` blocks that KaTeX and
MathJax both read; every token string escaped (code spans or backslash escapes, never HTML)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..printing.escape import markdown_code, markdown_text
from ..templates import render
from .content import ReportContent
from .layout import plain_number


@dataclass(frozen=True)
class FigureRef:
    alt: str
    path: str


def markdown(
    content: ReportContent,
    figures: tuple[FigureRef, ...] = (),
    template_folder: str | os.PathLike[str] | None = None,
) -> str:
    c = content
    digits = c.digits
    rows = [
        {
            "rank": "" if r.rank is None else str(r.rank),
            "label": f"**{r.label}**"
            if r.kind == "total"
            else (
                markdown_code(r.label, in_table=True)
                if r.kind in ("term", "bias")
                else markdown_text(r.label)
            ),
            "symbol": f"${r.symbol}$" if r.symbol else "",
            "value": f"**{plain_number(r.value, digits)}**"
            if r.kind == "total"
            else plain_number(r.value, digits),
            "share": "" if r.share is None else f"{r.share:.1%}",
        }
        for r in c.rows
    ]
    tokens = " ".join(
        f"**{markdown_code(t)}**" if here else markdown_code(t) for t, here in c.tokens
    )
    check = c.check
    return render(
        "report.md",
        {
            "answer": markdown_code(c.title_answer),
            "vs": "" if c.title_vs is None else " − " + markdown_code(c.title_vs),
            "prompt": markdown_text(c.prompt),
            "model_line": markdown_text(c.model_line),
            "split": c.split,
            "position": c.position,
            "tokens": tokens,
            "equations": [
                {"caption": e.caption, "body": " \\\\\n".join(e.lines)} for e in c.equations
            ],
            "rows": rows,
            "sources": [
                {
                    "position": s.position,
                    "token": markdown_code(s.token, in_table=True),
                    "value": plain_number(s.value, digits),
                }
                for s in c.sources
            ],
            "figures": [{"alt": markdown_text(f.alt), "path": f.path} for f in figures],
            "verdict": "**Pass**" if check.passed else "**FAIL**",
            "total": plain_number(check.total, 12),
            "model_logit": plain_number(check.model_logit, 12),
            "difference": plain_number(check.difference, 3),
            "tolerance": plain_number(check.tolerance, 3),
        },
        template_folder,
    )
