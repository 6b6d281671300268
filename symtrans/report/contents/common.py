"""Pieces every report's content shares: the model line, the direction, the tokens."""

from __future__ import annotations

from collections.abc import Sequence

from ...kinds import NormKind
from ...results.model import ModelInfo
from ..layout import plain_number


def norm_name(kind: NormKind) -> str:
    return "LayerNorm" if kind is NormKind.LAYER else "RMSNorm"


def model_line(m: ModelInfo) -> str:
    """``tiny-capitals (gpt2, 2 layers, 4 heads, d_model 64, LayerNorm with eps 1e-5, ...)``."""
    return (
        f"{m.name} ({m.architecture}, {m.n_layers} layers, {m.n_heads} heads, d_model {m.d_model}, "
        f"{norm_name(m.norm)} with eps {plain_number(m.eps, 3)}, {m.dtype})"
    )


def direction_text(answer: str, vs: str | None) -> str:
    return repr(answer) if vs is None else f"{answer!r} − {vs!r}"


def tokens(strings: Sequence[str], here: int) -> tuple[tuple[str, bool], ...]:
    """Each token and whether it is the position read (``here``; -1 for none)."""
    return tuple((t, i == here) for i, t in enumerate(strings))
