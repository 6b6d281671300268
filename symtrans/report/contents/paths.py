"""The report of a path expansion: the head's term as a sum of paths, the largest paths with
their symbolic form, and the paths against the head's term."""

from __future__ import annotations

from collections.abc import Sequence

from ...kinds import NormKind
from ...results.paths import Path, PathExpansion
from ...verify import worst
from ..document import (
    Cell,
    Column,
    Document,
    Equation,
    Math,
    Paragraph,
    Plain,
    Section,
    Style,
    Table,
    Verification,
)
from ..layout import break_sum
from ..registry import document
from .common import direction_text, tokens
from .scores import symbol


def path_symbol(path: Path, strings: Sequence[str]) -> str:
    """``t(s0) → H^{l1,h1}_{s1} → ... → H^{l,h}_p``: a path's source term at its position,
    then every head it passes through at the position it writes to (macro form)."""
    nodes, positions = path.nodes, path.positions
    parts = [symbol(nodes[0], positions[0], strings[positions[0]])]
    for node, q in zip(nodes[1:], positions[1:], strict=True):
        parts.append(rf"\stHead{{{node.layer}}}{{{node.head}}}{{{q}}}")  # type: ignore[union-attr]
    return r" \to ".join(parts)


@document.register
def _(pe: PathExpansion, style: Style) -> Document:
    top_k = style.top_k
    strings = pe.token_strings
    magnitude = float(sum(abs(path.value) for path in pe.paths)) or 1.0
    rows: list[tuple[Cell, ...]] = []
    running = 0.0
    share = not style.narrow  # one column of a paper: no cumulative share
    for rank, path in enumerate(pe.paths[:top_k], start=1):
        running += abs(path.value)
        label: tuple[Cell, ...] = () if style.narrow else ("->".join(map(str, path.nodes)),)
        rows.append(
            (rank,)
            + label
            + (
                path_symbol(path, strings),
                " → ".join(str(q) for q in path.positions),
                path.value,
            )
            + ((running / magnitude,) if share else ())
        )
    rest = pe.paths[top_k:]
    blank: tuple[Cell, ...] = (None,) if share else ()
    gap: tuple[Cell, ...] = () if style.narrow else (None,)
    if rest:
        other = sum(p.value for p in rest)
        rows.append((None, Plain(f"other {len(rest)} paths")) + gap + (None, other) + blank)
    rows.append((None, Plain("total")) + gap + (None, pe.total) + blank)
    # one column of a paper: the symbolic form names the path (no label column, no share)
    columns = (
        (Column("#", "int"),)
        + (() if style.narrow else (Column("path", "code"),))
        + (
            Column("symbolic form", "math"),
            Column("positions", "text"),
            Column("contribution"),
        )
        + ((Column("cumulative share", "percent"),) if share else ())
    )
    h = pe.head
    read_out = r"\stGamma \odot \stDir"

    def centre(x: str) -> str:
        return rf"\stCenter{{{x}}}" if pe.norm is NormKind.LAYER else x

    head = rf"\stHead{{{h.layer}}}{{{h.head}}}{{{pe.position}}}"
    ln_frozen = r"\mathop{\mathrm{LN}}\nolimits_{1,s}^{(l)}\left(x\right)"
    claim, check = worst(pe)
    return Document(
        title=(f"Paths into {h} at position {pe.position}",),
        facts=(
            ("Direction", direction_text(pe.answer, pe.vs)),
            ("Depth", (f"{pe.depth} (heads per path, the expanded one included)",)),
            ("Paths", (str(len(pe.paths)),)),
        ),
        tokens=tokens(strings, pe.position),
        sections=(
            Section(
                "The head's term as a sum of paths",
                (
                    Paragraph(
                        (
                            "With every attention pattern and first-norm scale frozen at its "
                            "value, a head's output is linear in the residual entering its block, "
                            "so its direct contribution to the logit (read as every term is, "
                            "through the final norm with its scale ",
                            Math(r"\stScale"),
                            " frozen) is an exact sum over paths: a source term ",
                            Math(r"t_{s_{0}}"),
                            " at position ",
                            Math("s_{0}"),
                            " carried by heads, each moving it from one position to the next, "
                            "to the destination (",
                            Math(r"\stScale_{1,s}^{(l)}"),
                            ": the frozen scale of block ",
                            Math("l"),
                            "'s first norm at position ",
                            Math("s"),
                            ").",
                        )
                    ),
                    Equation(
                        tuple(
                            break_sum(
                                rf"\sqrt{{\stN}}\thinspace\stScale \stInner{{{read_out}}}"
                                rf"{{{centre(head)}}}",
                                [
                                    r"\sum_{\text{paths}} \sqrt{\stN}\thinspace\stScale "
                                    rf"\stInner{{{read_out}}}"
                                    "{" + centre(r"t_{s_{0}} \Omega_{1} \cdots \Omega_{k}") + "}"
                                ],
                                style.width,
                            )
                        )
                        + (
                            r"\Omega_{q,s}^{(l,h)}\thinspace x &= A_{q,s}^{(l,h)}\thinspace "
                            + ln_frozen
                            + r" W_{V}^{(l,h)} W_{O}^{(l,h)},",
                            ln_frozen + r" &= \sqrt{\stN}\thinspace"
                            r"\stScale_{1,s}^{(l)}\thinspace \stGamma_{1}^{(l)} \odot "
                            + centre("x"),
                        )
                    ),
                ),
            ),
            Section(
                "Largest paths",
                (
                    Table(
                        columns,
                        tuple(rows),
                        rules_after=(min(top_k, len(pe.paths)) - 1, len(rows) - 2),
                        strong_rows=(len(rows) - 1,),
                    ),
                ),
            ),
        ),
        verification=Verification(check, "sum of paths", f"{h}'s term (from the model's own z)"),
    )
