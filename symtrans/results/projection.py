"""A head's output split along the unembedding of what it attends to (built by
:func:`symtrans.project`; seed 001's ``project``)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .. import labels as lb
from ..errors import InvalidArgumentError
from .base import Result
from .claims import Claim
from .decomposition import Decomposition


@dataclass(frozen=True)
class SourcePart:
    """What the head carries from one source position, split along its direction."""

    position: int  # s
    token: str  # the token at s
    attention: float  # A_{p,s}
    coefficient: float  # c_s = <r_s, e_s> / |e_s|²
    kept: bool  # whether c_s e_s is in the parallel part (False: c_s ≥ 0 with only_negative)
    parallel: float  # contribution to the logit of the kept parallel part, <., w>/σ
    perpendicular: float  # contribution of the rest, r_s minus the kept parallel part


@dataclass(frozen=True)
class Effect:
    """The logit of the decomposition's direction and the loss (cross-entropy of its answer)
    at ``p`` for one final residual, with the frozen and the recomputed scale."""

    logit: float
    loss: float
    logit_renormalized: float
    loss_renormalized: float


def head_indices(d: Decomposition, head: lb.HeadOut) -> list[int]:
    """Where the head's term is in ``d``: its ``HeadOut``, or its ``HeadSource`` per source."""
    spots = [
        i
        for i, label in enumerate(d.labels)
        if label == head
        or (
            isinstance(label, lb.HeadSource)
            and (label.layer, label.head) == (head.layer, head.head)
        )
    ]
    if not spots:
        raise InvalidArgumentError(
            f"{head}'s output is not a term of this decomposition (split={d.split!r}); a "
            "projection splits a head's term, which the 'heads' split has whole and the "
            f"'positions' split by source. Decompose with split='heads' and call "
            f"d.project(model, {str(head)!r})"
        )
    return spots


@dataclass(frozen=True, eq=False)
class Projection(Result):
    """A head's term of ``base`` split into parallel and perpendicular parts, per source."""

    head: lb.HeadOut
    onto: str  # "source", the token's text, or "vector"
    only_negative: bool
    sources: tuple[SourcePart, ...]
    head_value: float  # the head's term in ``base``
    full: Effect  # the model itself: x^L_p
    projection_only: Effect  # x^L_p - H + P
    perpendicular_only: Effect  # x^L_p - H + Q
    ablated: Effect  # x^L_p - H
    base: Decomposition  # the decomposition the head's term was taken from

    @property
    def parallel(self) -> float:
        """``<P, w>/σ``: the parallel parts' contribution to the logit."""
        return float(sum(s.parallel for s in self.sources))

    @property
    def perpendicular(self) -> float:
        """``<Q, w>/σ``."""
        return float(sum(s.perpendicular for s in self.sources))

    @property
    def error(self) -> float:
        """``parallel + perpendicular - head_value``: zero up to rounding."""
        return self.parallel + self.perpendicular - self.head_value

    def claims(self) -> tuple[Claim, ...]:
        """The parts add up to the head's term, and the full residual read through the final
        norm gives the model's logit (both at ``base``'s tolerance)."""
        d = self.base

        def claim(what: str, value: float, against: str, reference: float) -> Claim:
            return Claim(
                subject=f"{self.head} at position {d.position}",
                what=what,
                value=value,
                against=against,
                reference=reference,
                magnitude=d.magnitude,
                dtype=d.model.dtype,
                norm=d.model.norm,
                float32_norms=d.model.float32_norms,
            )

        return (
            claim(
                "the parallel and perpendicular parts",
                self.parallel + self.perpendicular,
                "the head's term",
                self.head_value,
            ),
            claim(
                "the logit recomputed from x^L_p",
                self.full.logit_renormalized,
                "the model's logit",
                d.model_logit,
            ),
        )

    @cached_property
    def decomposition(self) -> Decomposition:
        """``base`` with the head's term(s) replaced by ``Parallel(head)`` and
        ``Perpendicular(head)``: the same total."""
        spots = head_indices(self.base, self.head)
        labels: list[lb.Label] = []
        values: list[float] = []
        for i, (label, value) in enumerate(zip(self.base.labels, self.base.values, strict=True)):
            if i == spots[0]:
                labels += [lb.Parallel(self.head), lb.Perpendicular(self.head)]
                values += [self.parallel, self.perpendicular]
            elif i not in spots:
                labels.append(label)
                values.append(float(value))
        return replace(self.base, labels=tuple(labels), values=np.array(values, dtype=np.float64))

    def __repr__(self) -> str:
        return (
            f"Projection({self.head}, onto={self.onto!r}, only_negative={self.only_negative}, "
            f"parallel={self.parallel:.6g}, perpendicular={self.perpendicular:.6g}, "
            f"head={self.head_value:.6g})"
        )
