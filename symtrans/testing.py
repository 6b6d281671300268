"""Helpers for users' own test suites.

from symtrans.testing import assert_logit_identity

def test_my_model_adds_up():
    assert_logit_identity(model, "Dublin is the capital city of", " Ireland", split="heads")
"""

from __future__ import annotations

from typing import Any

from .analyses.decompose import decompose
from .kinds import Split
from .results.decomposition import Decomposition


def assert_logit_identity(
    model: Any,
    prompt: str,
    answer: str,
    vs: str | None = None,
    split: Split = "layers",
    atol: float | None = None,
    position: int = -1,
) -> Decomposition:
    """Fail (with :class:`~symtrans.errors.IdentityError`, an ``AssertionError`` in spirit)
    unless the terms of ``split`` add up to the model's own logit within ``atol`` (default:
    the documented tolerance for the model's dtype and norm). Returns the decomposition."""
    d = decompose(model, prompt, answer=answer, vs=vs, split=split, position=position)
    return d.verify(atol)
