"""Adapter for TransformerLens's ``TransformerBridge`` (TransformerLens 3.x and 4.x).

The bridge wraps the Hugging Face module itself, so its hooks see exactly the numbers of
Hugging Face's own forward pass. This is the only module (with :mod:`.loading`) that imports
``transformer_lens``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidArgumentError, TokenizationError, UnsupportedModelError
from ..norm import FinalNorm, NormKind
from .protocol import Hook, HookKey, ModelSpec, RunResult

# Architectures whose block layout the identity has been checked against (tests/).
SUPPORTED_ARCHITECTURES = {
    "GPT2LMHeadModel": "gpt2",
    "GPTNeoXForCausalLM": "gpt_neox",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "GPTJForCausalLM": "gptj",
    "GPTNeoForCausalLM": "gpt_neo",
    "NativeModel": "native",
}

_DEST_HOOKS = {
    Hook.EMBED: "hook_embed",
    Hook.POS_EMBED: "hook_pos_embed",
    Hook.RESID_FINAL: "ln_final.hook_in",
}
_BLOCK_HOOKS = {
    Hook.ATTN_OUT: "blocks.{layer}.hook_attn_out",
    Hook.MLP_OUT: "blocks.{layer}.hook_mlp_out",
    Hook.Z: "blocks.{layer}.attn.hook_z",
    Hook.MLP_POST: "blocks.{layer}.mlp.hook_post",
    Hook.PATTERN: "blocks.{layer}.attn.hook_pattern",
    Hook.V: "blocks.{layer}.attn.hook_v",
}


def hook_name(key: HookKey) -> str:
    """The TransformerLens hook name of ``key``."""
    if key.hook in _DEST_HOOKS:
        return _DEST_HOOKS[key.hook]
    return _BLOCK_HOOKS[key.hook].format(layer=key.layer)


def _hf_config(bridge: Any) -> Any:
    model = getattr(bridge, "original_model", None)
    return getattr(model, "config", None)


def _refuse_unsupported(bridge: Any) -> str:
    """The architecture name, or :class:`UnsupportedModelError` naming the missing piece."""
    cfg = bridge.cfg
    arch = str(getattr(cfg, "original_architecture", None) or type(bridge.original_model).__name__)
    if arch not in SUPPORTED_ARCHITECTURES:
        raise UnsupportedModelError(
            f"architecture {arch!r} is not supported: its block layout has not been checked "
            f"against the exact identity (supported: {', '.join(sorted(SUPPORTED_ARCHITECTURES))}); "
            "symtrans refuses rather than return a sum that may not add up"
        )
    hf = _hf_config(bridge)
    softcap = getattr(cfg, "output_logits_soft_cap", -1.0) or -1.0
    hf_softcap = getattr(hf, "final_logit_softcapping", None) if hf is not None else None
    if softcap > 0 or hf_softcap:
        raise UnsupportedModelError(
            f"{arch}: the logits are soft-capped (tanh), which is not a sum of terms; "
            "decompose the pre-cap logit instead by loading the model without soft-capping"
        )
    if hf is not None and getattr(hf, "logit_scale", None) not in (None, 1, 1.0):
        raise UnsupportedModelError(
            f"{arch}: the logits are scaled by logit_scale={hf.logit_scale}, which symtrans "
            "does not model yet"
        )
    if getattr(bridge, "ln_final", None) is None:
        raise UnsupportedModelError(f"{arch}: the model has no final norm (ln_final)")
    return arch


def _final_norm(bridge: Any) -> FinalNorm:
    cfg = bridge.cfg
    norm_type = str(getattr(cfg, "final_rms", False) and "RMS" or cfg.normalization_type)
    if norm_type in ("LN", "LNPre"):
        kind = NormKind.LAYER
    elif norm_type in ("RMS", "RMSPre"):
        kind = NormKind.RMS
    else:
        raise UnsupportedModelError(
            f"final norm of type {norm_type!r} is not supported (expected LayerNorm or RMSNorm)"
        )
    module = getattr(bridge.ln_final, "_original_component", bridge.ln_final)
    gamma = getattr(module, "weight", None)
    beta = getattr(module, "bias", None)
    if norm_type.endswith("Pre"):
        gamma = beta = None
    eps = getattr(module, "eps", None) or getattr(module, "variance_epsilon", None) or cfg.eps
    return FinalNorm(
        kind=kind,
        eps=float(eps),
        d_model=int(cfg.d_model),
        gamma=None if gamma is None else gamma.detach(),
        beta=None if beta is None else beta.detach(),
    )


class BridgeAdapter:
    """A :class:`~symtrans.adapter.protocol.ModelAdapter` over a ``TransformerBridge``."""

    def __init__(self, bridge: Any) -> None:
        arch = _refuse_unsupported(bridge)
        cfg = bridge.cfg
        self._bridge = bridge
        self._spec = ModelSpec(
            architecture=SUPPORTED_ARCHITECTURES[arch],
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            d_model=int(cfg.d_model),
            d_head=int(cfg.d_head),
            d_mlp=0 if getattr(cfg, "attn_only", False) else int(cfg.d_mlp or 0),
            n_ctx=int(cfg.n_ctx),
            has_pos_embed=getattr(bridge, "pos_embed", None) is not None
            and cfg.positional_embedding_type == "standard",
            parallel=bool(getattr(cfg, "parallel_attn_mlp", False)),
            norm=_final_norm(bridge),
            dtype=bridge.W_U.dtype,
        )

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def model(self) -> Any:
        return self._bridge

    def tokenize(self, prompt: str) -> list[int]:
        if not isinstance(prompt, str):
            raise InvalidArgumentError(
                f"a prompt must be a str, got {type(prompt).__name__}: {prompt!r}"
            )
        if prompt == "":
            raise TokenizationError(
                "the prompt is empty; give the text the model should read, "
                "e.g. 'Dublin is the capital city of'"
            )
        ids = self._bridge.to_tokens(prompt, truncate=False)[0].tolist()
        if len(ids) > self._spec.n_ctx:
            raise TokenizationError(
                f"the prompt is {len(ids)} tokens long but the model's context holds "
                f"{self._spec.n_ctx}; shorten the prompt"
            )
        return [int(i) for i in ids]

    def single_token(self, text: str, role: str) -> int:
        if not isinstance(text, str) or text == "":
            raise TokenizationError(f"{role} must be a non-empty string, got {text!r}")
        tokenizer = self._bridge.tokenizer
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0])
        pieces = [tokenizer.decode([i]) for i in ids]
        alternatives = [text.strip(), " " + text.strip()]
        singles = [a for a in alternatives if len(tokenizer.encode(a, add_special_tokens=False)) == 1]
        hint = (
            f"the single-token form {singles[0]!r} exists; pass that"
            if singles
            else f"pass one token, e.g. {pieces[0]!r}"
        )
        raise TokenizationError(
            f"{role} {text!r} is not a single token: it becomes {len(ids)} tokens {pieces}; {hint}"
        )

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        tokenizer = self._bridge.tokenizer
        return [tokenizer.decode([int(i)]) for i in ids]

    def unembed(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        W_U = self._bridge.W_U  # [d_model, d_vocab]
        b_U = self._bridge.b_U
        return W_U[:, ids].T.detach(), b_U[ids].detach()

    def W_O(self, layer: int) -> Tensor:
        return self._bridge.W_O[layer].detach()

    def b_O(self, layer: int) -> Tensor:
        b = self._bridge.blocks[layer].attn.b_O
        return torch.zeros(self._spec.d_model, dtype=self._spec.dtype) if b is None else b.detach()

    def W_out(self, layer: int) -> Tensor:
        return self._bridge.W_out[layer].detach()

    def b_out(self, layer: int) -> Tensor:
        b = self._bridge.blocks[layer].mlp.b_out
        return torch.zeros(self._spec.d_model, dtype=self._spec.dtype) if b is None else b.detach()

    def run(self, tokens: Tensor, positions: Tensor, keys: frozenset[HookKey]) -> RunResult:
        names = {hook_name(k): k for k in keys}
        batch = torch.arange(tokens.shape[0])
        with torch.no_grad():
            logits, cache = self._bridge.run_with_cache(
                tokens, names_filter=lambda name: name in names
            )
        acts: dict[HookKey, Tensor] = {}
        for name, key in names.items():
            value = cache[name]
            if key.hook is Hook.PATTERN:  # [batch, head, q, k] -> the destination row
                acts[key] = value[batch, :, positions, :]
            elif key.hook is Hook.V:
                acts[key] = value
            else:
                acts[key] = value[batch, positions]
        return RunResult(logits=logits[batch, positions].detach(), activations=acts)
