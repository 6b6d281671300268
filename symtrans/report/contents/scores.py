"""The report of an attention score: the score as a sum of query-term × key-term pieces, the
largest pieces, a heatmap, and the sum against the model's own score."""

from __future__ import annotations

import numpy as np

from ... import expression as ex
from ...printing.latex import latex
from ...results.scores import ScoreDecomposition
from ...verify import worst
from ..document import (
    Cell,
    Column,
    Document,
    Equation,
    Figure,
    Heatmap,
    Paragraph,
    Plain,
    Section,
    Style,
    Table,
    Verification,
)
from ..registry import document
from .common import tokens


def symbol(node: object, position: int, token: str, use_macros: bool) -> str:
    """The symbol of a term, or of a constant piece of a score or path (``b_Q``, ``β_1``),
    at ``position`` (``token`` is the token there)."""
    return latex(ex.term_node(node, position, token), use_macros=use_macros)


@document.register
def _(sd: ScoreDecomposition, style: Style) -> Document:
    top_k, use_macros = style.top_k, style.use_macros
    strings = sd.token_strings
    p, s = sd.query_pos, sd.key_pos
    flat = np.argsort(-np.abs(sd.values), axis=None, kind="stable")
    magnitude = float(np.abs(sd.values).sum()) or 1.0
    rows: list[tuple[Cell, ...]] = []
    running = 0.0
    for rank, f in enumerate(flat[:top_k], start=1):
        i, j = np.unravel_index(f, sd.values.shape)
        q, k = sd.query_labels[i], sd.key_labels[j]
        running += abs(float(sd.values[i, j]))
        rows.append(
            (
                rank,
                str(q),
                str(k),
                symbol(q, p, strings[p], use_macros)
                + r" \cdot "
                + symbol(k, s, strings[s], use_macros),
                float(sd.values[i, j]),
                running / magnitude,
            )
        )
    rest = flat[top_k:]
    if len(rest):
        other = float(sd.values.flat[rest].sum())
        rows.append((None, Plain(f"other {len(rest)} pairs"), None, None, other, None))
    rows.append((None, Plain("total"), None, None, sd.total, None))
    columns = (
        Column("#", "int"),
        Column("query term", "code"),
        Column("key term", "code"),
        Column("pair", "math"),
        Column("score piece"),
        Column("cumulative share", "percent"),
    )
    # The heatmap keeps the rows and columns that carry most of the score.
    keep_q = np.sort(np.argsort(-np.abs(sd.values).sum(axis=1), kind="stable")[:16])
    keep_k = np.sort(np.argsort(-np.abs(sd.values).sum(axis=0), kind="stable")[:16])
    grid = sd.values[np.ix_(keep_q, keep_k)]
    trimmed = len(keep_q) < len(sd.query_labels) or len(keep_k) < len(sd.key_labels)
    lh = f"{sd.layer},{sd.head}"
    scale = f"{sd.attn_scale:.6g}"
    claim, check = worst(sd)
    return Document(
        title=(f"Attention score of L{sd.layer}H{sd.head} from position {p} to {s}",),
        facts=(
            ("Query", (f"position {p}, token {strings[p]!r}",)),
            ("Key", (f"position {s}, token {strings[s]!r}",)),
            ("Scale", (f"scores are divided by {scale}",)),
        ),
        tokens=tokens(strings[: p + 1], -1),
        sections=(
            Section(
                "The score as a sum of query-term × key-term pieces",
                (
                    Paragraph(
                        (
                            "With the first norm's scale frozen at each position, the query at p "
                            "and the key at s are sums of pieces, one per term of the residual "
                            "entering the block (plus the first norm's bias and b_Q / b_K), each "
                            "rotated where the model is rotary; the pre-softmax score is the sum "
                            "of all their pairwise products.",
                        )
                    ),
                    Equation(
                        (
                            rf"\mathrm{{score}}^{{{lh}}}_{{{p},{s}}} &= "
                            rf"\frac{{\stInner{{q^{{{lh}}}_{{{p}}}}}{{k^{{{lh}}}_{{{s}}}}}}}"
                            rf"{{{scale}}} = \sum_{{i,j}} "
                            rf"\frac{{\stInner{{q_i}}{{k_j}}}}{{{scale}}}",
                        )
                    ),
                ),
            ),
            Section(
                "Largest pieces",
                (
                    Table(
                        columns,
                        tuple(rows),
                        rules_after=(min(top_k, len(flat)) - 1,),
                        strong_rows=(len(rows) - 1,),
                    ),
                    Figure(
                        Heatmap(
                            grid,
                            "key term",
                            "query term",
                            tuple(str(sd.key_labels[j]) for j in keep_k),
                            tuple(str(sd.query_labels[i]) for i in keep_q),
                            "score piece",
                        ),
                        "Score pieces, query term × key term"
                        + (" (the 16 rows and columns of largest |sum|)" if trimmed else "")
                        + ".",
                        "score-1",
                    ),
                ),
            ),
        ),
        verification=Verification(check, "sum of pieces", "model score (hook_attn_scores)"),
    )
