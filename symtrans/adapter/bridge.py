"""Adapter for TransformerLens's ``TransformerBridge`` (TransformerLens 3.x and 4.x), raw or
after ``enable_compatibility_mode()``.

The bridge wraps the Hugging Face module itself, so its hooks see the numbers of the forward
pass it runs. ``enable_compatibility_mode()`` folds the norms into the weights and centres them
*in place*: the final norm then has ``γ = 1``, ``β = 0`` and the folded ``W_U``/``b_U`` carry
them. The adapter reads the final norm from the module the forward applies, after any folding,
so both forms add up.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..errors import UnsupportedModelError
from ..norm import FinalNorm, NormKind
from .common import (
    TransformerLensAdapter,
    per_query_head,
    refuse_nonlinear_logits,
    zeros_if_none,
)
from .protocol import HookKey, ModelSpec, Patch, RunResult
from .resume import block_arguments, replay, resumable

# Architectures whose block layout (every block adds hook_attn_out and hook_mlp_out to the
# residual, nothing else does) has been checked against Hugging Face's forward (tests/).
SUPPORTED_ARCHITECTURES = {
    "GPT2LMHeadModel": "gpt2",
    "GPTNeoXForCausalLM": "gpt_neox",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "GPTJForCausalLM": "gptj",
    # TransformerBridge.boot_native: TransformerLens's own blocks (attention-only included)
    "TransformerLensNative": "native",
}


def _architecture(bridge: Any) -> str:
    cfg = bridge.cfg
    for name in (getattr(cfg, "architecture", None), getattr(cfg, "original_architecture", None)):
        if name:
            return str(name)
    if type(bridge.original_model).__name__ == "NativeModel":
        return "TransformerLensNative"
    return type(bridge.original_model).__name__


def _hf_config(bridge: Any) -> Any:
    return getattr(getattr(bridge, "original_model", None), "config", None)


def _has_final_norm(bridge: Any) -> bool:
    ln = getattr(bridge, "ln_final", None)
    module = getattr(ln, "original_component", None)
    return ln is not None and type(module).__name__ != "Identity"


def _refuse_unsupported(bridge: Any) -> str:
    """The architecture name, or :class:`UnsupportedModelError` naming the missing piece."""
    arch = _architecture(bridge)
    cfg = bridge.cfg
    hf = _hf_config(bridge)
    softcaps = [
        getattr(cfg, "output_logits_soft_cap", None),
        getattr(hf, "final_logit_softcapping", None),
    ]
    scales = [getattr(hf, name, None) for name in ("logit_scale", "logits_scaling")]
    refuse_nonlinear_logits(
        arch,
        softcap=max((float(s) for s in softcaps if s is not None), default=None),
        logit_scale=next((s for s in scales if s is not None and float(s) != 1.0), None),
        has_final_norm=_has_final_norm(bridge),
    )
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"architecture {arch!r} is not supported: its block layout has not been checked "
            "against the exact identity (what each block adds to the residual stream, and how "
            f"its norms scale it); supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))}. "
            "symtrans refuses rather than return a sum that may not add up"
        )
    if getattr(bridge, "ln_final", None) is not None and getattr(
        bridge.ln_final, "uses_weight_offset", False
    ):
        raise UnsupportedModelError(
            f"{arch}: the final norm scales by (1 + weight), which symtrans does not read yet"
        )
    return arch


def _final_norm(bridge: Any) -> FinalNorm:
    """The final norm as the bridge's forward applies it (see ``NormalizationBridge``)."""
    cfg = bridge.cfg
    ln = bridge.ln_final
    module = getattr(ln, "original_component", None)
    rms = getattr(ln, "uses_rms_norm", None)
    if rms is None:
        norm_type = "RMS" if getattr(cfg, "final_rms", False) else str(cfg.normalization_type)
        if norm_type not in ("LN", "LNPre", "RMS", "RMSPre"):
            raise UnsupportedModelError(
                f"final norm of type {norm_type!r} is not supported (expected LayerNorm or RMSNorm)"
            )
        rms = norm_type.startswith("RMS")
    # The python-norm path uses cfg.eps; the native path (and HF's module) the module's own.
    module_eps = getattr(module, "eps", None)
    if module_eps is None:
        module_eps = getattr(module, "variance_epsilon", None)
    native = getattr(ln, "use_native_layernorm_autograd", False) or getattr(
        cfg, "layer_norm_folding", False
    )
    eps = module_eps if (native and module_eps is not None) else getattr(cfg, "eps", module_eps)
    if eps is None:
        raise UnsupportedModelError("the final norm has no epsilon (neither eps nor cfg.eps)")
    return _bridge_norm(ln, bool(rms), float(eps), int(cfg.d_model))


def _bridge_norm(ln: Any, rms: bool, eps: float, d_model: int) -> FinalNorm:
    """A bridge norm component as it applies itself: ``γ`` (and, for LayerNorm, ``β``) from
    the Hugging Face module it wraps, none for the parameter-free (folded) bridges."""
    module = getattr(ln, "original_component", None)
    param_free = type(ln).__name__ in ("LayerNormPreBridge", "RMSNormPreBridge")
    gamma = None if param_free else getattr(module, "weight", None)
    beta = None if (param_free or rms) else getattr(module, "bias", None)
    return FinalNorm(
        kind=NormKind.RMS if rms else NormKind.LAYER,
        eps=eps,
        d_model=d_model,
        gamma=None if gamma is None else gamma.detach(),
        beta=None if beta is None else beta.detach(),
    )


def _accepts_logits_to_keep(bridge: Any) -> bool:
    """Whether the wrapped Hugging Face model can unembed only some positions."""
    forward = getattr(getattr(bridge, "original_model", None), "forward", None)
    try:
        return forward is not None and "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False


