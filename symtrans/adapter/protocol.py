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
    # Read at the destination (the self-checks, the layers split, post-norms, soft-caps):
    RESID_POST = "resid_post"  # [batch, d_model], the output of block `layer`
    ATTN_POST_SCALE = "attn_post_scale"  # [batch, 1], σ of the norm after the attention
    MLP_POST_SCALE = "mlp_post_scale"  # [batch, 1], σ of the norm after the MLP
    UNEMBED = "unembed"  # [batch, d_vocab], the logits before any soft-cap
    # Mixture-of-experts MLPs, at the destination:
    MLP_IN = "mlp_in"  # [batch, d_model], what the MLP reads
    EXPERT_WEIGHTS = "expert_weights"  # [batch, n_experts], the router's weights (0: unused)
    SHARED_GATE = "shared_gate"  # [batch, 1], the shared expert's gate before its sigmoid


@dataclass(frozen=True)
class HookKey:
    hook: Hook
    layer: int = -1  # -1 for hooks outside the blocks
    all_positions: bool = False  # keep every position (and every query row of a pattern)


@dataclass(frozen=True)
class Writer:
    """How a sublayer's raw output ``v`` (the heads' ``Σ z W_O + b_O``, the MLP's
    ``a W_out + b_out``) reaches the residual stream: ``multiplier · post(v)``, where ``post``
    is a norm after the sublayer (Gemma 2/3, OLMo 2) applied with its scale frozen at the
    value the forward pass computed (the hook ``scale``), or the identity."""

    multiplier: float = 1.0
    post: FinalNorm | None = None
    scale: Hook | None = None  # ATTN_POST_SCALE or MLP_POST_SCALE where there is a post-norm

    @property
    def identity(self) -> bool:
        return self.multiplier == 1.0 and self.post is None


@dataclass(frozen=True)
class MoEShape:
    """A mixture-of-experts MLP: how many experts, each one's width, and the shared
    expert's width (0: none)."""

    n_experts: int
    d_expert: int
    d_shared: int = 0


@dataclass(frozen=True)
class Experts:
    """The weights of a mixture-of-experts MLP: expert ``e`` writes
    ``down[e] (act(gate_up[e][:I] x) ⊙ gate_up[e][I:] x)``; the shared expert (if any)
    ``shared_down (act(shared_gate x) ⊙ shared_up x)``, gated by a sigmoid."""

    gate_up: Float[Tensor, "n_experts two_d_expert d_model"]
    down: Float[Tensor, "n_experts d_model d_expert"]
    act: Callable[[Tensor], Tensor]
    shared_gate: Float[Tensor, "d_shared d_model"] | None = None
    shared_up: Float[Tensor, "d_shared d_model"] | None = None
    shared_down: Float[Tensor, "d_model d_shared"] | None = None
    shared_act: Callable[[Tensor], Tensor] | None = None


@dataclass(frozen=True)
class Writers:
    attn: Writer = Writer()
    mlp: Writer = Writer()


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
    family: str = ""  # symtrans.adapter.families name; "" for an architecture not listed there
    # The splits this model is written exactly in (an unlisted architecture: "layers" only,
    # from residual differences).
    splits: tuple[str, ...] = ("layers", "components", "heads", "neurons", "positions")
    splits_note: str = ""  # why the splits missing from `splits` are not exact for this model
    writers: tuple[Writers, ...] = ()  # per layer; empty: every sublayer writes as it is
    logit_scale: float = 1.0  # logits = logit_scale · (LN(x) W_U + b_U) (Cohere, Granite)
    softcap: float | None = None  # logits = cap · tanh(linear logits / cap) (Gemma 2/3)
    norms_in_float32: bool = False  # Hugging Face computes the norms in float32
    moe: tuple[MoEShape | None, ...] = ()  # per layer; empty: no mixture-of-experts MLPs
    clip_qkv: float | None = None  # queries, keys and values clamped to ±this (OLMo, MPT)

    @property
    def has_mlp(self) -> bool:
        return self.d_mlp > 0

    def moe_at(self, layer: int) -> MoEShape | None:
        """Block ``layer``'s mixture-of-experts shape, or None for a dense MLP."""
        return self.moe[layer] if self.moe else None

    def writer(self, layer: int, sublayer: str) -> Writer:
        """How ``sublayer`` ("attn" or "mlp") of block ``layer`` writes to the residual."""
        if not self.writers:
            return Writer()
        pair = self.writers[layer]
        return pair.attn if sublayer == "attn" else pair.mlp


Patch = Callable[[Tensor], Tensor]
"""An intervention: the activation at a hook (every position, the whole batch) -> its
replacement, of the same shape."""

KeyValue = tuple[
    Float[Tensor, "batch kv_heads pos d_head"], Float[Tensor, "batch kv_heads pos d_head"]
]
KeyValues = tuple[KeyValue, ...]
"""Per block, the keys and values a forward pass cached (as the model caches them: after any
rotary, one per key/value head): what a pass started at a later position attends to."""


