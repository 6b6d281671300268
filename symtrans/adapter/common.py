"""What the two TransformerLens adapters share: tokenization, one cached forward pass, and the
checks that refuse a model whose logit is not a sum of residual terms.

Nothing here imports ``transformer_lens``: both APIs are reached by duck typing, so this
module (and :mod:`.bridge`, :mod:`.hooked`) imports cleanly under TransformerLens 2.x, 3.x
and 4.x alike.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from ..errors import InvalidArgumentError, TokenizationError, UnsupportedModelError
from .protocol import Hook, HookKey, ModelSpec, Patch, RunResult

# The dtypes a model may run in, by the names symtrans's options and reports use.
DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


def dtype_name(dtype: torch.dtype) -> str:
    """``"float64"`` for ``torch.float64``, and so on (``str(dtype)`` for others)."""
    for name, known in DTYPES.items():
        if known == dtype:
            return name
    return str(dtype)


# Hook names both APIs share; the final residual's name differs per API.
BLOCK_HOOKS = {
    Hook.ATTN_OUT: "blocks.{layer}.hook_attn_out",
    Hook.MLP_OUT: "blocks.{layer}.hook_mlp_out",
    Hook.Z: "blocks.{layer}.attn.hook_z",
    Hook.MLP_POST: "blocks.{layer}.mlp.hook_post",
    Hook.PATTERN: "blocks.{layer}.attn.hook_pattern",
    Hook.V: "blocks.{layer}.attn.hook_v",
    Hook.RESID_PRE: "blocks.{layer}.hook_resid_pre",
    Hook.LN1_SCALE: "blocks.{layer}.ln1.hook_scale",
    Hook.SCORES: "blocks.{layer}.attn.hook_attn_scores",
    Hook.ROT_COS: "blocks.{layer}.attn.hook_cos",
    Hook.ROT_SIN: "blocks.{layer}.attn.hook_sin",
    Hook.RESID_POST: "blocks.{layer}.hook_resid_post",
    Hook.ATTN_POST_SCALE: "blocks.{layer}.ln1_post.hook_scale",
    Hook.MLP_POST_SCALE: "blocks.{layer}.ln2_post.hook_scale",
    Hook.MLP_IN: "blocks.{layer}.mlp.hook_in",
    Hook.EXPERT_WEIGHTS: "blocks.{layer}.mlp.hook_expert_weights",
    Hook.SHARED_GATE: "blocks.{layer}.mlp.shared_expert_gate.hook_out",
}
# Hooks inside a mixture-of-experts MLP fire on the tokens flattened ([batch · pos, ...]).
FLAT_HOOKS = (Hook.EXPERT_WEIGHTS, Hook.SHARED_GATE)


def refuse_nonlinear_logits(
    architecture: str,
    *,
    softcap: float | None,
    logit_scale: float | None,
    has_final_norm: bool,
) -> None:
    """:class:`UnsupportedModelError` for a model whose logit is not
    ``<LN(x), u> + b_U`` with ``x`` a sum of residual terms."""
    if softcap is not None and softcap > 0:
        raise UnsupportedModelError(
            f"{architecture}: the final logits are soft-capped "
            f"({softcap:g}·tanh(logit/{softcap:g})), which is not a sum of terms; symtrans "
            "supports models whose logit is linear in the final norm's output. Decompose the "
            "pre-cap logit by loading the model with final_logit_softcapping=None (the numbers "
            "then differ from the capped model's)"
        )
    if logit_scale is not None and float(logit_scale) != 1.0:
        raise UnsupportedModelError(
            f"{architecture}: the logits are multiplied by logit_scale={float(logit_scale):g}, "
            "which symtrans does not model; the terms would not add up to the model's logit"
        )
    if not has_final_norm:
        raise UnsupportedModelError(
            f"{architecture}: the model has no final norm before the unembedding; symtrans "
            "writes the logit under a frozen final-norm scale and supports only models with a "
            "final LayerNorm or RMSNorm"
        )


def per_query_head(value: Tensor, n_heads: int, dim: int = 0) -> Tensor:
    """Grouped- and multi-query attention: ``value`` has one entry per key/value head along
    ``dim``; query head ``h`` reads key/value head ``h // (n_heads / n_kv)`` (Hugging Face's
    ``repeat_kv``), so each is repeated that many times. Unchanged when there is one per
    query head already."""
    n_kv = value.shape[dim]
    if n_kv == n_heads:
        return value
    if n_kv == 0 or n_heads % n_kv:
        raise UnsupportedModelError(
            f"the attention has {n_kv} key/value heads for {n_heads} query heads, which "
            "is not a grouping symtrans can read (n_heads must be a multiple of it)"
        )
    return value.repeat_interleave(n_heads // n_kv, dim=dim)


def zeros_if_none(value: Tensor | None, spec: ModelSpec) -> Tensor:
    """A bias-free projection (Llama's ``o_proj``, ``down_proj``) contributes nothing."""
    if value is None:
        return torch.zeros(spec.d_model, dtype=spec.dtype)
    return value.detach()


class TransformerLensAdapter:
    """The parts of :class:`~symtrans.adapter.protocol.ModelAdapter` both TransformerLens
    APIs implement the same way. Subclasses set ``_model``, ``_spec`` and ``_resid_final``
    (the hook name of the final norm's input) and the weight accessors."""

    _model: Any
    _spec: ModelSpec
    _resid_final: str
    _pos_embed_hook = "hook_pos_embed"

    @property
    def spec(self) -> ModelSpec:
        return self._spec

    @property
    def model(self) -> Any:
        return self._model

    @property
    def d_vocab(self) -> int:
        return int(self._model.W_U.shape[-1])  # [d_model, d_vocab] in both APIs

    @property
    def _tokenizer(self) -> Any:
        tokenizer = getattr(self._model, "tokenizer", None)
        if tokenizer is None:
            raise InvalidArgumentError(
                f"the {type(self._model).__name__} has no tokenizer; give it one "
                "(model.set_tokenizer(AutoTokenizer.from_pretrained(path))) so that prompts "
                "and answers can be tokenized"
            )
        return tokenizer

    def hook_name(self, key: HookKey) -> str:
        """The TransformerLens hook name of ``key``."""
        if key.hook is Hook.EMBED:
            return "hook_embed"
        if key.hook is Hook.POS_EMBED:
            return self._pos_embed_hook
        if key.hook is Hook.RESID_FINAL:
            return self._resid_final
        if key.hook is Hook.UNEMBED:
            return "hook_unembed"
        return BLOCK_HOOKS[key.hook].format(layer=key.layer)

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
        _ = self._tokenizer  # a clear error before to_tokens fails deep inside
        ids = self._model.to_tokens(prompt, truncate=False)[0].tolist()
        if len(ids) > self._spec.n_ctx:
            raise TokenizationError(
                f"the prompt is {len(ids)} tokens long but the model's context holds "
                f"{self._spec.n_ctx}; shorten the prompt"
            )
        return [int(i) for i in ids]

    def single_token(self, text: str, role: str) -> int:
        if not isinstance(text, str) or text == "":
            raise TokenizationError(f"{role} must be a non-empty string, got {text!r}")
        tokenizer = self._tokenizer
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) == 1:
            return int(ids[0])
        pieces = [tokenizer.decode([i]) for i in ids]
        alternatives = [text.strip(), " " + text.strip()]
        singles = [
            a for a in alternatives if len(tokenizer.encode(a, add_special_tokens=False)) == 1
        ]
        hint = (
            f"the single-token form {singles[0]!r} exists; pass that"
            if singles
            else f"pass one token, e.g. {pieces[0]!r}"
        )
        raise TokenizationError(
            f"{role} {text!r} is not a single token: it becomes {len(ids)} tokens {pieces}; {hint}"
        )

    def token_strings(self, ids: Sequence[int]) -> list[str]:
        tokenizer = self._tokenizer
        return [token_text(tokenizer, int(i)) for i in ids]

    def run(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None = None,
    ) -> RunResult:
        """One forward pass. Each hook function keeps only what its key asks for (the
        destination row; of a pattern, the destination query's row; every position for
        ``v`` and ``all_positions`` keys), so no ``[batch, pos, ...]`` activation outlives
        its block the way ``run_with_cache``'s cache keeps it. ``patches`` are registered
        before the keepers, so a key on a patched hook reads the replacement."""
        return self._hooked(tokens, positions, keys, patches, self._destination_logits)

    def _hooked(
        self,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None,
        logits_at: Callable[[Tensor, Tensor], Tensor],
    ) -> RunResult:
        """:meth:`run` with the pass itself given: ``logits_at(tokens, positions)`` runs the
        model (all of it, or from a block on) while the hooks are in place."""
        batch = torch.arange(tokens.shape[0])
        acts: dict[HookKey, Tensor] = {}
        patched: set[str] = set()

        def patcher(name: str, fn: Patch) -> Callable[..., Tensor]:
            def patch(value: Tensor, hook: Any = None) -> Tensor:
                patched.add(name)
                return fn(value)

            return patch

        def keeper(key: HookKey) -> Callable[..., Tensor]:
            def keep(value: Tensor, hook: Any = None) -> Tensor:
                kept = value.detach()
                if key.hook in FLAT_HOOKS:  # [batch · pos, ...] -> [batch, pos, ...]
                    kept = kept.reshape(tokens.shape[0], tokens.shape[1], *kept.shape[1:])
                if key.hook is Hook.V:  # [batch, pos, n_kv, d_head] -> one per query head
                    clip = self._spec.clip_qkv
                    if clip is not None:  # the hook is before the model's clamp
                        kept = kept.clamp(-clip, clip)
                    kept = per_query_head(kept, self._spec.n_heads, dim=2)
                if key.all_positions or key.hook is Hook.V:
                    acts[key] = kept
                elif key.hook is Hook.PATTERN:  # [batch, head, q, k] -> the destination row
                    acts[key] = kept[batch, :, positions, :]
                elif key.hook is Hook.UNEMBED and kept.shape[1] != tokens.shape[1]:
                    acts[key] = kept[:, -1]  # unembedded at the destination only
                else:  # [batch, pos, ...] -> [batch, ...]
                    acts[key] = kept[batch, positions]
                return value

            return keep

        named = [(self.hook_name(k), fn) for k, fn in (patches or {}).items()]
        hooks = [(name, patcher(name, fn)) for name, fn in named]
        hooks += [(self.hook_name(k), keeper(k)) for k in keys]
        with torch.no_grad(), self._model.hooks(fwd_hooks=hooks):
            logits = logits_at(tokens, positions)
        missing = sorted(
            {self.hook_name(k) for k in keys if k not in acts}
            | {name for name, _ in named if name not in patched}
        )
        if missing:
            raise UnsupportedModelError(
                f"{type(self._model).__name__}: the hooks {missing} did not fire in the "
                "forward pass, so the activations the identity needs were not seen"
            )
        return RunResult(logits=logits.detach(), activations=acts)

    def _destination_logits(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """``[batch, d_vocab]``: the model's own logits at the destination positions."""
        return self._model(tokens)[torch.arange(tokens.shape[0]), positions]


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet read backwards: the character standing for each byte."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars, extra = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return {ch: b for b, ch in enumerate(chars)}


_BYTE_DECODER = _byte_decoder()


def token_text(tokenizer: Any, token_id: int) -> str:
    """A token's text. A byte-level piece that is not a whole UTF-8 character (decoding it
    alone gives U+FFFD) keeps its bytes, as lone surrogates (Python's ``surrogateescape``),
    so reports print distinct sub-tokens distinctly (``<0xC3>``)."""
    text = str(tokenizer.decode([token_id]))
    if "\ufffd" not in text:
        return text
    piece = str(tokenizer.convert_ids_to_tokens(token_id))
    fallback = re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", piece)  # SentencePiece byte fallback
    if fallback:
        raw = bytes([int(fallback.group(1), 16)])
    elif piece and all(ch in _BYTE_DECODER for ch in piece):
        raw = bytes(_BYTE_DECODER[ch] for ch in piece)
    else:
        return text
    return raw.decode("utf-8", errors="surrogateescape")