def is_bridge(model: Any) -> bool:
    return any(c.__name__ == "TransformerBridge" for c in type(model).__mro__) or (
        hasattr(model, "original_model") and hasattr(model, "cfg") and hasattr(model, "adapter")
    )


class BridgeAdapter(TransformerLensAdapter):
    """A :class:`~symtrans.adapter.protocol.ModelAdapter` over a ``TransformerBridge``."""

    _resid_final = "ln_final.hook_in"

    def __init__(self, bridge: Any) -> None:
        arch = _refuse_unsupported(bridge)
        cfg = bridge.cfg
        self._model = bridge
        attn_only = bool(getattr(cfg, "attn_only", False))
        self._spec = ModelSpec(
            architecture=SUPPORTED_ARCHITECTURES[arch],
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            d_model=int(cfg.d_model),
            d_head=int(cfg.d_head),
            d_mlp=0 if attn_only else int(cfg.d_mlp or 0),
            n_ctx=int(cfg.n_ctx),
            has_pos_embed=getattr(bridge, "pos_embed", None) is not None
            and cfg.positional_embedding_type == "standard",
            parallel=bool(getattr(cfg, "parallel_attn_mlp", False)),
            norm=_final_norm(bridge),
            dtype=bridge.W_U.dtype,
        )
        self._logits_to_keep = _accepts_logits_to_keep(bridge)

    def _destination_logits(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """The model's own forward, unembedding only the final norm's output at
        ``positions`` (Hugging Face's ``logits_to_keep``) rather than ``[batch, pos, d_vocab]``
        logits: a third of a GPT-2-small forward's time, 190 MB at batch 8 x 118."""
        if not self._logits_to_keep or bool((positions != positions[0]).any()):
            return super()._destination_logits(tokens, positions)
        # One destination position for the whole batch (decompose groups prompts that way).
        logits = self._model(tokens, logits_to_keep=positions[:1].to(tokens.device))
        return logits[:, 0]

    def unembed(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        W_U = self._model.W_U  # [d_model, d_vocab]
        b_U = self._model.b_U
        return W_U[:, ids].T.detach(), b_U[ids].detach()

    def W_O(self, layer: int) -> Tensor:
        return self._model.blocks[layer].attn.W_O.detach()

    def b_O(self, layer: int) -> Tensor:
        return zeros_if_none(self._model.blocks[layer].attn.b_O, self._spec)

    def W_out(self, layer: int) -> Tensor:
        return self._model.blocks[layer].mlp.W_out.detach()

    def b_out(self, layer: int) -> Tensor:
        return zeros_if_none(self._model.blocks[layer].mlp.b_out, self._spec)

    # -- attention weights (symtrans.paths, symtrans.attention) ---------------------------------
    def W_Q(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_Q.detach()

    def W_K(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._per_query_head(self._model.blocks[layer].attn.W_K.detach())

    def W_V(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._per_query_head(self._model.blocks[layer].attn.W_V.detach())

    def b_Q(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._head_bias(self._model.blocks[layer].attn.b_Q)

    def b_K(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._head_bias(self._model.blocks[layer].attn.b_K)

    def b_V(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._head_bias(self._model.blocks[layer].attn.b_V)

    def _head_bias(self, value: Tensor | None) -> Tensor:
        if value is None:
            return torch.zeros(self._spec.n_heads, self._spec.d_head, dtype=self._spec.dtype)
        return self._per_query_head(value.detach())

    def _per_query_head(self, value: Tensor) -> Tensor:
        """The bridge gives keys and values per key/value head: one per query head here."""
        return per_query_head(value, self._spec.n_heads)

    def attn_scale(self) -> float:
        """What the scores are divided by: ``sqrt(d_head)`` unless the config says otherwise."""
        cfg = self._model.cfg
        if not getattr(cfg, "use_attn_scale", True):
            return 1.0
        scale = float(getattr(cfg, "attn_scale", -1.0) or -1.0)
        return scale if scale > 0 else float(cfg.d_head) ** 0.5

    def ln1(self, layer: int) -> FinalNorm:
        """The first norm of block ``layer`` (``γ``/``β`` ``None`` where folded away); its
        scale is read from the forward pass (:attr:`Hook.LN1_SCALE`), not recomputed."""
        ln = self._model.blocks[layer].ln1
        module = getattr(ln, "original_component", None)
        rms = bool(getattr(ln, "uses_rms_norm", False)) or "RMS" in type(module).__name__
        eps = getattr(module, "eps", None) or getattr(module, "variance_epsilon", None)
        eps = float(eps if eps is not None else self._model.cfg.eps)
        return _bridge_norm(ln, rms, eps, self._spec.d_model)

    # -- a forward pass started at a block (activation patching) ---------------------------
    @property
    def resumable(self) -> bool:
        """Whether :meth:`run_from` can skip the blocks below (see :mod:`.resume`)."""
        return resumable(self._model)

    def run_from(
        self,
        layer: int,
        resid: Tensor,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None = None,
    ) -> RunResult:
        """Blocks ``layer..`` of ``tokens`` on ``resid`` (``[batch, pos, d_model]``), the
        blocks below not run (see :meth:`~.protocol.ResumableAdapter.run_from`)."""
        if not self.resumable:
            raise UnsupportedModelError(
                f"{type(self._model.original_model).__name__}: starting the forward pass at a "
                "block has not been checked for this model; run the whole pass with resid_pre "
                "patched instead (symtrans.trace.run.forward_from does)"
            )
        arguments = block_arguments(self._model, tokens)

        def logits_at(_: Tensor, where: Tensor) -> Tensor:
            return replay(self._model, layer, resid, arguments, where)

        return self._hooked(tokens, positions, keys, patches, logits_at)
