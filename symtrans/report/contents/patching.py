"""The report of an activation patching (seed 003's heatmaps: layer × position, or layer ×
head for ``z``, with token labels; the largest cells; each explained cell as an exact sum),
and of one explained cell on its own."""

from __future__ import annotations

from typing import Literal

import numpy as np

from ... import expression as ex
from ...kinds import SITE_DESCRIPTIONS
from ...printing.escape import visible_token
from ...printing.latex import latex
from ...results.patching import PatchExplanation, Patching
from ...verify import worst
from .. import numbers
from ..document import (
    Bar,
    Block,
    Cell,
    Code,
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
    Text,
    Verification,
    Waterfall,
)
from ..registry import document
from .common import model_line, tokens
from .lens import centre, read


def position_label(strings: tuple[str, ...], position: int) -> str:
    """Seed 003's ``<token>_<position>`` (a token of spaces alone shows them as ``␣``; a
    long one is cut, so that the labels of a heatmap's columns stay apart)."""
    token = strings[position]
    text = token.strip() or visible_token(token)
    return f"{text[:7] + '..' if len(text) > 9 else text}_{position}"


def pair_text(clean: str, corrupted: str) -> str:
    """The clean prompt with each word the corrupted one replaces written ``clean→corrupted``
    (``Dublin→Paris is the capital city of``); both in full where the words do not line up."""
    a, b = clean.split(" "), corrupted.split(" ")
    if len(a) != len(b):
        return f"{clean} → {corrupted}"
    return " ".join(x if x == y else f"{x}→{y}" for x, y in zip(a, b, strict=True))


def explanation_blocks(e: PatchExplanation, style: Style, figure: str) -> tuple[Block, ...]:
    """The cell's effect as an exact sum: the identity, the numbers, the terms by |change|
    (a table that adds up) and a waterfall."""
    digits = 4
    m = e.model
    change = centre(r"t_{i}^{\prime} - t_{i}", m)
    before = centre("t_{i}", m)
    identity = (
        rf"\ell^{{\prime}} - \ell &= \sqrt{{\stN}}\thinspace \stScale^{{\prime}} \sum_{{i}} "
        rf"\stInner{{{read(m)}}}{{{change}}}",
        rf"&\quad + \sqrt{{\stN}}\left(\stScale^{{\prime}} - \stScale\right) \sum_{{i}} "
        rf"\stInner{{{read(m)}}}{{{before}}}",
    )
    numbers_ = (
        rf"\ell^{{\prime}} - \ell &= {numbers.tex(e.direct_part, digits)} "
        rf"{numbers.signed_tex(e.downstream, digits)} {numbers.signed_tex(e.scale_change, digits)}",
        rf"&= {numbers.tex(e.total, 12)}",
    )
    order = np.argsort(-np.abs(e.deltas), kind="stable")
    shown, rest = order[: style.top_k], order[style.top_k :]
    token = e.token_strings[e.destination]
    rows: list[tuple[Cell, ...]] = []
    bars: list[Bar] = []
    running = 0.0
    for rank, i in enumerate(shown, start=1):
        label = e.labels[i]
        symbol = latex(ex.term_node(label, e.destination, token), use_macros=True)
        role = "direct" if label == e.direct else "downstream"
        value = float(e.deltas[i])
        rows.append((rank, str(label), symbol, role, value))
        bars.append(Bar(str(label), running, running + value, _kind(value)))
        running += value
    if len(rest):
        other = float(np.sum(e.deltas[rest]))
        rows.append((None, Plain(f"other {len(rest)} terms"), None, None, other))
        bars.append(Bar(f"other {len(rest)} terms", running, running + other, _kind(other)))
        running += other
    rows.append(
        (
            None,
            Plain("the final norm's scale"),
            r"\stScale \to \stScale^{\prime}",
            None,
            e.scale_change,
        )
    )
    bars.append(Bar("scale", running, running + e.scale_change, _kind(e.scale_change)))
    rows.append((None, Plain("total"), None, None, e.total))
    bars.append(Bar("total", 0.0, e.total, "total"))
    table = Table(
        (
            Column("#", "int"),
            Column("term", "code"),
            Column("symbol", "math"),
            Column("part", "text"),
            Column("change"),
        ),
        tuple(rows),
        rules_after=(len(shown) - 1, len(rows) - 2),
        strong_rows=(len(rows) - 1,),
    )
    where: Text = (
        "Terms ",
        Math("t_{i}"),
        f" of the {e.split!r} split at the destination (position {e.destination}) in the "
        "corrupted run and ",
        Math(r"t_{i}^{\prime}"),
        " in the patched one, ",
        Math(r"\stScale"),
        " and ",
        Math(r"\stScale^{\prime}"),
        f" the final norm's frozen scale in each, every quantity averaged over the {e.count} "
        "pairs; the constant ",
        Math(r"\stInner{\stBeta}{\stDir} + b_{U}" if m.has_beta else "b_{U}"),
        " is the same in both runs and cancels. The patched component is one whole term (",
        Code(str(e.direct)),
        "); the terms before it are the corrupted run's in both runs and change by zero.",
    )
    return (
        Paragraph(where),
        Equation(identity, ("The effect of the cell, exactly:",)),
        Equation(numbers_, ("direct part, downstream terms, scale change:",)),
        table,
        Figure(
            Waterfall(bars=tuple(bars), xlabel="change of the metric (running sum)"),
            f"What moved the metric when {e.cell} was patched.",
            figure,
        ),
    )


def _kind(value: float) -> Literal["positive", "negative"]:
    return "positive" if value >= 0 else "negative"


def _explanation_title(e: PatchExplanation) -> str:
    return f"{e.cell}: effect {e.effect:+.4g}"


