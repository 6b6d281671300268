"""Sheets for the analyses beyond one decomposition: the logit lens, a dataset, an attention
score and a head's path expansion. Each builds a :class:`~.sheet.Sheet` from plain numbers;
the renderers in :mod:`.sheet_render` lay it out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .. import expression as ex
from .. import labels as lb
from ..norm import NormKind
from ..printing.latex import latex
from ..verify import Check, default_tolerance
from .content import model_line
from .sheet import Cell, Column, Heatmap, LinePlot, Plain, Section, Sheet, Table, Verification

if TYPE_CHECKING:
    from ..attention import ScoreDecomposition
    from ..dataset import DatasetDecomposition
    from ..decomposition import ModelInfo
    from ..logit_lens import LogitLens
    from ..paths import PathExpansion
    from ..projection import Projection


def _tex(expr: object, use_macros: bool) -> str:
    return latex(expr, use_macros=use_macros)


def _direction_text(answer: str, vs: str | None) -> str:
    return repr(answer) if vs is None else f"{answer!r} − {vs!r}"


def _centre(x: str, model: ModelInfo) -> str:
    return rf"\stCenter{{{x}}}" if model.norm is NormKind.LAYER else x


def _read(model: ModelInfo) -> str:
    return r"\stGamma \odot u" if model.has_gamma else "u"


def _constant(model: ModelInfo) -> str:
    return (r"\stInner{\stBeta}{u} + " if model.has_beta else "") + "b_U"


def _tokens(strings: Sequence[str], here: int) -> tuple[tuple[str, bool], ...]:
    return tuple((t, i == here) for i, t in enumerate(strings))


# -- logit lens --------------------------------------------------------------------------------


def lens_sheet(ll: LogitLens, use_macros: bool = False) -> Sheet:
    m, p = ll.model, ll.position
    x_l = rf"\stResid{{l}}{{{p}}}"
    math = (
        rf"\ell^{{(l)}} &= \sqrt{{\stN}}\, \stScale_{{l}} \stInner{{{_read(m)}}}"
        rf"{{{_centre(x_l, m)}}} + {_constant(m)}",
        rf"\stScale_{{l}} &= \frac{{1}}{{\sqrt{{\stNormSq{{{_centre(x_l, m)}}} + \stN \stEps}}}}",
        _tex(ex.direction_equation(ll.answer, ll.vs), use_macros).replace(" = ", " &= ", 1),
    )
    change = np.diff(ll.values)
    rows = tuple(
        (
            label,
            rf"\stResid{{{i}}}{{{p}}}",
            float(v),
            None if i == 0 else float(change[i - 1]),
            float(s),
        )
        for i, (label, v, s) in enumerate(zip(ll.labels, ll.values, ll.scales, strict=True))
    )
    columns = (
        Column("residual after", "code"),
        Column("symbol", "math"),
        Column("logit"),
        Column("change"),
        Column("scale σ"),
    )
    magnitude = abs(float(ll.values[-1] - ll.constant)) + abs(ll.constant)
    check = Check(
        float(ll.values[-1]), ll.model_logit, default_tolerance(m.dtype, m.norm, magnitude)
    )
    return Sheet(
        title=f"Logit lens of {_direction_text(ll.answer, ll.vs)} after {ll.prompt!r}",
        facts=(("Model", model_line(m)), ("Position", str(p))),
        tokens=_tokens(ll.token_strings, p),
        sections=(
            Section(
                "The lens, exact",
                "Entry l reads the residual stream after the embedding (l = 0) and after each "
                "block through the final norm with its own scale; nothing is approximated, and "
                "the last entry is the model's own logit.",
                math=math,
            ),
            Section(
                "Values",
                "change: what the block added to the lens value (under the new scale).",
                table=Table(columns, rows),
                figure=LinePlot(
                    x_labels=ll.labels,
                    series=(("lens", tuple(float(v) for v in ll.values)),),
                    xlabel="residual stream after",
                    ylabel="logit" if ll.vs is None else "logit difference",
                    reference=ll.model_logit,
                    reference_label="model's logit",
                ),
                caption="The logit read from each prefix of the residual stream.",
            ),
        ),
        verification=Verification("the last entry against the model's logit", check),
        name="lens",
    )


# -- a dataset --------------------------------------------------------------------------------


def _symbol(node: object, position: int, token: str, use_macros: bool) -> str:
    """The symbol of a term, or of a constant piece of a score or path (``b_Q``, ``β_1``),
    at ``position`` (``token`` is the token there)."""
    return _tex(ex.term_node(node, position, token), use_macros)


def dataset_sheet(ds: DatasetDecomposition, top_k: int = 12) -> Sheet:
    m = ds.model
    order = np.argsort(-np.abs(ds.mean), kind="stable")
    shown, rest = order[:top_k], order[top_k:]
    rows: list[tuple[Cell, ...]] = [
        (rank, str(ds.labels[i]), float(ds.mean[i]), float(ds.std[i]))
        for rank, i in enumerate(shown, start=1)
    ]
    if len(rest):
        rows.append((None, Plain(f"other {len(rest)} terms"), float(np.sum(ds.mean[rest])), None))
    rows.append((None, Plain("bias"), ds.constant_mean, ds.constant_std))
    total_std = float(np.std(ds.totals, ddof=1)) if ds.count > 1 else 0.0
    rows.append((None, Plain("total"), ds.total_mean, total_std))
    summary = len(shown) - 1
    columns = (Column("#", "int"), Column("term", "code"), Column("mean"), Column("std"))
    sections = [
        Section(
            "The identity, averaged",
            f"Each of the {ds.count} logits is an exact sum of its terms (each checked against "
            "the model); so is their mean. std is the sample standard deviation over prompts.",
            math=(
                r"\overline{\mathrm{logit}} &= \sum_{i} \overline{\stInner{\stGamma \odot u}"
                r"{\sqrt{\stN}\,\stScale\, c(t_i)}} + \overline{" + _constant(m) + "}",
            ),
        ),
        Section(
            "Terms by |mean contribution|",
            table=Table(columns, tuple(rows), rules_after=(summary, len(rows) - 2)),
        ),
    ]
    if ds.split == "heads":
        grid = np.zeros((m.n_layers, m.n_heads))
        for label, value in zip(ds.labels, ds.mean, strict=True):
            if isinstance(label, lb.HeadOut):
                grid[label.layer, label.head] = value
        sections.append(
            Section(
                "Mean contribution of each head",
                figure=Heatmap(
                    grid,
                    "head",
                    "layer",
                    tuple(str(h) for h in range(m.n_heads)),
                    tuple(str(layer) for layer in range(m.n_layers)),
                    "mean contribution",
                ),
                caption="Mean direct contribution of each head (layer × head) over the prompts.",
            )
        )
    n = min(len(ds.examples), 10)
    sections.append(
        Section(
            f"The first {n} prompts",
            table=Table(
                (
                    Column("prompt", "text"),
                    Column("answer", "token"),
                    Column("vs", "token"),
                    Column("sum of terms"),
                    Column("model"),
                ),
                tuple(
                    (prompt, answer, vs or "", float(ds.totals[i]), float(ds.model_logits[i]))
                    for i, (prompt, answer, vs) in enumerate(ds.examples[:n])
                ),
            ),
        )
    )
    worst, check = ds.worst()
    directions = {vs is None for _, _, vs in ds.examples}
    return Sheet(
        title=f"Logit {'difference ' if directions == {False} else ''}over {ds.count} prompts",
        facts=(
            ("Model", model_line(m)),
            ("Split", ds.split),
            ("Prompts", f"{ds.count}; mean model logit {ds.model_logit_mean:.6g}"),
        ),
        sections=tuple(sections),
        verification=Verification(
            f"the prompt with the largest error relative to its tolerance (#{worst} of {ds.count})",
            check,
        ),
        name="dataset",
    )


# -- an attention score -----------------------------------------------------------------------


def scores_sheet(sd: ScoreDecomposition, top_k: int = 12, use_macros: bool = False) -> Sheet:
    tokens = sd.token_strings
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
                _symbol(q, p, tokens[p], use_macros)
                + r" \cdot "
                + _symbol(k, s, tokens[s], use_macros),
                float(sd.values[i, j]),
                running / magnitude,
            )
        )
    rest = flat[top_k:]
    if len(rest):
        rows.append(
            (
                None,
                Plain(f"other {len(rest)} pairs"),
                None,
                None,
                float(sd.values.flat[rest].sum()),
                None,
            )
        )
    rows.append((None, Plain("total"), None, None, sd.total, None))
    columns = (
        Column("#", "int"),
        Column("query term", "code"),
        Column("key term", "code"),
        Column("pair", "math"),
        Column("score piece"),
        Column("cumulative share"),
    )
    # The heatmap keeps the rows and columns that carry most of the score.
    keep_q = np.argsort(-np.abs(sd.values).sum(axis=1), kind="stable")[:16]
    keep_k = np.argsort(-np.abs(sd.values).sum(axis=0), kind="stable")[:16]
    keep_q, keep_k = np.sort(keep_q), np.sort(keep_k)
    grid = sd.values[np.ix_(keep_q, keep_k)]
    trimmed = len(keep_q) < len(sd.query_labels) or len(keep_k) < len(sd.key_labels)
    lh = f"{sd.layer},{sd.head}"
    return Sheet(
        title=f"Attention score of L{sd.layer}H{sd.head} from position {p} to {s}",
        facts=(
            ("Query", f"position {p}, token {tokens[p]!r}"),
            ("Key", f"position {s}, token {tokens[s]!r}"),
            ("Scale", f"scores are divided by {sd.attn_scale:.6g}"),
        ),
        tokens=_tokens(tokens[: p + 1], -1),
        sections=(
            Section(
                "The score as a sum of query-term × key-term pieces",
                "With the first norm's scale frozen at each position, the query at p and the key "
                "at s are sums of pieces, one per term of the residual entering the block (plus "
                "the first norm's bias and b_Q / b_K), each rotated where the model is rotary; "
                "the pre-softmax score is the sum of all their pairwise products.",
                math=(
                    rf"\mathrm{{score}}^{{{lh}}}_{{{p},{s}}} &= "
                    rf"\frac{{\stInner{{q^{{{lh}}}_{{{p}}}}}{{k^{{{lh}}}_{{{s}}}}}}}"
                    rf"{{{sd.attn_scale:.6g}}} = \sum_{{i,j}} "
                    rf"\frac{{\stInner{{q_i}}{{k_j}}}}{{{sd.attn_scale:.6g}}}",
                ),
            ),
            Section(
                "Largest pieces",
                table=Table(columns, tuple(rows), rules_after=(min(top_k, len(flat)) - 1,)),
                figure=Heatmap(
                    grid,
                    "key term",
                    "query term",
                    tuple(str(sd.key_labels[j]) for j in keep_k),
                    tuple(str(sd.query_labels[i]) for i in keep_q),
                    "score piece",
                ),
                caption="Score pieces, query term × key term"
                + (" (the 16 rows and columns of largest |sum|)" if trimmed else "")
                + ".",
            ),
        ),
        verification=Verification(
            "the sum of pieces against the model's own score (hook_attn_scores)",
            Check(sd.total, sd.model_score, sd.tolerance),
        ),
        name="score",
    )


# -- path expansion -----------------------------------------------------------------------------


def path_symbol(path: object, tokens: Sequence[str], use_macros: bool = False) -> str:
    """``t(s0) → H^{l1,h1}_{s1} → ... → H^{l,h}_p``: a path's source term at its position,
    then every head it passes through at the position it writes to."""
    nodes, positions = path.nodes, path.positions  # type: ignore[attr-defined]
    parts = [_symbol(nodes[0], positions[0], tokens[positions[0]], use_macros)]
    for node, q in zip(nodes[1:], positions[1:], strict=True):
        parts.append(rf"\stHead{{{node.layer}}}{{{node.head}}}{{{q}}}")
    return r" \to ".join(parts)


def paths_sheet(pe: PathExpansion, top_k: int = 12, use_macros: bool = False) -> Sheet:
    tokens = pe.token_strings
    magnitude = float(sum(abs(path.value) for path in pe.paths)) or 1.0
    rows: list[tuple[Cell, ...]] = []
    running = 0.0
    for rank, path in enumerate(pe.paths[:top_k], start=1):
        running += abs(path.value)
        rows.append(
            (
                rank,
                "->".join(str(n) for n in path.nodes),
                path_symbol(path, tokens, use_macros),
                " → ".join(str(q) for q in path.positions),
                path.value,
                running / magnitude,
            )
        )
    rest = pe.paths[top_k:]
    if rest:
        rows.append(
            (None, Plain(f"other {len(rest)} paths"), None, None, sum(p.value for p in rest), None)
        )
    rows.append((None, Plain("total"), None, None, pe.total, None))
    columns = (
        Column("#", "int"),
        Column("path", "code"),
        Column("symbolic form", "math"),
        Column("positions", "text"),
        Column("contribution"),
        Column("cumulative share"),
    )
    h = pe.head
    return Sheet(
        title=f"Paths into {h} at position {pe.position}",
        facts=(
            ("Direction", _direction_text(pe.answer, pe.vs)),
            ("Depth", f"{pe.depth} (heads per path, the expanded one included)"),
            ("Paths", str(len(pe.paths))),
        ),
        tokens=_tokens(tokens, pe.position),
        sections=(
            Section(
                "The head's term as a sum of paths",
                "With every attention pattern and first-norm scale frozen at its value, a head's "
                "output is linear in the residual entering its block, so its direct contribution "
                "to the logit is an exact sum over paths: a source term at position s0 carried "
                "by heads (each moving it from one position to the next) to the destination.",
                math=(
                    rf"\frac{{\stInner{{\stHead{{{h.layer}}}{{{h.head}}}{{{pe.position}}}}}{{w}}}}"
                    rf"{{\sigma}} &= \sum_{{\text{{paths}}}} \frac{{\stInner{{t_{{s_0}} "
                    rf"\Omega_{{1}} \cdots \Omega_{{k}}}}{{w}}}}{{\sigma}}",
                    r"\Omega^{l,h}_{q,s}\, x &= A^{l,h}_{q,s}\, \frac{\gamma_1 \odot c(x)}"
                    r"{\sigma_{1,s}}\, W_V^{l,h} W_O^{l,h}",
                ),
            ),
            Section(
                "Largest paths",
                table=Table(columns, tuple(rows), rules_after=(min(top_k, len(pe.paths)) - 1,)),
            ),
        ),
        verification=Verification(
            f"the paths against {h}'s term (from the model's own z)",
            Check(pe.total, pe.head_value, pe.tolerance),
        ),
        name="paths",
    )


# -- projection -------------------------------------------------------------------------------


def projection_sheet(pr: Projection) -> Sheet:
    d = pr.base
    h = pr.head
    onto = {
        "source": "the unembedding of the token at each source position",
        "vector": "a given vector",
    }.get(pr.onto, f"the unembedding of {pr.onto!r}")
    sources = tuple(
        (
            s.position,
            s.token,
            s.attention,
            s.coefficient,
            "yes" if s.kept else "no",
            s.parallel,
            s.perpendicular,
        )
        for s in pr.sources
    )
    effects = tuple(
        (name, e.logit, e.logit_renormalized, e.loss, e.loss_renormalized)
        for name, e in (
            ("the model (nothing removed)", pr.full),
            ("projection only (parallel parts kept)", pr.projection_only),
            ("perpendicular parts only", pr.perpendicular_only),
            (f"{h} ablated", pr.ablated),
        )
    )
    check = Check(pr.parallel + pr.perpendicular, pr.head_value, d.tolerance)
    return Sheet(
        title=f"Projection of {h} at position {d.position}",
        facts=(
            ("Model", model_line(d.model)),
            ("Direction", _direction_text(d.answer, d.vs)),
            ("Onto", onto + (" (negative coefficients only)" if pr.only_negative else "")),
            (
                "Head term",
                f"{pr.head_value:.6g} = parallel {pr.parallel:.6g} + perpendicular "
                f"{pr.perpendicular:.6g}",
            ),
        ),
        tokens=_tokens(d.token_strings, d.position),
        sections=(
            Section(
                "Per source position",
                "Each source's write r_s = A_{p,s} v_s W_O is split into its part along e_s "
                "(coefficient c_s = <r_s, e_s>/|e_s|^2) and the rest; both read through the "
                "final norm with its scale frozen.",
                math=(
                    r"r_s &= c_s e_s + (r_s - c_s e_s), \quad "
                    r"c_s = \frac{\stInner{r_s}{e_s}}{\stNormSq{e_s}}",
                ),
                table=Table(
                    (
                        Column("source", "int"),
                        Column("token", "token"),
                        Column("attention"),
                        Column("c_s"),
                        Column("kept", "text"),
                        Column("parallel"),
                        Column("perpendicular"),
                    ),
                    sources,
                ),
            ),
            Section(
                "Logit and loss when the head writes only part of its output",
                "Direct effect: the final residual is changed and read through the final norm "
                "with its scale frozen, or recomputed from the changed residual; loss is the "
                "cross-entropy of the answer at this position.",
                table=Table(
                    (
                        Column("final residual", "text"),
                        Column("logit, frozen"),
                        Column("logit, recomputed"),
                        Column("loss, frozen"),
                        Column("loss, recomputed"),
                    ),
                    effects,
                    rules_after=(0,),
                ),
            ),
        ),
        verification=Verification(f"parallel + perpendicular against {h}'s term", check),
        name="projection",
    )