@dataclass(frozen=True)
class CellBatch:
    """Rows of one patching pass: row ``r`` is the corrupted prompt of pair ``pairs[r]``,
    resumed at block ``starts[r]`` (non-decreasing: rows join the pass block by block) with
    ``resid[r]`` entering that block. Nothing changes below position ``offset`` (attention is
    causal): ``resid[r, :offset]`` is the corrupted run's, and an adapter that can may run
    positions ``offset..`` only, attending to the corrupted run's keys and values ``prefix``.

    ``patches[HookKey(hook, l)]`` is applied at block ``l`` to the rows that start there
    (index 0: the first of them) at positions ``offset..`` (index 0: ``offset``); never at
    ``resid_pre``, which ``resid`` gives. ``columns[r]``: the vocabulary entries whose logits
    row ``r`` reads at the last position."""

    tokens: Int[Tensor, "pairs pos"]
    pairs: Int[Tensor, " rows"]
    starts: Int[Tensor, " rows"]
    offset: int
    resid: Float[Tensor, "rows pos d_model"]
    patches: Mapping[HookKey, Patch]
    columns: Int[Tensor, "rows k"]
    prefix: KeyValues | None = None  # the corrupted run's, where offset > 0

    @property
    def length(self) -> int:
        return int(self.tokens.shape[1])

    def starting(self, layer: int) -> slice:
        """The rows that start at block ``layer`` (contiguous: ``starts`` is sorted)."""
        starts = self.starts.tolist()
        if layer not in starts:
            return slice(0, 0)
        return slice(starts.index(layer), len(starts) - starts[::-1].index(layer))


@dataclass(frozen=True)
class RunResult:
    """One forward pass: logits at the destination positions and the requested activations."""

    logits: Float[Tensor, "batch d_vocab"]  # at the destination positions
    activations: Mapping[HookKey, Tensor]  # shapes as each Hook says


@dataclass(frozen=True)
class Readout:
    """One forward pass contracted with the read-out vector ``w = c(γ⊙u)`` where the model
    runs (an adapter whose weights are not here: nnsight on NDIF). ``projections[key]`` is
    what :class:`symtrans.trace.splits.Reading` would compute from the activation: ``<w, x>``
    (``[batch, 1]``) for the hooks of width ``d_model``, ``z · (W_O w)`` per head for ``Z``
    (``[batch, n_heads]``), ``a_n (W_out w)[n]`` for ``MLP_POST`` (``[batch, d_mlp]``),
    ``v_s · (W_O w)`` for ``V`` (``[batch, pos, n_heads]``), the pattern itself for
    ``PATTERN``. ``biases[HookKey(ATTN_OUT | MLP_OUT, layer)]``: ``<w, b_O>``, ``<w, b_out>``."""

    projections: Mapping[HookKey, Tensor]
    biases: Mapping[HookKey, Float[Tensor, " batch"]]
    scale: Float[Tensor, " batch"]  # σ(x^L_p)
    model_logits: Float[Tensor, " batch"]  # the model's logit (difference)
    beta_term: Float[Tensor, " batch"]  # <β, u>
    unembed_bias: Float[Tensor, " batch"]  # b_U (difference)


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


@dataclass(frozen=True)
class ScoreForm:
    """How block ``layer`` turns queries and keys into the scores its hook shows:
    ``softcap · tanh(<R q, R k> / scale / softcap)`` (no cap: ``<R q, R k> / scale``), ``R``
    the rotary rotation (``rotary="rotate_half"``) or none. ``refusal``: why the score is not
    written as a sum of pieces for this model (None: it is)."""

    scale: float
    rotary: str = "none"  # "none" or "rotate_half"
    softcap: float | None = None
    refusal: str | None = None


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
    def score_form(self, layer: int) -> ScoreForm: ...
    def ln1(self, layer: int) -> FinalNorm | None: ...


@runtime_checkable
class ReadoutAdapter(ModelAdapter, Protocol):
    """An adapter that computes the read-out projections where the model runs, so that only
    ``[batch, terms]``-sized numbers come back (nnsight on NDIF)."""

    remote: bool | str

    def readout(
        self,
        tokens: Int[Tensor, "batch pos"],
        positions: Int[Tensor, " batch"],
        keys: frozenset[HookKey],
        answer: Int[Tensor, " batch"],
        vs: Int[Tensor, " batch"] | None,
    ) -> Readout: ...


ATTENTION_METHODS = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "score_form", "ln1")


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

    @property
    def runs_cells(self) -> bool:
        """Whether :meth:`run_cells` can run a patching pass from its rows' blocks and
        position (False: :func:`symtrans.trace.run.forward_cells` runs :meth:`run_from`
        once per block instead)."""
        ...

    def key_values(self, tokens: Int[Tensor, "batch pos"]) -> KeyValues:
        """What a forward pass of ``tokens`` caches, for :attr:`CellBatch.prefix`."""
        ...

    def run_cells(self, batch: CellBatch) -> Float[Tensor, "rows k"]:
        """The logits ``batch.columns`` of every row of ``batch`` at the last position: each
        row runs only the blocks from its start on, and only positions ``offset..``."""
        ...
