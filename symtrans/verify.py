"""Does it add up? The one check of every result: tolerances per dtype and norm, and the error
that says why not.

A result lists its claims (:meth:`symtrans.results.Result.claims`): each says that a number it
computed equals an independent number from the model's forward pass. :func:`verify` checks every
claim and raises :class:`IdentityError` for the worst one that fails.

The default tolerance is relative to the size of the parts, ``Σ_i |v_i| + |constant|``
(the quantity rounding errors scale with), never below an absolute floor:

==============  ===========  ==========================================================
model dtype     LayerNorm    RMSNorm
==============  ===========  ==========================================================
float64         1e-11        1e-6  (Hugging Face's RMSNorm computes its variance in float32)
float32         1e-5         1e-5
float16         5e-3         5e-3
bfloat16        3e-2         3e-2
==============  ===========  ==========================================================

tolerance = rtol(dtype, norm) * max(1, Σ|parts|). symtrans itself evaluates every term in
float64 from the model's activations (bfloat16 and float16 models too); the tolerance covers
the model's own rounding.

Measured on random GPT-2, GPT-NeoX, Llama (GQA), GPT-J and attention-only models (d_model 32,
ε = 1e-2, random γ, β and biases), TransformerBridge raw and in compatibility mode and
HookedTransformer with every weight-processing option; the largest
``|sum − model's logit| / max(1, Σ|parts|)`` over every split, answer and answer − vs:

==============  ===========================================================================
model dtype     measured (margin to the default above)
==============  ===========================================================================
float64         LayerNorm 3e-16. RMSNorm 2e-16 through HookedTransformer; 1.3e-8 through
                TransformerBridge, whose forward runs Hugging Face's RMSNorm (float32 variance)
float32         1.2e-7 (~80×)
float16         6.1e-4 (~8×)
bfloat16        3.9e-3 (~8×)
==============  ===========================================================================

Absolute numbers per architecture, API, weight option and dtype: ``benchmarks/exactness.py``.
Against Hugging Face's own forward pass (not the model's logit), float64: LayerNorm models
within 1e-15 (GPT-J 7.5e-11: Hugging Face's GPT-J attention and the bridge's differ at that
level), RMSNorm models within 1e-8. A model whose weights TransformerLens processed
(``enable_compatibility_mode()``; ``fold_ln``, ``center_writing_weights``, ``center_unembed``,
``fold_value_biases``) was rounded through float32 by TransformerLens, so it differs from the
saved float64 model by up to ~1e-7 relative, while symtrans still adds up to *its* logit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from .errors import IdentityError, InvalidArgumentError
from .kinds import NormKind
from .results.claims import Claim

if TYPE_CHECKING:
    from .results.base import Result

R = TypeVar("R", bound="Result")

RTOL = {
    ("float64", NormKind.LAYER): 1e-11,
    ("float64", NormKind.RMS): 1e-6,
    ("float32", NormKind.LAYER): 1e-5,
    ("float32", NormKind.RMS): 1e-5,
    ("float16", NormKind.LAYER): 5e-3,
    ("float16", NormKind.RMS): 5e-3,
    ("bfloat16", NormKind.LAYER): 3e-2,
    ("bfloat16", NormKind.RMS): 3e-2,
}


def default_tolerance(dtype: str, kind: NormKind, magnitude: float) -> float:
    """The documented default tolerance for a sum whose parts add to ``magnitude`` in |.|."""
    return RTOL[(dtype, kind)] * max(1.0, magnitude)


@dataclass(frozen=True)
class Check:
    """The verification line: sum, model, difference, tolerance, pass/fail."""

    total: float
    model_logit: float
    tolerance: float

    @property
    def difference(self) -> float:
        return self.total - self.model_logit

    @property
    def passed(self) -> bool:
        # `not >` so that a NaN difference fails
        return abs(self.difference) <= self.tolerance


def check_atol(atol: object) -> float | None:
    """``atol`` as a float, or :class:`InvalidArgumentError` for anything that is not a
    finite number >= 0 (``None``: the default)."""
    if atol is None:
        return None
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not 0 <= atol < math.inf:
        raise InvalidArgumentError(
            f"atol is an absolute tolerance: a finite number >= 0, got {atol!r}; leave it "
            "out for the documented default of the model's dtype and norm"
        )
    return float(atol)


def tolerance(claim: Claim, atol: float | None = None) -> float:
    """``atol`` if given, else the documented default for the claim's dtype, norm and
    magnitude (never below the claim's floor)."""
    given = check_atol(atol)
    if given is not None:
        return given
    return max(claim.floor, default_tolerance(claim.dtype, claim.norm, claim.magnitude))


def check(claim: Claim, atol: float | None = None) -> Check:
    """One claim checked: its value, its reference and the tolerance."""
    return Check(total=claim.value, model_logit=claim.reference, tolerance=tolerance(claim, atol))


def checks(result: Result, atol: float | None = None) -> list[tuple[Claim, Check]]:
    """Every claim of ``result`` with its check, in the result's order."""
    return [(claim, check(claim, atol)) for claim in result.claims()]


def worst(result: Result, atol: float | None = None) -> tuple[Claim, Check]:
    """The claim whose error is largest against its tolerance (a failing one if any)."""
    pairs = checks(result, atol)
    if not pairs:
        raise InvalidArgumentError(f"{type(result).__name__} asserts nothing to check")

    def excess(pair: tuple[Claim, Check]) -> float:
        c = pair[1]
        gap = abs(c.difference) - c.tolerance
        return math.inf if gap != gap else gap  # NaN first

    return max(pairs, key=excess)


def likely_cause(dtype: str, kind: NormKind, difference: float, magnitude: float) -> str:
    rel = abs(difference) / max(1.0, magnitude)
    if difference != difference:
        return "NaN in the weights or activations"
    if kind is NormKind.RMS and dtype == "float64" and rel < 1e-4:
        return "RMSNorm computes its variance in float32 even in a float64 model; pass atol≈1e-6"
    if dtype != "float64" and rel < 1e-2:
        return f"rounding of a {dtype} model; load it in float64 for an exact identity"
    return (
        "a term the decomposition does not model (soft-capping, logit scaling, a hook that "
        "does not match the weights, or weights changed after the forward pass)"
    )


def verify(result: R, atol: float | None = None) -> R:
    """``result`` if every claim holds, else :class:`IdentityError` naming the worst one:
    what it is about, both numbers, the difference, the tolerance and the likely cause."""
    claim, c = worst(result, atol)
    if c.passed:
        return result
    raise IdentityError(
        f"{claim.subject}: {claim.what} do not add up to {claim.against}: "
        f"{claim.value:.12g} against {claim.reference:.12g}, "
        f"difference {c.difference:.3g} exceeds the tolerance {c.tolerance:.3g}; likely cause: "
        f"{likely_cause(claim.dtype, claim.norm, c.difference, claim.magnitude)}"
    )
