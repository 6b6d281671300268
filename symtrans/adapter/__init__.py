"""The only package that knows TransformerLens: model in, :class:`ModelAdapter` out.

One module per API behind one protocol (:mod:`.protocol`): :mod:`.bridge` for
``TransformerBridge`` (TransformerLens 3.x and 4.x, raw or after
``enable_compatibility_mode()``) and :mod:`.hooked` for the legacy ``HookedTransformer``
(TransformerLens 2.x and 3.x). Neither imports ``transformer_lens``: models are recognised by
their class names, so symtrans imports cleanly whichever TransformerLens is installed.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidArgumentError
from .protocol import Hook, HookKey, ModelAdapter, ModelSpec, RunResult

__all__ = ["Hook", "HookKey", "ModelAdapter", "ModelSpec", "RunResult", "as_adapter"]


def as_adapter(model: Any) -> ModelAdapter:
    """Wrap a TransformerLens model (or return an adapter unchanged).

    Raises :class:`~symtrans.errors.UnsupportedModelError` for a model whose logit symtrans
    cannot write as an exact sum, naming the architecture and the missing piece.
    """
    if hasattr(model, "spec") and hasattr(model, "run"):
        return model
    from .bridge import BridgeAdapter, is_bridge
    from .hooked import HookedTransformerAdapter, is_hooked_transformer
    from .host import on_host

    # A model on an accelerator runs there; symtrans's float64 arithmetic stays on the CPU.
    if is_bridge(model):
        return on_host(BridgeAdapter(model))
    if is_hooked_transformer(model):
        return on_host(HookedTransformerAdapter(model))
    raise InvalidArgumentError(
        f"expected a TransformerLens TransformerBridge or HookedTransformer, or a model name, "
        f"got {type(model).__name__}; load one with st.load_model('tiny-capitals') or "
        "TransformerBridge.boot_transformers(path)"
    )
