"""The small protocol between a model library and the rest of symtrans.

Everything downstream of the adapter speaks in :class:`Hook` keys, :class:`ModelSpec` and
plain tensors whose shapes the signatures give; only the modules of :mod:`symtrans.adapter`
know TransformerLens. Attention is presented per query head whatever the model shares:
grouped- and multi-query models have their key/value heads repeated here (Hugging Face's
``repeat_kv``), so nothing downstream ever sees a key/value head.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..norm import FinalNorm


class Hook(enum.Enum):
    """An activation the evaluation may ask for. ``DEST`` hooks are read at the destination
    position only; the others keep every position."""

    EMBED = "embed"  # [batch, d_model]
    POS_EMBED = "pos_embed"  # [batch, d_model]
    ATTN_OUT = "attn_out"  # [batch, d_model]
    MLP_OUT = "mlp_out"  # [batch, d_model]
    Z = "z"  # [batch, n_heads, d_head]
    MLP_POST = "mlp_post"  # [batch, d_mlp]
    PATTERN = "pattern"  # [batch, n_heads, pos] (the destination row)
    V = "v"  # [batch, pos, n_heads, d_head], one per query head
    RESID_FINAL = "resid_final"  # [batch, d_model], the input of the final norm
    # Read with HookKey(..., all_positions=True) (ablation, paths, attention):
    RESID_PRE = "resid_pre"  # [batch, pos, d_model], the input of block `layer`
    LN1_SCALE = "ln1_scale"  # [batch, pos, 1], σ of the first norm of block `layer`
    SCORES = "attn_scores"  # [batch, n_heads, q, k], scaled pre-softmax scores, masked
    ROT_COS = "rot_cos"  # [batch, pos, rotary_dim], rotary models on the bridge only
    ROT_SIN = "rot_sin"  # [batch, pos, rotary_dim]


@dataclass(frozen=True)
class HookKey:
    hook: Hook
    layer: int = -1  # -1 for hooks outside the blocks
    all_positions: bool = False  # keep every position (and every query row of a pattern)


@dataclass(frozen=True)
class ModelSpec:
    """What the identity needs to know about a model's shape."""

    architecture: str
    n_layers: int
    n_heads: int
    d_model: int
    d_head: int
    d_mlp: int  # 0 for attention-only models
    n_ctx: int
    has_pos_embed: bool
    parallel: bool
    norm: FinalNorm
    dtype: torch.dtype

    @property
    def has_mlp(self) -> bool:
        return self.d_mlp > 0


Patch = Callable[[Tensor], Tensor]
"""An intervention: the activation at a hook (every position, the whole batch) -> its
replacement, of the same shape."""


@dataclass(frozen=True)
class RunResult:
    """One forward pass: logits at the destination positions and the requested activations."""

    logits: Float[Tensor, "batch d_vocab"]  # at the destination positions
    activations: Mapping[HookKey, Tensor]  # shapes as each Hook says


@runtime_checkable
class ModelAdapter(Protocol):
    """What symtrans needs from a model, whatever library holds it."""

    @property
    def spec(self) -> ModelSpec: ...

    @property
    def model(self) -> Any: ...

    @property
    def d_vocab(self) -> int:
        """How many token ids the model unembeds (ids ``0 .. d_vocab - 1``)."""
        ...

    def tokenize(self, prompt: str) -> list[int]:
        """The token ids the model sees for ``prompt`` (BOS included where the model adds one)."""
        ...

    def single_token(self, text: str, role: str) -> int:
        """The id of ``text`` if it is one token; :class:`TokenizationError` otherwise."""
        ...

    def token_strings(self, ids: Sequence[int]) -> list[str]: ...

    def unembed(
        self, ids: Int[Tensor, " k"]
    ) -> tuple[Float[Tensor, "k d_model"], Float[Tensor, " k"]]:
        """``W_U[:, ids].T`` and ``b_U[ids]``."""
        ...

    def W_O(self, layer: int) -> Float[Tensor, "n_heads d_head d_model"]: ...

    def b_O(self, layer: int) -> Float[Tensor, " d_model"]: ...

    def W_out(self, layer: int) -> Float[Tensor, "d_mlp d_model"]: ...

    def b_out(self, layer: int) -> Float[Tensor, " d_model"]: ...

    def run(
        self,
        tokens: Int[Tensor, "batch pos"],
        positions: Int[Tensor, " batch"],
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None = None,
    ) -> RunResult:
        """Run ``tokens`` (``[batch, pos]``) once, caching only ``keys``; ``positions``
        (``[batch]``, non-negative) are the destination positions. ``patches`` replace
        activations during the pass (``all_positions`` of their keys is ignored: a patch
        sees every position); ``keys`` read the patched values."""
        ...


@runtime_checkable
class AttentionAdapter(ModelAdapter, Protocol):
    """An adapter that also gives the query/key/value weights (one row per query head) and
    the first norms: what path and attention-score decompositions read."""

    def W_Q(self, layer: int) -> Float[Tensor, "n_heads d_model d_head"]: ...
    def W_K(self, layer: int) -> Float[Tensor, "n_heads d_model d_head"]: ...
    def W_V(self, layer: int) -> Float[Tensor, "n_heads d_model d_head"]: ...
    def b_Q(self, layer: int) -> Float[Tensor, "n_heads d_head"]: ...
    def b_K(self, layer: int) -> Float[Tensor, "n_heads d_head"]: ...
    def b_V(self, layer: int) -> Float[Tensor, "n_heads d_head"]: ...
    def attn_scale(self) -> float: ...
    def ln1(self, layer: int) -> FinalNorm: ...


ATTENTION_METHODS = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "attn_scale", "ln1")


@runtime_checkable
class ResumableAdapter(ModelAdapter, Protocol):
    """An adapter that can start a forward pass at a block: what activation patching runs
    many times from the corrupted run's residual (``resumable`` False: it would run the
    blocks below too, and :func:`symtrans.trace.run.forward_from` does that instead)."""

    @property
    def resumable(self) -> bool: ...

    def run_from(
        self,
        layer: int,
        resid: Float[Tensor, "batch pos d_model"],
        tokens: Int[Tensor, "batch pos"],
        positions: Int[Tensor, " batch"],
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None = None,
    ) -> RunResult:
        """The forward pass of ``tokens`` from block ``layer`` on, its input replaced by
        ``resid``: the same numbers as :meth:`run` with ``resid_pre`` of block ``layer``
        patched to ``resid``, without running the blocks below. ``keys`` and ``patches``
        must be at block ``layer`` or after it (or the final residual)."""
        ...