@document.register
def _(e: PatchExplanation, style: Style) -> Document:
    claim, verdict = worst(e)
    return Document(
        title=(f"Why patching {e.cell} moved the metric",),
        facts=(
            ("Model", (model_line(e.model),)),
            ("Cell", (Code(e.site), f" of block {e.layer}, " + _index_text(e))),
            ("Pairs", (f"{e.count}; first: “{e.clean_prompt}” / “{e.corrupted_prompt}”",)),
            ("Split", (Code(e.split),)),
        ),
        tokens=tokens(e.token_strings, e.destination),
        sections=(Section("The effect as an exact sum", explanation_blocks(e, style, "cell")),),
        verification=Verification(verdict, "sum of changes", "patching's effect", claim.subject),
        prompt=e.clean_prompt,
    )


def _index_text(e: PatchExplanation) -> str:
    return f"head {e.index}" if e.site == "z" else f"position {e.index}"


@document.register
def _(p: Patching, style: Style) -> Document:
    m = p.model
    n_layers = p.effects.shape[0]
    if p.site == "z":
        x_labels = tuple(str(h) for h in p.columns)
        xlabel = "head"
    else:
        x_labels = tuple(position_label(p.token_strings, q) for q in p.positions)
        xlabel = "position"
    values = p.values
    heatmap = Figure(
        Heatmap(
            values,
            xlabel,
            "layer",
            x_labels,
            tuple(str(layer) for layer in range(n_layers)),
            "(patched − corrupted) / (clean − corrupted)",
        ),
        _caption(p),
        "patching",
    )
    top = p.top(style.top_k)
    cells: list[tuple[Cell, ...]] = [
        (
            rank,
            layer,
            index,
            None if p.site == "z" else p.token_strings[index],
            value,
            effect,
        )
        for rank, (layer, index, value, effect) in enumerate(top, start=1)
    ]
    sections = [
        Section(
            "Patching, cell by cell",
            (
                Paragraph(_method(p)),
                Equation(
                    (
                        r"v_{l,k} &= \frac{m_{l,k} - m_{\mathrm{corrupted}}}{m_{\mathrm{clean}} - "
                        r"m_{\mathrm{corrupted}}}",
                        rf"m_{{\mathrm{{clean}}}} &= {numbers.tex(p.clean_metric, 6)}, \quad "
                        rf"m_{{\mathrm{{corrupted}}}} = {numbers.tex(p.corrupted_metric, 6)}",
                    ),
                    ("Each cell's value:",),
                ),
                heatmap,
            ),
        ),
        Section(
            "The largest cells",
            (
                Table(
                    (
                        Column("#", "int"),
                        Column("layer", "int"),
                        Column("head" if p.site == "z" else "position", "int"),
                        Column("token", "token"),
                        Column("normalised"),
                        Column("effect"),
                    ),
                    tuple(cells),
                ),
            ),
        ),
    ]
    for i, e in enumerate(p.explained):
        sections.append(
            Section(_explanation_title(e), explanation_blocks(e, style, f"cell-{i + 1}"), level=2)
        )
    n = min(p.count, 10)
    versus = p.versus[0] is not None and not style.narrow  # a paper column: no vs column
    sections.append(
        Section(
            f"The first {n} of {p.count} pairs",
            (
                Paragraph(("Each pair's clean prompt, its corrupted words after an arrow.",)),
                Table(
                    (
                        Column("pair", "text"),
                        Column("answer", "token"),
                        *((Column("vs", "token"),) if versus else ()),
                        Column("clean"),
                        Column("corrupted"),
                    ),
                    tuple(
                        (
                            pair_text(p.clean[i], p.corrupted[i]),
                            p.answers[i],
                            *((p.versus[i] or "",) if versus else ()),
                            float(p.clean_logits[i]),
                            float(p.corrupted_logits[i]),
                        )
                        for i in range(n)
                    ),
                ),
            ),
        )
    )
    claim, verdict = worst(p)
    return Document(
        title=_title(p),
        facts=(
            ("Model", (model_line(m),)),
            ("Site", (Code(p.site), f": {SITE_DESCRIPTIONS[p.site]}")),
            ("Direction", (p.direction,)),
            (
                "Metric",
                (
                    f"mean over {p.count} pairs at position {p.destination}: clean "
                    f"{p.clean_metric:.6g}, corrupted {p.corrupted_metric:.6g}",
                ),
            ),
        ),
        tokens=tokens(p.token_strings, p.destination),
        sections=tuple(sections),
        verification=Verification(
            verdict, "value", "reference", f"{claim.subject}: {claim.what} against {claim.against}"
        ),
        prompt=p.clean[0],
    )


def _title(p: Patching) -> Text:
    return ("Activation patching of ", Code(p.site), f" over {p.count} prompt pairs")


def _caption(p: Patching) -> str:
    what = {
        "resid_pre": "the residual stream",
        "attn_out": "the attention output",
        "mlp_out": "the MLP output",
        "z": "each head's output (z)",
    }[p.site]
    return f"Logit difference recovered by patching {what} (normalised)."


def _method(p: Patching) -> Text:
    cell = "one head's z at every position" if p.site == "z" else f"{p.site} at one position"
    return (
        f"Each cell is the corrupted prompts' run with {cell} of one block taken from the "
        f"clean prompts' run; m is the mean over the {p.count} pairs of the logit "
        f"({p.direction}) at the last position, read from the model's own forward pass. "
        "Every cell resumes the corrupted run at its block and its first patched position "
        "(the earlier positions keep the corrupted run's keys and values: no patch reaches "
        "them); resuming it with nothing patched gives the corrupted metric"
        + (", and patching every position gives the clean one" if p.full is not None else "")
        + " (the checks below).",
    )
