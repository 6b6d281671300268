"""Does it add up? The one check of every result: tolerances per dtype and norm, and the error
that says why not.

A result lists its claims (:meth:`symtrans.results.Result.claims`): each says that a number it
computed equals an independent number from the model's forward pass. :func:`verify` checks every
claim and raises :class:`IdentityError` for the worst one that fails.

**float64.** The tolerance is relative to the size of the parts, ``Σ_i |v_i| + |constant|``,
never below an absolute floor: ``1e-11 · max(1, Σ|parts|)``, or ``1e-6 · max(1, Σ|parts|)``
where Hugging Face computes the model's norms in float32 even in a float64 model (every RMSNorm
family; OLMo's and Cohere's LayerNorm). Measured on random models of every family
(``benchmarks/exactness.py --families``): LayerNorm families ≤ 3e-16 against the model's own
logit; the float32-norm families ≤ 3e-8.

**float32, float16, bfloat16.** symtrans evaluates every term in float64 from the model's own
(rounded) activations, so what remains is the model's rounding. The tolerance is derived from
it: ``factor · ε · rounding``, with ``ε`` the dtype's unit roundoff (2^-24, 2^-11, 2^-8) and
``rounding`` (:func:`symtrans.trace.evaluate.rounding_scale`) a random-walk error model over
the vectors the model rounded on the way — every residual it stored, every sublayer output,
and the final norm and unembedding — which grows with the square root of the number of
roundings rather than with ``Σ|parts|``. Measured ``|sum − logit| / (ε · rounding)`` over the
families' random models and the embedded models: at most 6.1 (float32), 1.7 (float16), 1.6
(bfloat16); the factors 16, 4, 4 leave a margin of about 2.5. On the embedded GPT-2 in
bfloat16 (neurons split, logit 19) the tolerance is 0.14 where ``3e-2 · Σ|parts|`` gave 0.57;
dropping any term larger than the tolerance (plus the actual difference) fails the check
(``tests/test_families.py``). Without a measured rounding (a result built by hand) the old
relative tolerance applies: 1e-5, 5e-3, 3e-2 of ``Σ|parts|``.

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


def default_tolerance(
    dtype: str, kind: NormKind, magnitude: float, float32_norms: bool = False
) -> float:
    """The documented default tolerance for a sum whose parts add to ``magnitude`` in |.|
    (``float32_norms``: Hugging Face computes the norms in float32, as for RMSNorm)."""
    key = (dtype, NormKind.RMS if float32_norms else kind)
    return RTOL[key] * max(1.0, magnitude)


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


# A low-precision model's own rounding: its dtype's unit roundoff, and how many times the
# error model's estimate (symtrans.trace.evaluate.rounding_scale) the tolerance allows.
EPSILON = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}
# Measured (benchmarks/exactness.py --tolerance): |sum − logit| / (ε · rounding) reached 6.1
# in float32, 1.7 in float16, 1.6 in bfloat16 over the families' random models and the
# embedded ones: each factor leaves a margin of about 2.5.
ROUNDING_FACTOR = {"float32": 16.0, "float16": 4.0, "bfloat16": 4.0}


def tolerance(claim: Claim, atol: float | None = None) -> float:
    """``atol`` if given, else the documented default for the claim's dtype, norm and
    magnitude (never below the claim's floor). A low-precision model whose rounding was
    measured gets ``ROUNDING_FACTOR · ε · rounding``: a missing term about the size of the
    model's own rounding fails the check."""
    given = check_atol(atol)
    if given is not None:
        return given
    if claim.rounding is not None and claim.dtype in EPSILON:
        factor = ROUNDING_FACTOR[claim.dtype]
        rounded = factor * EPSILON[claim.dtype] * max(claim.rounding, 1.0)
        return max(claim.floor, rounded)
    default = default_tolerance(claim.dtype, claim.norm, claim.magnitude, claim.float32_norms)
    return max(claim.floor, default)


def check(claim: Claim, atol: float | None = None) -> Check:
    """One claim checked: its value, its reference and the tolerance."""
    return Check(total=claim.value, model_logit=claim.reference, tolerance=tolerance(claim, atol))


def checks(
    result: Result, atol: float | None = None, extra: tuple[Claim, ...] = ()
) -> list[tuple[Claim, Check]]:
    """Every claim of ``result`` (and ``extra``) with its check, in the result's order."""
    return [(claim, check(claim, atol)) for claim in (*result.claims(), *extra)]


def worst(
    result: Result, atol: float | None = None, extra: tuple[Claim, ...] = ()
) -> tuple[Claim, Check]:
    """The claim whose error is largest against its tolerance (a failing one if any)."""
    pairs = checks(result, atol, extra)
    if not pairs:
        raise InvalidArgumentError(f"{type(result).__name__} asserts nothing to check")

    def excess(pair: tuple[Claim, Check]) -> float:
        c = pair[1]
        gap = abs(c.difference) - c.tolerance
        return math.inf if gap != gap else gap  # NaN first

    return max(pairs, key=excess)


def likely_cause(
    dtype: str, kind: NormKind, difference: float, magnitude: float, float32_norms: bool = False
) -> str:
    rel = abs(difference) / max(1.0, magnitude)
    if difference != difference:
        return "NaN in the weights or activations"
    if (kind is NormKind.RMS or float32_norms) and dtype == "float64" and rel < 1e-4:
        return (
            "Hugging Face computes this model's norms in float32 even in a float64 model; pass "
            "atol≈1e-6"
        )
    if dtype != "float64" and rel < 1e-2:
        return f"rounding of a {dtype} model; load it in float64 for an exact identity"
    return (
        "a term the decomposition does not model (soft-capping, logit scaling, a hook that "
        "does not match the weights, or weights changed after the forward pass)"
    )


def verify(result: R, atol: float | None = None, extra: tuple[Claim, ...] = ()) -> R:
    """``result`` if every claim (and every ``extra`` one) holds, else :class:`IdentityError`
    naming the worst one: what it is about, both numbers, the difference, the tolerance and
    the likely cause."""
    claim, c = worst(result, atol, extra)
    if c.passed:
        return result
    cause = likely_cause(
        claim.dtype, claim.norm, c.difference, claim.magnitude, claim.float32_norms
    )
    raise IdentityError(
        f"{claim.subject}: {claim.what} do not add up to {claim.against}: "
        f"{claim.value:.12g} against {claim.reference:.12g}, "
        f"difference {c.difference:.3g} exceeds the tolerance {c.tolerance:.3g}; likely cause: "
        f"{cause}"
    )
