"""The report of a logit lens: the exact lens equation, a table and a line plot of the value
read from every prefix of the residual, and the last entry against the model's logit."""

from __future__ import annotations

import numpy as np

from ... import expression as ex
from ...kinds import NormKind
from ...printing.latex import latex
from ...results.lens import LogitLens
from ...results.model import ModelInfo
from ...verify import worst
from ..document import (
    Column,
    Document,
    Equation,
    Figure,
    LinePlot,
    Paragraph,
    Section,
    Style,
    Table,
    Verification,
)
from ..registry import document
from .common import direction_text, model_line, tokens


def centre(x: str, model: ModelInfo) -> str:
    """``c(x)`` for LayerNorm models, ``x`` for RMSNorm (macro form)."""
    return rf"\stCenter{{{x}}}" if model.norm is NormKind.LAYER else x


def read(model: ModelInfo) -> str:
    return r"\stGamma \odot u" if model.has_gamma else "u"


def constant(model: ModelInfo) -> str:
    return (r"\stInner{\stBeta}{u} + " if model.has_beta else "") + "b_U"


@document.register
def _(ll: LogitLens, style: Style) -> Document:
    m, p = ll.model, ll.position
    x_l = rf"\stResid{{l}}{{{p}}}"
    math = (
        rf"\ell^{{(l)}} &= \sqrt{{\stN}}\, \stScale_{{l}} \stInner{{{read(m)}}}"
        rf"{{{centre(x_l, m)}}} + {constant(m)}",
        rf"\stScale_{{l}} &= \frac{{1}}{{\sqrt{{\stNormSq{{{centre(x_l, m)}}} + \stN \stEps}}}}",
        latex(ex.direction_equation(ll.answer, ll.vs), use_macros=style.use_macros).replace(
            " = ", " &= ", 1
        ),
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
    claim, check = worst(ll)
    return Document(
        title=(f"Logit lens of {direction_text(ll.answer, ll.vs)} after {ll.prompt!r}",),
        facts=(("Model", (model_line(m),)), ("Position", (str(p),))),
        tokens=tokens(ll.token_strings, p),
        sections=(
            Section(
                "The lens, exact",
                (
                    Paragraph(
                        (
                            "Entry l reads the residual stream after the embedding (l = 0) and "
                            "after each block through the final norm with its own scale; nothing "
                            "is approximated, and the last entry is the model's own logit.",
                        )
                    ),
                    Equation(math),
                ),
            ),
            Section(
                "Values",
                (
                    Paragraph(
                        ("change: what the block added to the lens value (under the new scale).",)
                    ),
                    Table(columns, rows),
                    Figure(
                        LinePlot(
                            x_labels=ll.labels,
                            series=(("lens", tuple(float(v) for v in ll.values)),),
                            xlabel="residual stream after",
                            ylabel="logit" if ll.vs is None else "logit difference",
                            reference=ll.model_logit,
                            reference_label="model's logit",
                        ),
                        "The logit read from each prefix of the residual stream.",
                        "lens-1",
                    ),
                ),
            ),
        ),
        verification=Verification(check, "last entry", "model logit"),
        prompt=ll.prompt,
    )
