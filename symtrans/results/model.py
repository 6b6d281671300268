"""What a result says about the model it came from."""

from __future__ import annotations

from dataclasses import dataclass

from ..kinds import NormKind


@dataclass(frozen=True)
class ModelInfo:
    """What a report says about the model, and what the identity's symbols stand for."""

    name: str
    architecture: str
    n_layers: int
    n_heads: int
    d_model: int
    d_mlp: int
    norm: NormKind
    eps: float
    has_gamma: bool
    has_beta: bool
    dtype: str
