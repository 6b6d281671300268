"""The only package that knows TransformerLens: model in, :class:`ModelAdapter` out."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgumentError, UnsupportedModelError
from .protocol import Hook, HookKey, ModelAdapter, ModelSpec, RunResult

__all__ = ["Hook", "HookKey", "ModelAdapter", "ModelSpec", "RunResult", "as_adapter"]


def as_adapter(model: Any) -> ModelAdapter:
    """Wrap a TransformerLens model (or return an adapter unchanged)."""
    if hasattr(model, "spec") and hasattr(model, "run"):
        return model  # type: ignore[no-any-return]
    kind = type(model).__name__
    if kind == "TransformerBridge" or hasattr(model, "original_model") and hasattr(model, "cfg"):
        from .bridge import BridgeAdapter

        return BridgeAdapter(model)
    if kind == "HookedTransformer":
        raise UnsupportedModelError(
            "HookedTransformer models are not supported yet; load the same weights with "
            "st.load_model(path) or TransformerBridge.boot_transformers(path)"
        )
    raise InvalidArgumentError(
        f"expected a TransformerLens TransformerBridge or a model name, got {kind}; "
        "load one with st.load_model('tiny-capitals') or TransformerBridge.boot_transformers(path)"
    )
