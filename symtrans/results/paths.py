"""A head's term as a sum of paths through its value input (built by
:func:`symtrans.expand_head`)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import labels as lb
from ..kinds import NormKind
from .base import Result
from .claims import Claim

PATH_ATOL = 1e-10  # float64 LayerNorm: the paths add up to the head's term to this


@dataclass(frozen=True)
class Path:
    """One path to the logit: ``nodes[0] → ... → nodes[-1]`` (the expanded head last), each
    read at ``positions[i]`` (the last is the destination ``p``), and its contribution."""

    nodes: tuple[lb.PathNode, ...]
    positions: tuple[int, ...]
    value: float

    def __str__(self) -> str:
        steps = " → ".join(f"{n}@{s}" for n, s in zip(self.nodes, self.positions, strict=True))
        return f"{steps} → logit: {self.value:+.6g}"


@dataclass(frozen=True, eq=False)
class PathExpansion(Result):
    """A head's logit term as a sum of paths, largest ``|value|`` first."""

    head: lb.HeadOut
    position: int
    depth: int
    paths: tuple[Path, ...]
    head_value: float  # the head's term <z_p W_O, w>/σ, from the model's own z
    token_strings: tuple[str, ...] = ()
    answer: str = ""
    vs: str | None = None
    dtype: str = "float64"  # the model's
    norm: NormKind = NormKind.LAYER
    float32_norms: bool = False  # Hugging Face computes the norms in float32

    @property
    def total(self) -> float:
        return float(sum(p.value for p in self.paths))

    @property
    def error(self) -> float:
        """``Σ paths - head_value``: zero up to rounding."""
        return self.total - self.head_value

    def top(self, k: int) -> tuple[Path, ...]:
        return self.paths[:k]

    def claims(self) -> tuple[Claim, ...]:
        return (
            Claim(
                subject=f"{self.head} at position {self.position}",
                what=f"the {len(self.paths)} paths",
                value=self.total,
                against="the head's term (from the model's own z)",
                reference=self.head_value,
                magnitude=float(sum(abs(p.value) for p in self.paths)),
                dtype=self.dtype,
                norm=self.norm,
                float32_norms=self.float32_norms,
                floor=PATH_ATOL,
            ),
        )

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`verify`: ``PATH_ATOL``, or the documented one of
        the model's dtype and norm (:mod:`symtrans.verify`) where that is larger."""
        from ..verify import tolerance

        return tolerance(self.claims()[0])

    def __repr__(self) -> str:
        return (
            f"PathExpansion({self.head}, position={self.position}, depth={self.depth}, "
            f"{len(self.paths)} paths, total={self.total:.6g}, head={self.head_value:.6g})"
        )
