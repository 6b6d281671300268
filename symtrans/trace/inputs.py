"""What a caller gives every analysis, checked once: positions, answer/vs tokens, per-prompt
arguments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import labels as lb
from ..adapter.protocol import ModelAdapter
from ..errors import InvalidArgumentError, TokenizationError


def resolve_position(position: int, length: int, prompt: str) -> int:
    """``position`` (negative: from the end) as a non-negative index into ``length`` tokens."""
    if not isinstance(position, int) or isinstance(position, bool):
        raise InvalidArgumentError(f"position must be an int, got {position!r}")
    resolved = position + length if position < 0 else position
    if not 0 <= resolved < length:
        raise InvalidArgumentError(
            f"position {position} is out of range for prompt {prompt!r} of {length} tokens; "
            f"use -{length}..{length - 1} (-1 is the last token)"
        )
    return resolved


def direction_ids(adapter: ModelAdapter, answer: str, vs: str | None) -> tuple[int, int | None]:
    """The token ids of ``answer`` and ``vs`` (each must be one token, and not the same)."""
    a = adapter.single_token(answer, "answer")
    b = None if vs is None else adapter.single_token(vs, "vs")
    if b is not None and b == a:
        raise TokenizationError(
            f"answer {answer!r} and vs {vs!r} are the same token (id {a}); their logit "
            "difference is zero by construction. Pick a different vs"
        )
    return a, b


def per_prompt(value: Any, n: int, role: str) -> list[Any]:
    """One ``value`` per prompt: a string (or None) for all, or a list of ``n``."""
    if value is None or isinstance(value, str):
        return [value] * n
    if isinstance(value, Sequence) and len(value) == n:
        return list(value)
    raise InvalidArgumentError(
        f"{role} must be one string or a list with one entry per prompt ({n}), got {value!r}"
    )


def resolve_head(head: lb.HeadOut | str, n_layers: int, n_heads: int) -> lb.HeadOut:
    """``head`` (a :class:`~symtrans.labels.HeadOut` or its name, ``'L1H2'``) as a head of a
    model of ``n_layers`` × ``n_heads``."""
    heads = {
        str(lb.HeadOut(la, h)): lb.HeadOut(la, h) for la in range(n_layers) for h in range(n_heads)
    }
    label = heads.get(head) if isinstance(head, str) else head
    if label is None or label not in heads.values():
        raise InvalidArgumentError(
            f"{head!r} is not a head of this model ({n_layers} layers × {n_heads} heads); "
            "pass lb.HeadOut(layer, head) or its name, e.g. 'L1H2'"
        )
    return label
