"""The report as one self-contained HTML page: math as MathML (rendered by the browser, no
script, no network), pictures as inline SVG, every token string HTML-escaped."""

from __future__ import annotations

import os
import re

from markupsafe import Markup

from ..printing.escape import visible_token
from ..printing.notation import expand
from ..templates import render
from .content import ReportContent
from .layout import plain_number


def mathml(latex: str) -> Markup:
    """Presentation MathML of a (plain, macro-free) LaTeX snippet, as a display block."""
    import latex2mathml.converter

    return Markup(latex2mathml.converter.convert(expand(latex), display="block"))


def _line(line: str) -> str:
    # An aligned line ("lhs &= ..." or "&\quad + ...") becomes a line of its own.
    return re.sub(r"(?<!\\)&", "", line)


def html(
    content: ReportContent,
    figures: tuple[tuple[str, str], ...] = (),
    template_folder: str | os.PathLike[str] | None = None,
) -> str:
    c = content
    digits = c.digits
    check = c.check
    rows = [
        {
            "rank": "" if r.rank is None else str(r.rank),
            "label": r.label,
            "code": r.kind in ("term", "bias"),
            "summary": r.kind in ("other", "bias", "total"),
            "symbol": mathml(r.symbol) if r.symbol else "",
            "value": plain_number(r.value, digits),
            "share": "" if r.share is None else f"{r.share:.1%}",
        }
        for r in c.rows
    ]
    return render(
        "report.html",
        {
            "answer": visible_token(c.title_answer),
            "answer_text": c.title_answer,
            "vs": None if c.title_vs is None else visible_token(c.title_vs),
            "prompt": c.prompt,
            "model_line": c.model_line,
            "split": c.split,
            "position": c.position,
            "tokens": [{"text": visible_token(t), "here": here} for t, here in c.tokens],
            "equations": [
                {"caption": e.caption, "lines": [mathml(_line(line)) for line in e.lines]}
                for e in c.equations
            ],
            "rows": rows,
            "sources": [
                {
                    "position": s.position,
                    "token": visible_token(s.token),
                    "value": plain_number(s.value, digits),
                }
                for s in c.sources
            ],
            "figures": [{"svg": Markup(svg), "caption": caption} for caption, svg in figures],
            "verdict": "Pass" if check.passed else "FAIL",
            "verdict_class": "pass" if check.passed else "fail",
            "total": plain_number(check.total, 12),
            "model_logit": plain_number(check.model_logit, 12),
            "difference": plain_number(check.difference, 3),
            "tolerance": plain_number(check.tolerance, 3),
        },
        template_folder,
    )


def body_html(page: str) -> str:
    """The inside of ``<body>`` with the page's style, for a notebook cell."""
    style = page[page.find("<style>") : page.find("</style>") + len("</style>")]
    body = page[page.find("<body>") + len("<body>") : page.rfind("</body>")]
    return f'<div class="symtrans-report">{style}{body}</div>'
