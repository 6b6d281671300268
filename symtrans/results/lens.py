"""The logit lens, exact (built by :func:`symtrans.logit_lens`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Result
from .claims import Claim
from .model import ModelInfo


@dataclass(frozen=True, eq=False)
class LogitLens(Result):
    """Entry ``l`` reads the residual after the embedding (``l = 0``) and after each block
    through the final norm with its own scale; the last entry is the model's logit."""

    prompt: str
    answer: str
    vs: str | None
    position: int
    labels: tuple[str, ...]  # "embed", "0_resid_post", ...
    values: np.ndarray  # [n_layers + 1]
    model_logit: float
    model: ModelInfo
    token_strings: tuple[str, ...]
    scales: np.ndarray  # [n_layers + 1]: σ(x^l_p), each prefix's own scale
    constant: float  # <β, u> + b_U

    @property
    def error(self) -> float:
        """The last entry minus the model's logit: zero up to rounding."""
        return float(self.values[-1]) - self.model_logit

    def claims(self) -> tuple[Claim, ...]:
        last = float(self.values[-1])
        return (
            Claim(
                subject=f"the logit lens of prompt {self.prompt!r} at position {self.position}",
                what="the last entry",
                value=last,
                against="the model's logit",
                reference=self.model_logit,
                magnitude=abs(last - self.constant) + abs(self.constant),
                dtype=self.model.dtype,
                norm=self.model.norm,
                float32_norms=self.model.float32_norms,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"LogitLens({self.prompt!r}, answer={self.answer!r}, vs={self.vs!r}, "
            f"{len(self.values)} entries, last={float(self.values[-1]):.6g}, "
            f"model_logit={self.model_logit:.6g})"
        )
