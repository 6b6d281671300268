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
    Math,
    Paragraph,
    Plain,
    Section,
    Style,
    Table,
    Token,
    Verification,
)
from ..registry import document
from .common import tokens


def symbol(node: object, position: int, token: str) -> str:
    """The symbol of a term, or of a constant piece of a score or path (``b_Q``, ``β_1``),
    at ``position`` (``token`` is the token there), in macro form."""
    return latex(ex.term_node(node, position, token), use_macros=True)


@document.register
def _(sd: ScoreDecomposition, style: Style) -> Document:
    top_k = style.top_k
    share = not style.narrow  # one column of a paper: no cumulative share
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
                symbol(q, p, strings[p]) + r" \cdot " + symbol(k, s, strings[s]),
                float(sd.values[i, j]),
            )
            + ((running / magnitude,) if share else ())
        )
    rest = flat[top_k:]
    blank: tuple[Cell, ...] = (None,) if share else ()
    if len(rest):
        other = float(sd.values.flat[rest].sum())
        rows.append((None, Plain(f"other {len(rest)} pairs"), None, None, other) + blank)
    rows.append((None, Plain("total"), None, None, sd.total) + blank)
    columns = (
        Column("#", "int"),
        Column("query term", "code"),
        Column("key term", "code"),
        Column("pair", "math"),
        Column("score piece"),
    ) + ((Column("cumulative share", "percent"),) if share else ())
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
            ("Query", (f"position {p}, token ", Token(strings[p]))),
            ("Key", (f"position {s}, token ", Token(strings[s]))),
            ("Scale", ("scores are divided by ", Math(scale))),
        ),
        tokens=tokens(strings[: p + 1], -1),
        sections=(
            Section(
                "The score as a sum of query-term × key-term pieces",
                (
                    Paragraph(
                        (
                            "With the first norm's scale frozen at each position, the query at ",
                            Math("p"),
                            " and the key at ",
                            Math("s"),
                            " are sums of pieces ",
                            Math("q_{i}"),
                            " and ",
                            Math("k_{j}"),
                            ", one per term of the residual entering the block (plus the first "
                            "norm's bias ",
                            Math(rf"\stLnOneBias{{{sd.layer}}}"),
                            " and ",
                            Math("b_{Q}"),
                            ", ",
                            Math("b_{K}"),
                            "), each rotated where the model is rotary; the pre-softmax score is "
                            "the sum of all their pairwise products.",
                        )
                    ),
                    Equation(
                        (
                            rf"\mathop{{\mathrm{{score}}}}\nolimits_{{{p},{s}}}^{{({lh})}} &= "
                            rf"\frac{{\stInner{{q_{{{p}}}^{{({lh})}}}}{{k_{{{s}}}^{{({lh})}}}}}}"
                            rf"{{{scale}}} = \sum_{{i,j}} "
                            rf"\frac{{\stInner{{q_{{i}}}}{{k_{{j}}}}}}{{{scale}}}",
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
