"""Pieces every report's content shares: the model line, the direction, the tokens."""

from __future__ import annotations

from collections.abc import Sequence

from ...kinds import NormKind
from ...results.model import ModelInfo
from .. import numbers
from ..document import Text, Token


def norm_name(kind: NormKind) -> str:
    return "LayerNorm" if kind is NormKind.LAYER else "RMSNorm"


def model_line(m: ModelInfo) -> str:
    """``tiny-capitals (gpt2, 2 layers, 4 heads, d_model 64, LayerNorm with eps 1e-5, ...)``."""
    return (
        f"{m.name} ({m.architecture}, {m.n_layers} layers, {m.n_heads} heads, d_model {m.d_model}, "
        f"{norm_name(m.norm)} with eps {numbers.text(m.eps, 1)}, {m.dtype})"
    )


def direction_text(answer: str, vs: str | None) -> Text:
    """The answer token, or ``answer − vs``, as tokens (spaces shown)."""
    return (Token(answer),) if vs is None else (Token(answer), " − ", Token(vs))


def tokens(strings: Sequence[str], here: int) -> tuple[tuple[str, bool], ...]:
    """Each token and whether it is the position read (``here``; -1 for none)."""
    return tuple((t, i == here) for i, t in enumerate(strings))
