"""A model on an accelerator, symtrans's arithmetic on the CPU.

The forward pass runs where the model lives (``cuda``, ``mps``, ...): tokens go there, and
everything the adapter hands back — activations, logits, weights, the norms' ``γ`` and ``β`` —
comes back to the CPU, where symtrans evaluates every term in float64 (slow or missing on many
accelerators). What comes back is small: the destination rows of the hooks a split needs, and
one matrix per layer at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from ..norm import FinalNorm
from .protocol import HookKey, ModelAdapter, ModelSpec, RunResult

HOST = torch.device("cpu")


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without any)."""
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return HOST


def _to_host(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.to(HOST)
    if isinstance(value, FinalNorm):
        return replace(
            value,
            gamma=None if value.gamma is None else value.gamma.to(HOST),
            beta=None if value.beta is None else value.beta.to(HOST),
        )
    if isinstance(value, tuple):
        return tuple(_to_host(v) for v in value)
    if isinstance(value, RunResult):  # run_from, reached through __getattr__
        return RunResult(
            logits=value.logits.to(HOST),
            activations={key: act.to(HOST) for key, act in value.activations.items()},
        )
    return value


class OnHost:
    """Wraps an adapter whose model is on ``device``: ``run`` sends the tokens there; every
    tensor any method returns is moved to the CPU."""

    def __init__(self, inner: ModelAdapter, device: torch.device) -> None:
        self._inner = inner
        self.device = device
        self._spec: ModelSpec = replace(inner.spec, norm=_to_host(inner.spec.norm))

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def model(self) -> Any:
        return self._inner.model

    def run(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Callable[[Tensor], Tensor]] | None = None,
    ) -> RunResult:
        kwargs = {} if patches is None else {"patches": patches}
        out = self._inner.run(tokens.to(self.device), positions.to(self.device), keys, **kwargs)
        return RunResult(
            logits=out.logits.to(HOST),
            activations={key: value.to(HOST) for key, value in out.activations.items()},
        )

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return _to_host(value)

        def on_host(*args: Any, **kwargs: Any) -> Any:
            args = tuple(a.to(self.device) if isinstance(a, Tensor) else a for a in args)
            return _to_host(value(*args, **kwargs))

        return on_host


def on_host(adapter: ModelAdapter) -> ModelAdapter:
    """``adapter`` itself for a model on the CPU; :class:`OnHost` around it otherwise."""
    device = model_device(adapter.model)
    if device.type == "cpu":
        return adapter
    return OnHost(adapter, device)
