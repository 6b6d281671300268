"""What a result asserts about itself, as data: each claim is one equality between a number
the result computed and an independent number from the model. :mod:`symtrans.verify` decides
the tolerance and checks it; the result only lists what to check."""

from __future__ import annotations

from dataclasses import dataclass

from ..kinds import NormKind


@dataclass(frozen=True)
class Claim:
    """``value`` (``what`` the result computed) equals ``reference`` (``against``, taken
    from the model's forward pass), up to the rounding of a sum of parts whose absolute values
    add to ``magnitude``, in a model of ``dtype`` whose norms are ``norm``. ``floor``: an
    absolute tolerance below which the default never goes (long chains of float64 products)."""

    subject: str  # what the claim is about: "prompt 'Dublin…' at position 6, direction …"
    what: str  # "the terms"
    value: float
    against: str  # "the model's logit"
    reference: float
    magnitude: float
    dtype: str
    norm: NormKind
    floor: float = 0.0
    # Hugging Face computes the model's norms in float32 even in a float64 model (every
    # RMSNorm family, and OLMo's and Cohere's LayerNorm): ~1e-7 relative is its own rounding.
    float32_norms: bool = False
    # In a low-precision model: how large the model's own rounding of the value can be, in
    # units of the dtype's epsilon (None: unknown; the tolerance then scales with magnitude).
    rounding: float | None = None

    @property
    def difference(self) -> float:
        return self.value - self.reference
