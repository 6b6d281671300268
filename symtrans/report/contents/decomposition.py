"""The report of one decomposition (and of a batch): the identity symbolically and with
numbers, the terms by |contribution| in a table that adds up, a waterfall (and a layer × head
heatmap for the ``heads`` split), and the check against the model's logit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy

from ... import expression as ex
from ... import labels as lb
from ...errors import InvalidArgumentError
from ...printing.latex import latex
from ...results.decomposition import BatchDecomposition, Decomposition
from ...verify import worst
from .. import numbers
from ..document import (
    Bar,
    Cell,
    Code,
    Column,
    Document,
    Equation,
    Figure,
    Heatmap,
    Plain,
    Section,
    Style,
    Table,
    Text,
    Token,
    Verification,
    Waterfall,
)
from ..layout import break_sum, signed_terms
from ..registry import document
from .common import model_line, tokens


@dataclass(frozen=True)
class Row:
    """A row of the terms table: a term, "other n terms", the bias, or the total."""

    rank: int | None  # None for the summary rows
    label: str  # TransformerLens-style, or "other 12 terms", "bias", "total"
    symbol: str  # inline LaTeX, "" for none
    value: float
    share: float | None  # cumulative share of Σ|parts|, None for summary rows
    kind: str  # "term", "other", "bias", "total"


def check_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise InvalidArgumentError(
            f"top_k is the number of terms the table lists before 'other n terms': a "
            f"non-negative int, got {top_k!r}"
        )
    return top_k


# A waterfall is a picture: it cannot break across pages, so it shows at most this many
# terms (then "other n terms", the bias and the total) whatever the table lists.
WATERFALL_BARS = 20


def table_rows(d: Decomposition, top_k: int, use_macros: bool = True) -> list[Row]:
    """Top-k terms by |contribution|, one row for the rest, the bias, and the total, so the
    table itself adds up. Symbols in macro form (``use_macros=False``: plain)."""
    order = np.argsort(-np.abs(d.values), kind="stable")
    magnitude = d.magnitude or 1.0
    rows, running = [], 0.0
    for rank, term in enumerate(d.top(top_k), start=1):
        running += abs(term.value)
        symbol = latex(term.node, use_macros=use_macros)
        rows.append(Row(rank, term.name, symbol, term.value, running / magnitude, "term"))
    rest = order[top_k:]
    if len(rest):
        other = float(np.sum(d.values[rest]))
        rows.append(Row(None, f"other {len(rest)} terms", "", other, None, "other"))
    bias = ex.OrderedSum(
        *([ex.Inner(ex.BETA, ex.DIRECTION)] if d.model.has_beta else []), sympy.Symbol("b_U")
    )
    rows.append(Row(None, "bias", latex(bias, use_macros=use_macros), d.constant, None, "bias"))
    rows.append(Row(None, "total", "", d.total, None, "total"))
    return rows


def bars(rows: list[Row]) -> tuple[Bar, ...]:
    out, running = [], 0.0
    for row in rows:
        if row.kind == "total":
            out.append(Bar(row.label, 0.0, row.value, "total"))
        else:
            end = running + row.value
            out.append(Bar(row.label, running, end, "positive" if row.value >= 0 else "negative"))
            running += row.value
    return tuple(out)


def source_totals(d: Decomposition) -> np.ndarray | None:
    """For the positions split: Σ over layers and heads of A_{p,s} v_s W_O, per source s."""
    if d.split != "positions":
        return None
    totals = np.zeros(d.position + 1)
    for label, value in zip(d.labels, d.values, strict=True):
        if isinstance(label, lb.HeadSource):
            totals[label.source] += value
    return totals


def heatmap(d: Decomposition) -> np.ndarray | None:
    """``[layers, heads]`` contributions for the heads split (``None`` for the others)."""
    if d.split != "heads":
        return None
    grid = np.zeros((d.model.n_layers, d.model.n_heads))
    for label, value in zip(d.labels, d.values, strict=True):
        head = lb.base(label)  # a head's remainder, or its parallel and perpendicular parts
        if isinstance(head, lb.HeadOut):
            grid[head.layer, head.head] += value
    return grid


def equations(d: Decomposition, style: Style, digits: int = 4) -> tuple[Equation, ...]:
    """The residual as a sum, the identity through the frozen norm, the symbols, the numbers,
    and the difference to the model's logit."""

    def tex(expr: sympy.Basic) -> str:
        return latex(expr, use_macros=True)

    budget = style.width
    groups = d.term_groups
    residual_lhs = tex(ex.Residual(d.model.n_layers, d.position))
    residual = break_sum(residual_lhs, signed_terms([tex(g.node) for g in groups]), budget)

    compact = ex.compact_logit_equation(
        len(groups), d.answer, d.vs, d.position, d.model.norm, d.model.has_gamma, d.model.has_beta
    )
    lhs = tex(compact.lhs)
    identity = break_sum(lhs, signed_terms([tex(a) for a in compact.rhs.args]), budget)
    scale = (
        tex(ex.direction_equation(d.answer, d.vs)).replace(" = ", " &= ", 1) + ",",
        tex(d.scale_expression).replace(" = ", " &= ", 1),
    )

    sigma = d.scale
    inners = [float(np.sum(d.values[g.start : g.stop])) * sigma for g in groups]
    lam = 1.0 / (np.sqrt(d.model.d_model) * sigma)
    # exact zeros (a bias the model does not have) are left out: no "+ 0"
    shown = [v for v in inners if v != 0.0] or [0.0]
    line = [rf"\sqrt{{{d.model.d_model}}} \cdot {numbers.tex(lam, digits)} \cdot \Bigl("]
    line += [numbers.signed_tex(v, digits, first=i == 0) for i, v in enumerate(shown)]
    line[-1] += r" \Bigr)"
    constants = ([d.beta_term] if d.model.has_beta else []) + [d.unembed_bias]
    line += [numbers.signed_tex(v, digits) for v in constants if v != 0.0]
    line.append("= " + numbers.tex(d.total, digits))
    numbers_eq = break_sum(lhs, line, budget)

    check = d.check()
    verdict = r"\le" if check.passed else ">"
    verification = (
        r"\Delta &= " + numbers.minus_tex(numbers.tex(check.total, 12), check.model_logit, 12),
        rf"&= {numbers.tex(check.difference, 3)}, \quad \left\vert\Delta\right\vert {verdict} "
        rf"{numbers.tex(check.tolerance, 3)}",
    )
    return (
        Equation(
            tuple(residual),
            ("The residual stream entering the final norm is an exact sum of terms:",),
        ),
        Equation(
            tuple(identity),
            (
                "Through the final norm, with its scale frozen at the value computed from the "
                "whole residual:",
            ),
        ),
        Equation(scale, ("where",)),
        Equation(tuple(numbers_eq), ("With numbers:",)),
        Equation(verification, ("Against the model's own logit:",)),
    )


