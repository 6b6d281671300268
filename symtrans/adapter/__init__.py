"""The only package that knows TransformerLens: model in, :class:`ModelAdapter` out.

One module per API behind one protocol (:mod:`.protocol`): :mod:`.bridge` for
``TransformerBridge`` (TransformerLens 3.x and 4.x, raw or after
``enable_compatibility_mode()``) and :mod:`.hooked` for the legacy ``HookedTransformer``
(TransformerLens 2.x and 3.x). Neither imports ``transformer_lens``: models are recognised by
their class names, so symtrans imports cleanly whichever TransformerLens is installed.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgumentError, UnsupportedModelError
from ..results.model import ModelInfo
from .common import dtype_name
from .protocol import (
    ATTENTION_METHODS,
    AttentionAdapter,
    Hook,
    HookKey,
    ModelAdapter,
    ModelSpec,
    RunResult,
)

__all__ = [
    "AttentionAdapter",
    "Hook",
    "HookKey",
    "ModelAdapter",
    "ModelSpec",
    "RunResult",
    "as_adapter",
    "attention_adapter",
    "model_info",
    "resolve",
]


def as_adapter(model: Any, remote: bool | str = False) -> ModelAdapter:
    """Wrap a TransformerLens or nnsight model (or return an adapter unchanged).

    ``remote`` (nnsight models only): ``True`` runs on NDIF, ``"local"`` runs nnsight's local
    simulation of a remote request (see :mod:`.nnsight`).

    Raises :class:`~symtrans.errors.UnsupportedModelError` for a model whose logit symtrans
    cannot write as an exact sum, naming the architecture and the missing piece.
    """
    if remote not in (False, True, "local"):
        raise InvalidArgumentError(
            f"remote must be False, True (NDIF) or 'local' (nnsight's local simulation of a "
            f"remote run), got {remote!r}"
        )
    if hasattr(model, "spec") and hasattr(model, "run"):
        if remote and getattr(model, "remote", False) != remote:
            raise InvalidArgumentError(
                f"remote={remote!r} was given with an adapter ({type(model).__name__}) built "
                "without it; pass the nnsight model itself"
            )
        return model
    from .nnsight import NNsightAdapter, is_nnsight

    if is_nnsight(model):
        return NNsightAdapter(model, remote=remote)
    if remote:
        raise InvalidArgumentError(
            f"remote={remote!r} needs an nnsight LanguageModel, got {type(model).__name__}; "
            "wrap the model with nnsight (pip install 'symtrans[nnsight]', "
            "LanguageModel(repo_id)) to run it on NDIF"
        )
    from .bridge import BridgeAdapter, is_bridge
    from .hooked import HookedTransformerAdapter, is_hooked_transformer
    from .host import on_host, onloading

    # A model on an accelerator runs there; symtrans's float64 arithmetic stays on the CPU.
    if is_bridge(model):
        return on_host(onloading(BridgeAdapter, model))
    if is_hooked_transformer(model):
        return on_host(onloading(HookedTransformerAdapter, model))
    raise InvalidArgumentError(
        f"expected a TransformerLens TransformerBridge or HookedTransformer, an nnsight "
        f"LanguageModel, or a model name, "
        f"got {type(model).__name__}; load one with st.load_model('tiny-capitals') or "
        "TransformerBridge.boot_transformers(path)"
    )


def resolve(model: Any, remote: bool | str = False) -> ModelAdapter:
    """A model name or path is loaded (:func:`~.loading.load_model`); a TransformerLens or
    nnsight model is wrapped; an adapter is returned as it is."""
    if isinstance(model, str):
        from .loading import load_model

        model = load_model(model)
    return as_adapter(model, remote=remote)


def attention_adapter(model: Any) -> AttentionAdapter:
    """The model's adapter, or :class:`UnsupportedModelError` if it cannot give the
    attention weights (the ``TransformerBridge`` and ``HookedTransformer`` adapters do)."""
    adapter = resolve(model)
    missing = [name for name in ATTENTION_METHODS if not hasattr(adapter, name)]
    if missing:
        raise UnsupportedModelError(
            f"{type(adapter).__name__} does not give the attention weights ({', '.join(missing)}) "
            "that path and attention-score decompositions need; load the model as a "
            "TransformerBridge (st.load_model(...) does) or a HookedTransformer"
        )
    return adapter  # type: ignore[return-value]


def model_info(adapter: ModelAdapter) -> ModelInfo:
    """What a result says about the model ``adapter`` wraps."""
    from .fidelity import RECORDS

    spec = adapter.spec
    cfg = getattr(adapter, "cfg", None) or getattr(adapter.model, "cfg", None)
    config = getattr(getattr(adapter.model, "original_model", None), "config", None)
    record = RECORDS.get(adapter.model) if _weakrefable(adapter.model) else None
    return ModelInfo(
        name=str(getattr(cfg, "model_name", None) or spec.architecture),
        architecture=spec.architecture,
        n_layers=spec.n_layers,
        n_heads=spec.n_heads,
        d_model=spec.d_model,
        d_mlp=spec.d_mlp,
        norm=spec.norm.kind,
        eps=spec.norm.eps,
        has_gamma=spec.norm.gamma is not None,
        has_beta=spec.norm.beta is not None,
        dtype=dtype_name(spec.dtype),
        float32_norms=spec.norms_in_float32 or spec.norm.kind.value == "rmsnorm",
        family=spec.family,
        logit_scale=spec.logit_scale,
        # A HookedTransformer has no original module: its adapter names the source it read.
        source=str(getattr(config, "_name_or_path", "") or getattr(adapter, "source", "") or ""),
        probe_error=None if record is None else record.error,
    )


def _weakrefable(value: Any) -> bool:
    try:
        import weakref

        weakref.ref(value)
    except TypeError:
        return False
    return True
