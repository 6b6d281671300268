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
    Math,
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
    """The read-out: ``γ ⊙ u`` (``u`` for a norm without a scale)."""
    return r"\stGamma \odot \stDir" if model.has_gamma else r"\stDir"


def constant(model: ModelInfo) -> str:
    """``<β, u> + b_U`` (``b_U`` for a norm without a bias)."""
    return (r"\stInner{\stBeta}{\stDir} + " if model.has_beta else "") + "b_{U}"


@document.register
def _(ll: LogitLens, style: Style) -> Document:
    m, p = ll.model, ll.position
    x_l = rf"\stResid{{l}}{{{p}}}"
    math = (
        rf"\ell^{{(l)}} &= \sqrt{{\stN}}\thinspace \stScale_{{l}} \stInner{{{read(m)}}}"
        rf"{{{centre(x_l, m)}}} + {constant(m)}",
        rf"\stScale_{{l}} &= \frac{{1}}{{\sqrt{{\stNormSq{{{centre(x_l, m)}}} + \stN \stEps}}}}",
        latex(ex.direction_equation(ll.answer, ll.vs), use_macros=True).replace(" = ", " &= ", 1),
    )
    change = np.diff(ll.values)
    # the table shows the scale the equation uses: lambda_l = 1 / (sqrt(N) sigma(x^l_p))
    lambdas = 1.0 / (np.sqrt(m.d_model) * np.asarray(ll.scales, dtype=float))
    rows = tuple(
        (
            label,
            rf"\stResid{{{i}}}{{{p}}}",
            float(v),
            None if i == 0 else float(change[i - 1]),
            float(lam),
        )
        for i, (label, v, lam) in enumerate(zip(ll.labels, ll.values, lambdas, strict=True))
    )
    columns = (
        Column("residual after", "code"),
        Column("symbol", "math"),
        Column("logit" if ll.vs is None else "logit difference"),
        Column("change"),
        Column(Math(r"\stScale_{l}")),
    )
    claim, check = worst(ll)
    return Document(
        title=("Logit lens of ", *direction_text(ll.answer, ll.vs), f" after “{ll.prompt}”"),
        facts=(("Model", (model_line(m),)), ("Position", (str(p),))),
        tokens=tokens(ll.token_strings, p),
        sections=(
            Section(
                "The lens, exact",
                (
                    Paragraph(
                        (
                            "Entry ",
                            Math("l"),
                            " reads the residual stream after the embedding (",
                            Math("l = 0"),
                            ") and after each block through the final norm with its own scale ",
                            Math(r"\stScale_{l}"),
                            "; nothing is approximated, and the last entry is the model's own "
                            "logit.",
                        )
                    ),
                    Equation(math),
                ),
            ),
            Section(
                "Values",
                (
                    Paragraph(
                        (
                            "Change: what block ",
                            Math("l"),
                            " added to the lens value (each entry under its own scale).",
                        )
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
