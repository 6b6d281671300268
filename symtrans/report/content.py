"""What a report says, independent of the format it is written in.

One :class:`ReportContent` is built from a decomposition; the Markdown, LaTeX and HTML
renderers only lay it out. Equations are LaTeX (macro or plain form), text is raw data that
each renderer escapes for its own format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import sympy

from .. import expression as ex
from .. import labels as lb
from ..errors import InvalidArgumentError
from ..norm import NormKind
from ..printing.latex import latex
from ..verify import Check
from .layout import break_sum, plain_number, signed_terms, tex_number

if TYPE_CHECKING:
    from ..decomposition import Decomposition, ModelInfo


@dataclass(frozen=True)
class Equation:
    """A displayed equation as lines of an ``aligned`` block (``&`` marks the alignment)."""

    caption: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    rank: int | None  # None for the summary rows
    label: str  # TransformerLens-style, or "other 12 terms", "bias", "total"
    symbol: str  # inline LaTeX, "" for none
    value: float
    share: float | None  # cumulative share of Σ|parts|, None for summary rows
    kind: str  # "term", "other", "bias", "total"


@dataclass(frozen=True)
class Bar:
    """One bar of the waterfall: from ``start`` to ``end`` (the running sum)."""

    label: str
    start: float
    end: float
    kind: str  # "positive", "negative", "total"


@dataclass(frozen=True)
class SourceRow:
    """What all heads together carried from one source position."""

    position: int
    token: str
    value: float


@dataclass(frozen=True)
class ReportContent:
    title_answer: str
    title_vs: str | None
    prompt: str
    model_line: str
    split: str
    position: int
    tokens: tuple[tuple[str, bool], ...]  # (token, is the decomposed position)
    equations: tuple[Equation, ...]
    rows: tuple[Row, ...]
    bars: tuple[Bar, ...]
    heatmap: np.ndarray | None  # [layers, heads] for the heads split
    sources: tuple[SourceRow, ...]  # per source position, for the positions split
    check: Check
    digits: int


def _norm_name(kind: NormKind) -> str:
    return "LayerNorm" if kind is NormKind.LAYER else "RMSNorm"


def model_line(m: ModelInfo) -> str:
    """``tiny-capitals (gpt2, 2 layers, 4 heads, d_model 64, LayerNorm with eps 1e-5, ...)``."""
    return (
        f"{m.name} ({m.architecture}, {m.n_layers} layers, {m.n_heads} heads, d_model {m.d_model}, "
        f"{_norm_name(m.norm)} with eps {plain_number(m.eps, 3)}, {m.dtype})"
    )


def table_rows(d: Decomposition, top_k: int) -> list[Row]:
    """Top-k terms by |contribution|, one row for the rest, the bias, and the total, so the
    table itself adds up."""
    order = np.argsort(-np.abs(d.values), kind="stable")
    magnitude = d.magnitude or 1.0
    rows, running = [], 0.0
    for rank, term in enumerate(d.top(top_k), start=1):
        running += abs(term.value)
        rows.append(Row(rank, term.name, "", term.value, running / magnitude, "term"))
    rest = order[top_k:]
    if len(rest):
        rows.append(
            Row(None, f"other {len(rest)} terms", "", float(np.sum(d.values[rest])), None, "other")
        )
    rows.append(Row(None, "bias", "", d.constant, None, "bias"))
    rows.append(Row(None, "total", "", d.total, None, "total"))
    return rows


def bars(rows: list[Row]) -> list[Bar]:
    out, running = [], 0.0
    for row in rows:
        if row.kind == "total":
            out.append(Bar(row.label, 0.0, row.value, "total"))
        else:
            out.append(
                Bar(
                    row.label,
                    running,
                    running + row.value,
                    "positive" if row.value >= 0 else "negative",
                )
            )
            running += row.value
    return out


def sources(d: Decomposition) -> tuple[SourceRow, ...]:
    """For the positions split: Σ over layers and heads of A_{p,s} v_s W_O, per source s."""
    if d.split != "positions":
        return ()
    totals = np.zeros(d.position + 1)
    for label, value in zip(d.labels, d.values, strict=True):
        if isinstance(label, lb.HeadSource):
            totals[label.source] += value
    return tuple(SourceRow(s, d.token_strings[s], float(v)) for s, v in enumerate(totals))


def heatmap(d: Decomposition) -> np.ndarray | None:
    if d.split != "heads":
        return None
    grid = np.zeros((d.model.n_layers, d.model.n_heads))
    for label, value in zip(d.labels, d.values, strict=True):
        head = lb.base(label)  # a head's remainder, or its parallel and perpendicular parts
        if isinstance(head, lb.HeadOut):
            grid[head.layer, head.head] += value
    return grid


def build(
    d: Decomposition,
    *,
    top_k: int = 12,
    digits: int = 4,
    use_macros: bool = False,
    budget: float = 60.0,
) -> ReportContent:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidArgumentError(
            f"top_k is the number of terms the table lists before 'other n terms': a "
            f"non-negative int, got {top_k!r}"
        )

    def tex(expr: sympy.Basic) -> str:
        return latex(expr, use_macros=use_macros)

    groups = d.term_groups
    residual_lhs = tex(ex.Residual(d.model.n_layers, d.position))
    residual = break_sum(residual_lhs, signed_terms([tex(g.node) for g in groups]), budget)

    compact = ex.compact_logit_equation(
        len(groups), d.answer, d.vs, d.position, d.model.norm, d.model.has_gamma, d.model.has_beta
    )
    lhs = tex(compact.lhs)
    identity_terms = [tex(a) for a in compact.rhs.args]
    identity = break_sum(lhs, signed_terms(identity_terms), budget)
    scale = (
        tex(ex.direction_equation(d.answer, d.vs)).replace(" = ", " &= ", 1) + ",",
        tex(d.scale_expression).replace(" = ", " &= ", 1),
    )

    sigma = d.scale
    inners = [float(np.sum(d.values[g.start : g.stop])) * sigma for g in groups]
    lam = 1.0 / (np.sqrt(d.model.d_model) * sigma)
    numbers = [rf"\sqrt{{{d.model.d_model}}} \cdot {tex_number(lam, digits)} \cdot \Bigl("]
    numbers += signed_terms([tex_number(v, digits) for v in inners])
    numbers[-1] += r" \Bigr)"
    if d.model.has_beta:
        numbers.append(("- " if d.beta_term < 0 else "+ ") + tex_number(abs(d.beta_term), digits))
    numbers.append(("- " if d.unembed_bias < 0 else "+ ") + tex_number(abs(d.unembed_bias), digits))
    numbers.append("= " + tex_number(d.total, digits))
    numbers_eq = break_sum(lhs, numbers, budget)

    check = d.check()
    verdict = r"\le" if check.passed else ">"
    verification = (
        rf"\Delta &= {tex_number(check.total, 12)} - {tex_number(check.model_logit, 12)}",
        rf"&= {tex_number(check.difference, 3)}, \quad |\Delta| {verdict} "
        rf"{tex_number(check.tolerance, 3)}",
    )

    rows = table_rows(d, top_k)
    symbols = {t.name: tex(t.node) for t in d.top(top_k)}
    beta_symbol = tex(
        ex.OrderedSum(
            *([ex.Inner(ex.BETA, ex.DIRECTION)] if d.model.has_beta else []), sympy.Symbol("b_U")
        )
    )
    rows = [
        Row(
            r.rank,
            r.label,
            symbols.get(r.label, beta_symbol if r.kind == "bias" else ""),
            r.value,
            r.share,
            r.kind,
        )
        for r in rows
    ]
    return ReportContent(
        title_answer=d.answer,
        title_vs=d.vs,
        prompt=d.prompt,
        model_line=model_line(d.model),
        split=d.split,
        position=d.position,
        tokens=tuple((t, i == d.position) for i, t in enumerate(d.token_strings)),
        equations=(
            Equation(
                "The residual stream entering the final norm is an exact sum of terms:",
                tuple(residual),
            ),
            Equation(
                "Through the final norm, with its scale frozen at the value computed from "
                "the whole residual:",
                tuple(identity),
            ),
            Equation("where", scale),
            Equation("With numbers:", tuple(numbers_eq)),
            Equation("Against the model's own logit:", verification),
        ),
        rows=tuple(rows),
        bars=tuple(bars(rows)),
        heatmap=heatmap(d),
        sources=sources(d),
        check=check,
        digits=digits,
    )
