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
from .protocol import Hook, HookKey, ModelSpec, RunResult, ScoreForm

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
    return _norm(model.ln_final, model.cfg)


def _norm(ln: Any, cfg: Any) -> FinalNorm:
    """A norm module (``LayerNorm``, ``LayerNormPre``, ``RMSNorm``, ``RMSNormPre``) as it
    applies itself."""
    if type(ln).__name__ not in _NORMS:
        raise UnsupportedModelError(
            f"norm {type(ln).__name__} is not supported (expected one of {', '.join(_NORMS)})"
        )
    kind, affine = _NORMS[type(ln).__name__]
    gamma = getattr(ln, "w", None) if affine else None
    beta = getattr(ln, "b", None) if affine and kind is NormKind.LAYER else None
    return FinalNorm(
        kind=kind,
        eps=float(getattr(ln, "eps", cfg.eps)),
        d_model=int(cfg.d_model),
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

    # -- attention weights (symtrans.paths, symtrans.attention) ---------------------------------
    # GroupedQueryAttention's W_K, W_V, b_K, b_V already repeat each key/value head per
    # query head, so every accessor is [n_heads, ...].
    def W_Q(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_Q.detach()

    def W_K(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_K.detach()

    def W_V(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_V.detach()

    def b_Q(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._model.blocks[layer].attn.b_Q.detach()

    def b_K(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._model.blocks[layer].attn.b_K.detach()

    def b_V(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._model.blocks[layer].attn.b_V.detach()

    def score_form(self, layer: int) -> ScoreForm:
        """Block ``layer``'s scores: divided by its ``attn.attn_scale`` (per layer, so
        ``scale_attn_by_inverse_layer_idx`` is read as the model has it), rotate-half rotary
        where the model is rotary (the tables are checked when read), no cap."""
        cfg = self._model.cfg
        rotary = "rotate_half" if cfg.positional_embedding_type == "rotary" else "none"
        return ScoreForm(scale=float(self._model.blocks[layer].attn.attn_scale), rotary=rotary)

    def ln1(self, layer: int) -> FinalNorm:
        """The first norm of block ``layer`` (``γ``/``β`` ``None`` after ``fold_ln``); its
        scale is read from the forward pass (:attr:`Hook.LN1_SCALE`), not recomputed."""
        return _norm(self._model.blocks[layer].ln1, self._model.cfg)

    def run(
        self, tokens: Tensor, positions: Tensor, keys: frozenset[HookKey], *args: Any, **kw: Any
    ) -> RunResult:
        """The shared forward pass; the rotary tables, which HookedTransformer keeps as
        buffers (``attn.rotary_cos``/``rotary_sin``) and hooks nowhere, are read after it."""
        rotary = frozenset(k for k in keys if k.hook in (Hook.ROT_COS, Hook.ROT_SIN))
        run = super().run(tokens, positions, keys - rotary, *args, **kw)
        if not rotary:
            return run
        acts = dict(run.activations)
        batch, n = tokens.shape
        for key in rotary:
            table = self._rotary_table(key)  # [n_ctx, rotary_dim]
            acts[key] = table[:n].unsqueeze(0).expand(batch, -1, -1)
        return RunResult(logits=run.logits, activations=acts)

    def _rotary_table(self, key: HookKey) -> Tensor:
        cfg = self._model.cfg
        if cfg.positional_embedding_type != "rotary":
            raise UnsupportedModelError(
                f"{key.hook.value}: this HookedTransformer has "
                f"{cfg.positional_embedding_type!r} positions, not rotary"
            )
        if getattr(cfg, "rotary_adjacent_pairs", False) or getattr(
            cfg, "use_dynamic_ntk_rope", False
        ):
            raise UnsupportedModelError(
                "this HookedTransformer's rotary rotates adjacent pairs or rescales "
                "itself with the context (GPT-J style, dynamic NTK); attention-score "
                "decompositions read the rotate-half rotary of GPT-NeoX and Llama only"
            )
        attn = self._model.blocks[key.layer].attn
        table = attn.rotary_cos if key.hook is Hook.ROT_COS else attn.rotary_sin
        return table.detach()
