"""The report of a path expansion: the head's term as a sum of paths, the largest paths with
their symbolic form, and the paths against the head's term."""

from __future__ import annotations

from collections.abc import Sequence

from ...results.paths import Path, PathExpansion
from ...verify import worst
from ..document import (
    Cell,
    Column,
    Document,
    Equation,
    Paragraph,
    Plain,
    Section,
    Style,
    Table,
    Verification,
)
from ..registry import document
from .common import direction_text, tokens
from .scores import symbol


def path_symbol(path: Path, strings: Sequence[str], use_macros: bool = False) -> str:
    """``t(s0) → H^{l1,h1}_{s1} → ... → H^{l,h}_p``: a path's source term at its position,
    then every head it passes through at the position it writes to."""
    nodes, positions = path.nodes, path.positions
    parts = [symbol(nodes[0], positions[0], strings[positions[0]], use_macros)]
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
    for rank, path in enumerate(pe.paths[:top_k], start=1):
        running += abs(path.value)
        rows.append(
            (
                rank,
                "->".join(str(n) for n in path.nodes),
                path_symbol(path, strings, style.use_macros),
                " → ".join(str(q) for q in path.positions),
                path.value,
                running / magnitude,
            )
        )
    rest = pe.paths[top_k:]
    if rest:
        other = sum(p.value for p in rest)
        rows.append((None, Plain(f"other {len(rest)} paths"), None, None, other, None))
    rows.append((None, Plain("total"), None, None, pe.total, None))
    columns = (
        Column("#", "int"),
        Column("path", "code"),
        Column("symbolic form", "math"),
        Column("positions", "text"),
        Column("contribution"),
        Column("cumulative share", "percent"),
    )
    h = pe.head
    claim, check = worst(pe)
    return Document(
        title=(f"Paths into {h} at position {pe.position}",),
        facts=(
            ("Direction", (direction_text(pe.answer, pe.vs),)),
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
                            "so its direct contribution to the logit is an exact sum over paths: "
                            "a source term at position s0 carried by heads (each moving it from "
                            "one position to the next) to the destination.",
                        )
                    ),
                    Equation(
                        (
                            rf"\frac{{\stInner{{\stHead{{{h.layer}}}{{{h.head}}}{{{pe.position}}}}}"
                            rf"{{w}}}}{{\sigma}} &= \sum_{{\text{{paths}}}} "
                            rf"\frac{{\stInner{{t_{{s_0}} \Omega_{{1}} \cdots \Omega_{{k}}}}{{w}}}}"
                            rf"{{\sigma}}",
                            r"\Omega^{l,h}_{q,s}\, x &= A^{l,h}_{q,s}\, \frac{\gamma_1 \odot c(x)}"
                            r"{\sigma_{1,s}}\, W_V^{l,h} W_O^{l,h}",
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
                        rules_after=(min(top_k, len(pe.paths)) - 1,),
                        strong_rows=(len(rows) - 1,),
                    ),
                ),
            ),
        ),
        verification=Verification(check, "sum of paths", f"{h}'s term (from the model's own z)"),
    )
