"""The report of a projection: each source's write split along its direction, and the logit
and loss when the head writes only part of its output."""

from __future__ import annotations

from ...results.projection import Projection
from ...verify import worst
from .. import numbers
from ..document import (
    Column,
    Document,
    Equation,
    Math,
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
    # one column of a paper: the kept sources are named in the text, not in a column
    kept_column = not style.narrow
    sources = tuple(
        (s.position, s.token, s.attention, s.coefficient)
        + (("yes" if s.kept else "no",) if kept_column else ())
        + (s.parallel, s.perpendicular)
        for s in pr.sources
    )
    kept = [str(s.position) for s in pr.sources if s.kept]
    effects = tuple(
        (name, e.logit, e.logit_renormalized, e.loss, e.loss_renormalized)
        for name, e in (
            ("the model (nothing removed)", pr.full),
            ("only the parts along the directions", pr.projection_only),
            ("only the rest", pr.perpendicular_only),
            (f"{h} ablated", pr.ablated),
        )
    )
    source_write = rf"\stHeadSrc{{{h.layer}}}{{{h.head}}}{{{d.position}}}{{s}}"
    claim, check = worst(pr)
    return Document(
        title=(f"Projection of {h} at position {d.position}",),
        facts=(
            ("Model", (model_line(d.model),)),
            ("Direction", direction_text(d.answer, d.vs)),
            ("Onto", (onto + (" (negative coefficients only)" if pr.only_negative else ""),)),
            (
                "Head term",
                (
                    f"{numbers.text(pr.head_value, 6)} = {numbers.text(pr.parallel, 6)} (along "
                    f"the directions) + {numbers.text(pr.perpendicular, 6)} (the rest)",
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
                            "Each source's write ",
                            Math(rf"r_{{s}} = {source_write}"),
                            " is split into its part along ",
                            Math("e_{s}"),
                            " (coefficient ",
                            Math("c_{s}"),
                            ") and the rest; both are read as every term is, through the final "
                            "norm with its scale ",
                            Math(r"\stScale"),
                            " frozen."
                            + (
                                ""
                                if kept_column
                                else " Kept (along the directions only): source"
                                + ("s " if len(kept) != 1 else " ")
                                + (", ".join(kept) or "none")
                                + "."
                            ),
                        )
                    ),
                    Equation(
                        (
                            r"r_{s} &= c_{s} e_{s} + \left(r_{s} - c_{s} e_{s}\right), \quad "
                            r"c_{s} = \frac{\stInner{r_{s}}{e_{s}}}{\stNormSq{e_{s}}}",
                        )
                    ),
                    Table(
                        (
                            Column(Math("s"), "int"),
                            Column("token", "token"),
                            Column(Math(rf"A_{{{d.position},s}}^{{({h.layer},{h.head})}}")),
                            Column(Math("c_{s}")),
                        )
                        + ((Column("kept", "text"),) if kept_column else ())
                        + (Column(Math(r"\text{along } e_{s}")), Column("rest")),
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
        # the claim's own text names x^L_p in plain letters; the report says it in words
        verification=Verification(
            check, claim.what.replace("x^L_p", "the final residual"), claim.against
        ),
        prompt=d.prompt,
    )
