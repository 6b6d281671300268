"""The final norm, kept exact as a frozen scale and a bias.

LayerNorm with ``N = d_model``, ``c(x) = x - mean(x)`` (a linear map), scale ``γ``, bias ``β``::

    LN(x) = γ ⊙ c(x) / σ(x) + β,    σ(x) = sqrt(|c(x)|² / N + ε)

so for a direction ``u`` the logit is ``Σ_i <γ⊙u, c(t_i)> / σ(x) + <β, u> + b_U``, with ``σ``
computed once from the whole residual. RMSNorm drops ``c`` and ``β``.

Because ``c`` is linear and self-adjoint, ``<γ⊙u, c(t)> = <c(γ⊙u), t>``: the read-out vector
is centred once and every term is a plain inner product with it (project first).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from jaxtyping import Float
from torch import Tensor

from .kinds import NormKind

__all__ = ["FinalNorm", "NormKind"]


@dataclass(frozen=True)
class FinalNorm:
    """The model's final norm. ``gamma``/``beta`` are ``None`` where the norm has none
    (folded weights, RMSNorm without bias)."""

    kind: NormKind
    eps: float
    d_model: int
    gamma: Tensor | None  # [d_model]
    beta: Tensor | None  # [d_model]

    def to(self, dtype: torch.dtype) -> FinalNorm:
        """The same norm with ``γ`` and ``β`` in ``dtype``."""
        return replace(
            self,
            gamma=None if self.gamma is None else self.gamma.to(dtype),
            beta=None if self.beta is None else self.beta.to(dtype),
        )

    def center(self, x: Tensor) -> Tensor:
        """``c(x)`` over the last axis: ``x - mean(x)`` for LayerNorm, ``x`` for RMSNorm."""
        if self.kind is NormKind.LAYER:
            return x - x.mean(dim=-1, keepdim=True)
        return x

    def scale(self, x: Tensor) -> Tensor:
        """``σ(x) = sqrt(|c(x)|²/N + ε)`` over the last axis: ``[..., d_model] -> [...]``."""
        c = self.center(x)
        return torch.sqrt(c.pow(2).sum(dim=-1) / self.d_model + self.eps)

    def apply(self, x: Float[Tensor, "*batch d_model"]) -> Float[Tensor, "*batch d_model"]:
        """``LN(x)`` or ``RMS(x)`` written out from the definition, each row under its own
        scale."""
        return self.frozen(x, self.scale(x).unsqueeze(-1))

    def frozen(
        self, x: Float[Tensor, "*batch d_model"], scale: Float[Tensor, "*batch 1"] | float
    ) -> Float[Tensor, "*batch d_model"]:
        """``γ ⊙ c(x)/σ + β`` with the scale ``σ`` given (frozen) rather than computed from
        ``x``."""
        y = self.center(x) / scale
        if self.gamma is not None:
            y = y * self.gamma
        if self.beta is not None:
            y = y + self.beta
        return y

    def read_vector(self, u: Tensor) -> Tensor:
        """The vector ``w`` with ``<γ⊙u, c(t)> = <w, t>`` for every ``t``: ``c(γ⊙u)``.

        ``u``: ``[..., d_model]``; the result has the same shape.
        """
        w = u * self.gamma if self.gamma is not None else u
        return self.center(w)

    def constant(self, u: Tensor) -> Tensor:
        """``<β, u>``: ``[..., d_model] -> [...]`` (zero without a bias)."""
        if self.beta is None:
            return torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)
        return u @ self.beta
