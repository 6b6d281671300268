"""Activation patching (built by :func:`symtrans.patch`) and one cell's effect written as an
exact sum of terms (built by :meth:`Patching.explain`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError
from ..kinds import Site
from ..labels import Label
from .base import Result
from .claims import Claim
from .model import ModelInfo

if TYPE_CHECKING:
    from ..kinds import Split


def direction_text(answers: tuple[str, ...], versus: tuple[str | None, ...]) -> str:
    """``' Ireland' - ' France'`` for one direction, ``answer - vs (per pair)`` for many."""
    pairs = set(zip(answers, versus, strict=True))
    if len(pairs) > 1:
        return "answer − vs (each pair its own)" if versus[0] is not None else "each pair's answer"
    answer, vs = next(iter(pairs))
    return repr(answer) if vs is None else f"{answer!r} − {vs!r}"


@dataclass(frozen=True, eq=False)
class PatchExplanation(Result):
    """One patching cell's effect, ``patched − corrupted`` (the mean over the pairs of the
    logit or logit difference), as an exact sum under the final norm::

        effect = Σ_i mean <w, t'_i − t_i> / σ'  +  mean Σ_i <w, t_i> (1/σ' − 1/σ)

    ``t_i``/``t'_i``: term ``i`` of ``split`` at the destination in the corrupted/patched run,
    ``σ``/``σ'`` their frozen final-norm scales, ``w = c(γ⊙u)``. ``deltas[i]`` is the first
    sum's term ``i``: the patched component's own term (``direct``) and every term downstream
    of it; terms upstream are the corrupted run's in both and add zero. ``scale_change`` is
    the second sum: the same residual read under the new scale."""

    model: ModelInfo
    site: Site
    layer: int
    index: int  # the patched position (resid_pre, attn_out, mlp_out) or head (z)
    split: str
    labels: tuple[Label, ...]
    deltas: np.ndarray  # [terms]: mean <w, t'_i - t_i> / σ'
    scale_change: float  # mean Σ_i <w, t_i> (1/σ' - 1/σ)
    direct: Label  # the patched component's own term
    effect: float  # the patching's number: patched − corrupted metric
    destination: int  # the position the logits are read at
    count: int  # pairs
    clean_prompt: str  # the first pair's
    corrupted_prompt: str
    answer: str
    vs: str | None
    token_strings: tuple[str, ...]  # the first clean prompt's
    corrupted_token_strings: tuple[str, ...]
    scale: float  # mean σ over the pairs (corrupted)
    patched_scale: float  # mean σ' (patched)
    magnitude: (
        float  # mean over pairs of both runs' Σ|terms| + |constant|: what rounding scales with
    )

    @property
    def total(self) -> float:
        """``Σ deltas + scale_change``: equals :attr:`effect`."""
        return float(np.sum(self.deltas)) + self.scale_change

    @property
    def direct_part(self) -> float:
        """What the patched component's own term changes by, read under the new scale."""
        return float(self.deltas[self.labels.index(self.direct)])

    @property
    def downstream(self) -> float:
        """What every other term changes by (the patch reaching the logit through later
        components)."""
        return float(np.sum(self.deltas)) - self.direct_part

    @property
    def error(self) -> float:
        return self.total - self.effect

    @property
    def position(self) -> int | None:
        """The patched position (``None`` for ``z``: a head is patched at every position)."""
        return None if self.site == "z" else self.index

    @property
    def cell(self) -> str:
        """``resid_pre of block 3 at position 5`` or ``z of L3H2``."""
        if self.site == "z":
            return f"z of L{self.layer}H{self.index}"
        return f"{self.site} of block {self.layer} at position {self.index}"

    def top(self, k: int) -> list[tuple[Label, float]]:
        """The ``k`` terms of largest ``|delta|``, largest first."""
        order = np.argsort(-np.abs(self.deltas), kind="stable")[:k]
        return [(self.labels[i], float(self.deltas[i])) for i in order]

    def claims(self) -> tuple[Claim, ...]:
        return (
            Claim(
                subject=f"the patching cell {self.cell}",
                what=f"the changes of the {len(self.labels)} terms and of the scale",
                value=self.total,
                against="the patching's effect (patched − corrupted metric)",
                reference=self.effect,
                magnitude=self.magnitude,
                dtype=self.model.dtype,
                norm=self.model.norm,
                float32_norms=self.model.float32_norms,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"PatchExplanation({self.cell}, split={self.split!r}, direct={self.direct_part:.6g}, "
            f"downstream={self.downstream:.6g}, scale={self.scale_change:.6g}, "
            f"total={self.total:.6g}, effect={self.effect:.6g})"
        )


@dataclass(frozen=True, eq=False)
class Patching(Result):
    """Seed 003's activation patching: for every block and position (or head), the corrupted
    prompts' metric with ``site`` of that block taken from the clean prompts.

    The metric is the mean over the pairs of the logit of the answer (minus that of vs) at
    the last position. ``effects[l, k]`` is ``patched − corrupted`` (``[n_layers,
    n_positions]``, or ``[n_layers, n_heads]`` for ``z``); :attr:`values` normalises it by
    ``clean − corrupted`` (0: nothing recovered, 1: the clean metric recovered)."""

    model: ModelInfo
    site: Site
    clean: tuple[str, ...]
    corrupted: tuple[str, ...]
    answers: tuple[str, ...]
    versus: tuple[str | None, ...]
    token_strings: tuple[str, ...]  # the first clean prompt's (the heatmap's columns)
    corrupted_token_strings: tuple[str, ...]
    positions: tuple[int, ...]  # the patched positions (for z: where each head is patched)
    destination: int  # where the logits are read: the last position
    effects: np.ndarray  # [n_layers, n_positions] or [n_layers, n_heads]
    clean_metric: float
    corrupted_metric: float
    clean_logits: np.ndarray  # [pairs]: each clean pair's logit (difference)
    corrupted_logits: np.ndarray  # [pairs]
    controls: np.ndarray  # [n_layers]: the corrupted run resumed at each block, nothing patched
    control_positions: tuple[int, ...]  # [n_layers]: the position each control resumed at
    full: np.ndarray | None  # [n_layers], resid_pre only: every position patched
    magnitude: float  # mean |logit| of answer and vs over the pairs: what rounding scales with
    explained: tuple[PatchExplanation, ...] = ()  # the largest cells, explained

    # -- numbers ---------------------------------------------------------------------------
    @property
    def difference(self) -> float:
        """``clean − corrupted``: what :attr:`values` are normalised by."""
        return self.clean_metric - self.corrupted_metric

    @property
    def values(self) -> np.ndarray:
        """``(patched − corrupted) / (clean − corrupted)``, the shape of :attr:`effects`."""
        return self.effects / self.difference

    @property
    def count(self) -> int:
        return len(self.clean)

    @property
    def direction(self) -> str:
        return direction_text(self.answers, self.versus)

    @property
    def columns(self) -> tuple[int, ...]:
        """What each column of :attr:`effects` is: a position, or a head for ``z``."""
        if self.site == "z":
            return tuple(range(self.effects.shape[1]))
        return self.positions

    def column(self, index: int) -> int:
        """The column of :attr:`effects` of a position (negative: from the end) or a head."""
        if self.site == "z":
            heads = self.effects.shape[1]
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < heads:
                raise InvalidArgumentError(
                    f"head {index!r} is not a head of this model; z was patched per head, "
                    f"0..{heads - 1}"
                )
            return index
        length = len(self.token_strings)
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidArgumentError(f"position must be an int, got {index!r}")
        position = index + length if index < 0 else index
        if position not in self.positions:
            raise InvalidArgumentError(
                f"position {index} was not patched: the prompts have {length} tokens and the "
                f"patched positions are {list(self.positions)}; pass one of them"
            )
        return self.positions.index(position)

    def top(self, k: int) -> list[tuple[int, int, float, float]]:
        """``(layer, position or head, value, effect)`` of the ``k`` cells of largest
        ``|effect|``, largest first."""
        flat = np.argsort(-np.abs(self.effects), axis=None, kind="stable")[:k]
        rows, cols = np.unravel_index(flat, self.effects.shape)
        values = self.values
        return [
            (int(r), self.columns[c], float(values[r, c]), float(self.effects[r, c]))
            for r, c in zip(rows, cols, strict=True)
        ]

    # -- the check -------------------------------------------------------------------------
    def claims(self) -> tuple[Claim, ...]:
        """Per block: the corrupted run resumed there (at the position
        :attr:`control_positions` says, the positions below it attended to through the
        corrupted run's keys and values) with nothing patched gives the corrupted prompts'
        own metric (so the cells start from the model's numbers);
        for ``resid_pre``, patching every position gives the clean prompts' own metric (so
        the patches land where they should). Then each explained cell's claim."""

        def claim(layer: int, what: str, value: float, against: str, reference: float) -> Claim:
            return Claim(
                subject=f"patching {self.site} at block {layer}",
                what=what,
                value=value,
                against=against,
                reference=reference,
                magnitude=self.magnitude,
                dtype=self.model.dtype,
                norm=self.model.norm,
                float32_norms=self.model.float32_norms,
            )

        out = [
            claim(
                layer,
                "the corrupted run resumed at this block"
                + (f" and position {start}" if start else "")
                + ", nothing patched",
                float(value),
                "the corrupted prompts' own metric",
                self.corrupted_metric,
            )
            for layer, (value, start) in enumerate(
                zip(self.controls, self.control_positions, strict=True)
            )
        ]
        if self.full is not None:
            out += [
                claim(
                    layer,
                    "the corrupted run with every position of resid_pre patched",
                    float(value),
                    "the clean prompts' own metric",
                    self.clean_metric,
                )
                for layer, value in enumerate(self.full)
            ]
        for e in self.explained:
            out += e.claims()
        return tuple(out)

    # -- analyses --------------------------------------------------------------------------
    def explain(
        self, layer: int, index: int, model: Any, split: Split = "heads"
    ) -> PatchExplanation:
        """Cell ``(layer, index)``'s effect as an exact sum: the patched component's own term,
        the change of every term downstream of it (by ``split``) and of the final norm's
        scale (see :func:`symtrans.analyses.patching.explain`). ``index``: a patched position,
        or a head for ``z``; ``model``: the one this patching came from."""
        from ..analyses.patching import explain

        return explain(model, self, layer, index, split=split)

    def __repr__(self) -> str:
        return (
            f"Patching(site={self.site!r}, {self.count} pairs, {self.direction}, "
            f"effects {self.effects.shape[0]}×{self.effects.shape[1]}, "
            f"clean={self.clean_metric:.6g}, corrupted={self.corrupted_metric:.6g})"
        )
