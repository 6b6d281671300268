"""A model on an accelerator, symtrans's arithmetic on the CPU.

The forward pass runs where the model lives (``cuda``, ``mps``, ...): tokens go there, and
everything the adapter hands back — activations, logits, weights, the norms' ``γ`` and ``β`` —
comes back to the CPU, where symtrans evaluates every term in float64 (slow or missing on many
accelerators). What comes back is small: the destination rows of the hooks a split needs, and
one matrix per layer at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor

from ..errors import UnsupportedModelError
from ..norm import FinalNorm
from .protocol import HookKey, ModelAdapter, ModelSpec, RunResult

HOST = torch.device("cpu")


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter that is not offloaded (the CPU for a model
    without any). A model sharded with a ``device_map`` gets its tokens there; accelerate's
    hooks move the activations from block to block."""
    try:
        devices = (p.device for p in model.parameters() if p.device.type != "meta")
        return next(devices, HOST)
    except AttributeError:
        return HOST


def is_offloaded(model: Any) -> bool:
    """Whether accelerate offloaded some of ``model``'s weights (``device_map`` with ``"cpu"``
    or ``"disk"`` entries): they are ``meta`` tensors between forward passes."""
    try:
        return any(p.device.type == "meta" for p in model.parameters())
    except AttributeError:
        return False


@contextmanager
def onloaded(module: Any) -> Iterator[None]:
    """Every weight accelerate offloaded under ``module`` readable on the CPU for the
    duration (accelerate's own ``align_module_device``, for each submodule that holds some)."""
    if not is_offloaded(module):
        yield
        return
    from accelerate.utils import align_module_device, has_offloaded_params

    with ExitStack() as stack:
        for sub in module.modules():
            # The model's own modules; TransformerLens's wrappers of them carry hooks too,
            # and onloading those as well leaves their aliases (``mlp.b_out``) on meta.
            if has_offloaded_params(sub) and not type(sub).__module__.startswith(
                "transformer_lens"
            ):
                stack.enter_context(align_module_device(sub, execution_device=HOST))
        yield


def parameter(module: Any, name: str) -> Tensor | None:
    """``module``'s parameter ``name`` on the CPU (``None`` if it has none), readable whatever
    holds it: on an accelerator, or offloaded by accelerate (``device_map``)."""
    if getattr(module, name, None) is None:
        return None
    with onloaded(module):
        value = getattr(module, name)
        if value.device.type == "meta":
            raise UnsupportedModelError(
                f"{type(module).__name__}.{name} is on the meta device and no offload map holds "
                "its values; load the model's weights (dispatch=True for nnsight, or a "
                "device_map of real devices) before decomposing"
            )
        return value.detach().to(HOST, copy=True)


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


# The adapter methods that read a block's weights (their first argument is the layer).
_LAYER_WEIGHTS = frozenset(
    {"W_O", "b_O", "W_out", "b_out", "W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "ln1"}
)


class Onloading:
    """Wraps a TransformerLens adapter whose model accelerate partly offloaded: each call that
    reads weights runs with that block's weights onloaded to the CPU (one block at a time;
    the unembedding for ``unembed``). The forward pass onloads them itself."""

    def __init__(self, inner: ModelAdapter, spec: ModelSpec) -> None:
        self._inner = inner
        self._spec = spec  # its final norm copied while onloaded

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def model(self) -> Any:
        return self._inner.model

    def run(self, *args: Any, **kwargs: Any) -> RunResult:
        return self._inner.run(*args, **kwargs)

    def _holder(self, name: str, args: tuple[Any, ...]) -> Any:
        model = self._inner.model
        if name in _LAYER_WEIGHTS and args:
            return model.blocks[int(args[0])]
        if name == "unembed":
            return getattr(model, "unembed", model)
        return None

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            holder = self._holder(name, args)
            if holder is None:
                return value(*args, **kwargs)
            with onloaded(holder):
                return _copied(value(*args, **kwargs))

        return call


def _copied(value: Any) -> Any:
    """Tensors copied out of weights that go back to ``meta`` when the block is offloaded."""
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, FinalNorm):
        return replace(
            value,
            gamma=None if value.gamma is None else value.gamma.clone(),
            beta=None if value.beta is None else value.beta.clone(),
        )
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


def onloading(factory: Callable[[Any], ModelAdapter], model: Any) -> ModelAdapter:
    """``factory(model)``, wrapped in :class:`Onloading` when accelerate offloaded some of
    ``model``'s weights (built with the final norm onloaded: the adapter reads its ``γ``)."""
    if not is_offloaded(model):
        return factory(model)
    with onloaded(getattr(model, "ln_final", model)):
        adapter = factory(model)
        spec = adapter.spec
        norm = _copied(spec.norm)
    return Onloading(adapter, replace(spec, norm=norm))
