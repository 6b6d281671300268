"""The report of a projection: each source's write split along its direction, and the logit
and loss when the head writes only part of its output."""

from __future__ import annotations

from ...results.projection import Projection
from ...verify import worst
from ..document import (
    Column,
    Document,
    Equation,
    Paragraph,
    Section,
    Style,
    Table,
    Verification,
)
from ..registry import document
from .common import direction_text, model_line, tokens


@document.register
def _(pr: Projection, style: Style) -> Document:
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
    claim, check = worst(pr)
    return Document(
        title=(f"Projection of {h} at position {d.position}",),
        facts=(
            ("Model", (model_line(d.model),)),
            ("Direction", (direction_text(d.answer, d.vs),)),
            ("Onto", (onto + (" (negative coefficients only)" if pr.only_negative else ""),)),
            (
                "Head term",
                (
                    f"{pr.head_value:.6g} = parallel {pr.parallel:.6g} + perpendicular "
                    f"{pr.perpendicular:.6g}",
                ),
            ),
        ),
        tokens=tokens(d.token_strings, d.position),
        sections=(
            Section(
                "Per source position",
                (
                    Paragraph(
                        (
                            "Each source's write r_s = A_{p,s} v_s W_O is split into its part "
                            "along e_s (coefficient c_s = <r_s, e_s>/|e_s|^2) and the rest; both "
                            "read through the final norm with its scale frozen.",
                        )
                    ),
                    Equation(
                        (
                            r"r_s &= c_s e_s + (r_s - c_s e_s), \quad "
                            r"c_s = \frac{\stInner{r_s}{e_s}}{\stNormSq{e_s}}",
                        )
                    ),
                    Table(
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
            ),
            Section(
                "Logit and loss when the head writes only part of its output",
                (
                    Paragraph(
                        (
                            "Direct effect: the final residual is changed and read through the "
                            "final norm with its scale frozen, or recomputed from the changed "
                            "residual; loss is the cross-entropy of the answer at this position.",
                        )
                    ),
                    Table(
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
        ),
        verification=Verification(check, claim.what, claim.against),
        prompt=d.prompt,
    )