TERM_COLUMNS = (
    Column("#", "int"),
    Column("term", "code"),
    Column("symbol", "math"),
    Column("contribution"),
)
SHARE = Column("cumulative share of Σ|parts|", "percent")


def terms_table(rows: list[Row], share: bool) -> Table:
    """The terms table; ``share``: with the cumulative share of ``Σ|parts|`` (pages, not
    paper columns)."""
    cells: list[tuple[Cell, ...]] = []
    for r in rows:
        label: Cell = r.label if r.kind in ("term", "bias") else Plain(r.label)
        cells.append((r.rank, label, r.symbol or None, r.value) + ((r.share,) if share else ()))
    first_summary = next(i for i, r in enumerate(rows) if r.kind != "term")
    return Table(
        TERM_COLUMNS + ((SHARE,) if share else ()),
        tuple(cells),
        rules_after=tuple(sorted({first_summary - 1, len(rows) - 2} - {-1})),
        strong_rows=(len(rows) - 1,),
    )


def title(answer: str, vs: str | None, prompt: str) -> Text:
    head: Text = ("Logit of ", Token(answer))
    if vs is not None:
        head += (" minus that of ", Token(vs))
    return head + (f" after “{prompt}”",)


@document.register
def _(d: Decomposition, style: Style) -> Document:
    top_k = check_top_k(style.top_k)
    rows = table_rows(d, top_k)
    blocks: list[Table | Figure] = [terms_table(rows, share=not style.narrow)]
    sections = [Section("The identity", equations(d, style))]
    pictured = rows if top_k <= WATERFALL_BARS else table_rows(d, WATERFALL_BARS)
    blocks.append(
        Figure(
            Waterfall(bars(pictured)),
            "Waterfall: each term moves the running sum to the total"
            + (
                f" (the {WATERFALL_BARS} largest terms, then the rest)."
                if pictured is not rows
                else "."
            ),
            "waterfall",
        )
    )
    grid = heatmap(d)
    if grid is not None:
        blocks.append(
            Figure(
                Heatmap(
                    grid,
                    "head",
                    "layer",
                    tuple(str(h) for h in range(grid.shape[1])),
                    tuple(str(layer) for layer in range(grid.shape[0])),
                    "contribution",
                ),
                "Contribution of each head (layer × head).",
                "heads",
            )
        )
    sections.append(Section("Terms by |contribution|", tuple(blocks)))
    per_source = source_totals(d)
    if per_source is not None:
        sections.append(
            Section(
                "By source position (all layers and heads)",
                (
                    Table(
                        (Column("source", "int"), Column("token", "token"), Column("contribution")),
                        tuple((s, d.token_strings[s], float(v)) for s, v in enumerate(per_source)),
                    ),
                ),
                level=2,
            )
        )
    return Document(
        title=title(d.answer, d.vs, d.prompt),
        facts=(
            ("Model", (model_line(d.model),)),
            ("Split", (Code(d.split), f", position {d.position}")),
        ),
        tokens=tokens(d.token_strings, d.position),
        sections=tuple(sections),
        verification=Verification(d.check(), "sum of terms", "model logit"),
        prompt=d.prompt,
    )


