"""A decomposition over a dataset: every prompt's logit (difference) as an exact sum, and the
mean ± standard deviation of each term over the prompts (built by
:func:`symtrans.decompose_dataset`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..labels import Label
from .base import Result
from .claims import Claim
from .model import ModelInfo

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, eq=False)
class DatasetDecomposition(Result):
    """Mean and spread of every term of a split over many prompts.

    ``mean`` and ``std`` are ``[terms]``; per prompt, ``totals``, ``model_logits`` and
    ``magnitudes`` (``Σ|terms| + |constant|``, what its tolerance scales with) are ``[count]``
    (kept even when streaming) and ``values`` is ``[count, terms]`` with ``keep_values=True``,
    ``None`` otherwise."""

    model: ModelInfo
    split: str
    labels: tuple[Label, ...]
    count: int
    mean: np.ndarray  # [terms]
    std: np.ndarray  # [terms]
    constant_mean: float  # mean of <β, u> + b_U
    constant_std: float
    totals: np.ndarray  # [count]
    model_logits: np.ndarray  # [count]
    magnitudes: np.ndarray  # [count]
    values: np.ndarray | None  # [count, terms]
    examples: tuple[tuple[str, str, str | None], ...]  # the first few (prompt, answer, vs)
    roundings: np.ndarray | None = None  # [count]: each prompt's rounding (low precision)
    # Every prompt's (prompt, answer, vs, position), kept with the values (keep_values=True).
    items: tuple[tuple[str, str, str | None, int], ...] | None = None

    @property
    def total_mean(self) -> float:
        """``Σ_i mean_i + mean constant``: equals the mean of the model's logits."""
        return float(np.sum(self.mean) + self.constant_mean)

    @property
    def model_logit_mean(self) -> float:
        return float(np.mean(self.model_logits))

    @property
    def max_error(self) -> float:
        """The largest ``|Σ terms − model logit|`` over the prompts."""
        return float(np.max(np.abs(self.totals - self.model_logits)))

    def to_pandas(self) -> pd.DataFrame:
        """A tidy frame: one row per prompt and term (and each prompt's constant, ``bias``);
        needs the values (``keep_values=True``) and the ``symtrans[data]`` extra."""
        from .frames import dataset_frame

        return dataset_frame(self)

    def top(self, k: int) -> list[tuple[Label, float, float]]:
        """``(label, mean, std)`` of the ``k`` terms of largest ``|mean|``."""
        order = np.argsort(-np.abs(self.mean), kind="stable")[:k]
        return [(self.labels[i], float(self.mean[i]), float(self.std[i])) for i in order]

    def claims(self) -> tuple[Claim, ...]:
        """One per prompt: its terms add up to the model's logit (checked while streaming,
        so verifying only re-reads the record)."""
        return tuple(
            Claim(
                subject=f"prompt #{i} of the dataset",
                what="the terms",
                value=float(total),
                against="the model's logit",
                reference=float(logit),
                magnitude=float(magnitude),
                dtype=self.model.dtype,
                norm=self.model.norm,
                float32_norms=self.model.float32_norms,
                rounding=None if self.roundings is None else float(self.roundings[i]),
            )
            for i, (total, logit, magnitude) in enumerate(
                zip(self.totals, self.model_logits, self.magnitudes, strict=True)
            )
        )

    def __repr__(self) -> str:
        return (
            f"DatasetDecomposition({self.count} prompts, split={self.split!r}, "
            f"{len(self.labels)} terms, total_mean={self.total_mean:.6g}, "
            f"model_logit_mean={self.model_logit_mean:.6g}, max_error={self.max_error:.3g})"
        )
