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
    float32_norms: bool = False  # Hugging Face computes the norms in float32 (see Claim)
    family: str = ""  # symtrans's name of the model family ("" for an unlisted one)
    logit_scale: float = 1.0  # the logits are multiplied by this (Cohere, Granite)
    source: str = ""  # where the original Hugging Face model loads from ("" if unknown)
    # max |wrapper logits − Hugging Face logits| on the load-time probe (None: not probed,
    # the model was passed in; d.verify(reference="hf") checks it then)
    probe_error: float | None = None