@document.register
def _(b: BatchDecomposition, style: Style) -> Document:
    claim, check = worst(b)
    first = b.items[0]
    any_vs = any(d.vs is not None for d in b.items)
    # one column of a paper holds the prompt, the direction and two numbers; the worst
    # difference is in the verification line
    difference = not style.narrow
    rows = tuple(
        (i, d.prompt, d.answer)
        + ((d.vs or "",) if any_vs else ())
        + (d.total, d.model_logit)
        + ((d.total - d.model_logit,) if difference else ())
        for i, d in enumerate(b.items)
    )
    columns = (
        (Column("#", "int"), Column("prompt", "text"), Column("answer", "token"))
        + ((Column("vs", "token"),) if any_vs else ())
        + (Column("sum of terms"), Column("model"))
        + ((Column("difference"),) if difference else ())
    )
    mean = b.values.mean(axis=0)
    order = np.argsort(-np.abs(mean), kind="stable")[: check_top_k(style.top_k)]
    terms = tuple(
        (rank, str(b.labels[i]), float(mean[i]), float(b.values[:, i].std()))
        for rank, i in enumerate(order, start=1)
    )
    return Document(
        title=(f"{len(b)} decompositions of the {first.split!r} split",),
        facts=(("Model", (model_line(first.model),)),),
        sections=(
            Section("Each prompt's terms against its model logit", (Table(columns, rows),)),
            Section(
                "Terms by |mean contribution|",
                (
                    Table(
                        (
                            Column("#", "int"),
                            Column("term", "code"),
                            Column("mean"),
                            Column("std"),
                        ),
                        terms,
                    ),
                ),
            ),
        ),
        verification=Verification(
            check, "sum of terms", "model logit", f"{claim.subject}, the worst of the batch"
        ),
    )
