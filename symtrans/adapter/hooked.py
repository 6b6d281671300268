"""Adapter for the legacy ``HookedTransformer`` (TransformerLens 2.x and 3.x; gone in 4.x).

Works with every weight-processing option, on or off: ``fold_ln`` (the final norm becomes
``LayerNormPre``/``RMSNormPre`` and its ``γ``, ``β`` live in ``W_U``, ``b_U``),
``center_writing_weights``, ``center_unembed`` (every logit at a position shifts by the same
amount; symtrans decomposes the logit the model outputs) and ``fold_value_biases``
(``b_V`` moves into ``b_O``). Nothing here imports ``transformer_lens``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..errors import UnsupportedModelError
from ..norm import FinalNorm, NormKind
from .common import TransformerLensAdapter, refuse_nonlinear_logits, zeros_if_none
from .protocol import ModelSpec

# cfg.original_architecture of models whose HookedTransformer form has been checked against
# Hugging Face's forward (tests/test_architectures.py); None: built from a config, where the
# block is HookedTransformer's own and the flags below decide the layout.
SUPPORTED_ARCHITECTURES: dict[str | None, str] = {
    None: "hooked",
    "GPT2LMHeadModel": "gpt2",
    "GPTNeoXForCausalLM": "gpt_neox",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
}

# The final norm's module class -> (kind, has γ and β)
_NORMS = {
    "LayerNorm": (NormKind.LAYER, True),
    "LayerNormPre": (NormKind.LAYER, False),
    "RMSNorm": (NormKind.RMS, True),
    "RMSNormPre": (NormKind.RMS, False),
}


def is_hooked_transformer(model: Any) -> bool:
    return any(c.__name__ == "HookedTransformer" for c in type(model).__mro__)


def _refuse_unsupported(model: Any) -> str:
    cfg = model.cfg
    arch = getattr(cfg, "original_architecture", None)
    label = f"HookedTransformer({arch})" if arch else "HookedTransformer"
    refuse_nonlinear_logits(
        label,
        softcap=getattr(cfg, "output_logits_soft_cap", None),
        logit_scale=None,
        has_final_norm=getattr(cfg, "normalization_type", None) is not None
        and getattr(model, "ln_final", None) is not None,
    )
    if arch not in SUPPORTED_ARCHITECTURES:
        known = ", ".join(sorted(a for a in SUPPORTED_ARCHITECTURES if a))
        raise UnsupportedModelError(
            f"{label}: this architecture's block layout has not been checked against the exact "
            f"identity (supported: {known}, or a model built from a HookedTransformerConfig); "
            "symtrans refuses rather than return a sum that may not add up"
        )
    if getattr(cfg, "use_normalization_before_and_after", False):
        raise UnsupportedModelError(
            f"{label}: the blocks normalise their attention and MLP outputs (post-norms), so a "
            "head's output z·W_O is not what the block adds to the residual stream"
        )
    if getattr(cfg, "post_embedding_ln", False):
        raise UnsupportedModelError(
            f"{label}: the embedding is layer-normed before the first block, so the embedding "
            "is not a term of the residual stream"
        )
    kind = type(model.ln_final).__name__
    if kind not in _NORMS:
        raise UnsupportedModelError(
            f"{label}: final norm {kind} is not supported (expected one of {', '.join(_NORMS)})"
        )
    return SUPPORTED_ARCHITECTURES[arch]


def _final_norm(model: Any) -> FinalNorm:
    """The final norm as ``model.ln_final`` applies it."""
    ln = model.ln_final
    kind, affine = _NORMS[type(ln).__name__]
    gamma = getattr(ln, "w", None) if affine else None
    beta = getattr(ln, "b", None) if affine and kind is NormKind.LAYER else None
    return FinalNorm(
        kind=kind,
        eps=float(getattr(ln, "eps", model.cfg.eps)),
        d_model=int(model.cfg.d_model),
        gamma=None if gamma is None else gamma.detach(),
        beta=None if beta is None else beta.detach(),
    )


class HookedTransformerAdapter(TransformerLensAdapter):
    """A :class:`~symtrans.adapter.protocol.ModelAdapter` over a ``HookedTransformer``."""

    def __init__(self, model: Any) -> None:
        architecture = _refuse_unsupported(model)
        cfg = model.cfg
        self._model = model
        # HookedTransformer's norms have no input hook; the last block's output is that input.
        self._resid_final = f"blocks.{int(cfg.n_layers) - 1}.hook_resid_post"
        self._spec = ModelSpec(
            architecture=architecture,
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            d_model=int(cfg.d_model),
            d_head=int(cfg.d_head),
            d_mlp=0 if cfg.attn_only else int(cfg.d_mlp or 0),
            n_ctx=int(cfg.n_ctx),
            # shortformer adds positions to the attention inputs only, not to the residual
            has_pos_embed=cfg.positional_embedding_type == "standard",
            parallel=bool(cfg.parallel_attn_mlp),
            norm=_final_norm(model),
            dtype=model.W_U.dtype,
        )

    def unembed(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        return self._model.W_U[:, ids].T.detach(), self._model.b_U[ids].detach()

    def W_O(self, layer: int) -> Tensor:
        return self._model.blocks[layer].attn.W_O.detach()

    def b_O(self, layer: int) -> Tensor:
        return zeros_if_none(getattr(self._model.blocks[layer].attn, "b_O", None), self._spec)

    def W_out(self, layer: int) -> Tensor:
        return self._model.blocks[layer].mlp.W_out.detach()

    def b_out(self, layer: int) -> Tensor:
        return zeros_if_none(getattr(self._model.blocks[layer].mlp, "b_out", None), self._spec)
