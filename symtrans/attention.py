"""An attention score as an exact sum over (query term, key term) pairs.

With the first norm's scale ``σ1`` frozen at each position, a head's query at ``p`` and key at
``s`` are sums of pieces, one per term of the residual entering the block, plus the ``β1``
piece and the bias::

    q_p = R_p ( Σ_i γ1 ⊙ c(t_i(p)) / σ1_p W_Q  +  β1 W_Q  +  b_Q )
    k_s = R_s ( Σ_j γ1 ⊙ c(t_j(s)) / σ1_s W_K  +  β1 W_K  +  b_K )

(``R`` the rotary rotation at that position, the identity without rotary; it is linear, so it
is applied to each piece), and the pre-softmax score is
``<q_p, k_s> / scale = Σ_{i,j} <q_i, k_j> / scale``. Results hold numpy arrays only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import labels as lb
from .adapter.protocol import Hook, HookKey
from .decompose import _DTYPE_NAMES
from .errors import IdentityError, InvalidArgumentError, UnsupportedModelError
from .evaluate import ACCUMULATE
from .labels import KeyBias, Ln1Bias, QueryBias  # the constant pieces (also re-exported here)
from .norm import NormKind
from .paths import (
    AttentionAdapter,
    Trace,
    attention_adapter,
    block_input_terms,
    resolve_head,
    trace,
)
from .report.sheet import Reportable, Sheet
from .verify import default_tolerance

SCORE_ATOL = 1e-10  # float64 LayerNorm models
ROTATE_HALF = ("gpt_neox", "llama", "mistral")  # rotary as Hugging Face's rotate_half
NO_ROTARY = ("gpt2", "native", "hooked")  # "hooked": a HookedTransformer built from a config


ScoreNode = lb.Label | Ln1Bias | QueryBias | KeyBias


@dataclass(frozen=True, eq=False)
class ScoreDecomposition(Reportable):
    """The score of head ``(layer, head)`` from query position ``query_pos`` to key position
    ``key_pos``: ``values[i, j] = <query_pieces[i], key_pieces[j]> / attn_scale``."""

    layer: int
    head: int
    query_pos: int
    key_pos: int
    query_labels: tuple[ScoreNode, ...]
    key_labels: tuple[ScoreNode, ...]
    query_pieces: np.ndarray  # [n_query_terms, d_head], rotated
    key_pieces: np.ndarray  # [n_key_terms, d_head], rotated
    attn_scale: float
    values: np.ndarray  # [n_query_terms, n_key_terms]
    model_score: float  # blocks.{layer}.attn.hook_attn_scores[head, query_pos, key_pos]
    token_strings: tuple[str, ...] = ()
    dtype: str = "float64"  # the model's
    norm: NormKind = NormKind.LAYER  # the model's first norms

    @property
    def tolerance(self) -> float:
        """The default tolerance of :meth:`verify`: ``SCORE_ATOL``, or the documented one of
        the model's dtype and norm (:mod:`symtrans.verify`) where that is larger."""
        magnitude = float(np.abs(self.values).sum())
        return max(SCORE_ATOL, default_tolerance(self.dtype, self.norm, magnitude))

    def sheet(self, use_macros: bool = False) -> Sheet:
        from .report.analyses import scores_sheet

        return scores_sheet(self, use_macros=use_macros)

    @property
    def total(self) -> float:
        return float(self.values.sum())

    @property
    def error(self) -> float:
        return self.total - self.model_score

    def value(self, query: ScoreNode, key: ScoreNode) -> float:
        """The ``(query term, key term)`` piece of the score."""
        return float(
            self.values[
                self._index(self.query_labels, query, "query"),
                self._index(self.key_labels, key, "key"),
            ]
        )

    def cosine(self, query: ScoreNode, key: ScoreNode) -> float:
        """Cosine similarity of a query piece and a key piece, where the score is taken (after
        rotary), e.g. ``cosine(QueryBias(l, h), lb.Embed())`` with ``key_pos=0``: seed 000's
        "BOS key against the query bias"."""
        a = self.query_pieces[self._index(self.query_labels, query, "query")]
        b = self.key_pieces[self._index(self.key_labels, key, "key")]
        return cosine(a, b)

    def top(self, k: int) -> list[tuple[ScoreNode, ScoreNode, float]]:
        """The ``k`` pairs of largest ``|value|``, largest first."""
        flat = np.argsort(-np.abs(self.values), axis=None, kind="stable")[:k]
        rows, cols = np.unravel_index(flat, self.values.shape)
        return [
            (self.query_labels[i], self.key_labels[j], float(self.values[i, j]))
            for i, j in zip(rows, cols, strict=True)
        ]

    def verify(self, atol: float | None = None) -> ScoreDecomposition:
        atol = self.tolerance if atol is None else atol
        if not abs(self.error) <= atol:
            raise IdentityError(
                f"the {self.values.size} pieces of L{self.layer}H{self.head}'s score "
                f"{self.query_pos}→{self.key_pos} add up to {self.total:.12g} but the model's "
                f"score is {self.model_score:.12g} (difference {self.error:.3g}, tolerance "
                f"{atol:g}); in float32 or for RMSNorm models pass a larger atol"
            )
        return self

    @staticmethod
    def _index(labels: tuple[ScoreNode, ...], label: ScoreNode | str, side: str) -> int:
        for i, known in enumerate(labels):
            if known == label or str(known) == label:
                return i
        raise InvalidArgumentError(
            f"{label!r} is not a {side} term of this score; the {side} terms are "
            f"{', '.join(str(x) for x in labels)}"
        )


def cosine(a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """``<a, b> / (|a| |b|)`` of two vectors (``nan`` if one is zero)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denominator = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denominator if denominator > 0 else float("nan")


def attention_scores(
    model: Any,
    prompt: str | Sequence[int],
    layer: int,
    head: int,
    query_pos: int = -1,
    key_pos: int = 0,
) -> ScoreDecomposition:
    """Head ``(layer, head)``'s pre-softmax score from ``query_pos`` to ``key_pos`` (negative:
    from the end) as a sum over pairs of residual terms (embedding, earlier heads, ``b_O``,
    MLPs, the ``β1`` piece and ``b_Q`` / ``b_K``), checked against the model's own score."""
    adapter = attention_adapter(model)
    spec = adapter.spec
    resolve_head(lb.HeadOut(layer, head), spec.n_layers, spec.n_heads)
    tokens = adapter.tokenize(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
    n = len(tokens)
    p = query_pos + n if query_pos < 0 else query_pos
    s = key_pos + n if key_pos < 0 else key_pos
    if not 0 <= s <= p < n:
        raise InvalidArgumentError(
            f"need 0 <= key_pos <= query_pos < {n} (a causal head masks later keys); got "
            f"query_pos={query_pos}, key_pos={key_pos} for {n} tokens"
        )
    rotate = _rotary(adapter)
    extra = {HookKey(Hook.SCORES, layer, all_positions=True)}
    if rotate:
        extra |= {
            HookKey(Hook.ROT_COS, layer, all_positions=True),
            HookKey(Hook.ROT_SIN, layer, all_positions=True),
        }
    tr = trace(adapter, tokens, layer, frozenset(extra))
    scores = tr.run.activations[HookKey(Hook.SCORES, layer, all_positions=True)][0]
    _refuse_pattern_as_scores(adapter, scores, layer)
    q_labels, q = _pieces(adapter, tr, layer, head, p, "query", rotate)
    k_labels, k = _pieces(adapter, tr, layer, head, s, "key", rotate)
    scale = adapter.attn_scale()
    values = (q @ k.T) / scale
    return ScoreDecomposition(
        layer=layer,
        head=head,
        query_pos=p,
        key_pos=s,
        query_labels=q_labels,
        key_labels=k_labels,
        query_pieces=q.numpy(),
        key_pieces=k.numpy(),
        attn_scale=scale,
        values=values.numpy(),
        model_score=float(scores[head, p, s]),
        token_strings=tuple(adapter.token_strings(tokens)),
        dtype=_DTYPE_NAMES.get(spec.dtype, str(spec.dtype)),
        norm=spec.norm.kind,
    )


def _rotary(adapter: AttentionAdapter) -> bool:
    """Whether scores are taken after a rotate-half rotary; refuse other rotary forms."""
    arch = adapter.spec.architecture
    if adapter.spec.has_pos_embed and arch in NO_ROTARY:
        return False
    if arch in ROTATE_HALF:
        return True
    raise UnsupportedModelError(
        f"{arch}: attention-score decomposition supports learned positions (gpt2) and "
        f"rotate-half rotary ({', '.join(ROTATE_HALF)}); this model's rotary form has not "
        "been checked, and a wrong rotation would give a sum that does not add up"
    )


def _refuse_pattern_as_scores(adapter: AttentionAdapter, scores: Tensor, layer: int) -> None:
    """:class:`UnsupportedModelError` if the scores hook holds the softmaxed pattern (every
    entry in [0, 1], masked ones 0, each row summing to 1), not pre-softmax scores: then there
    is no model score to check the sum against. TransformerLens fires ``hook_attn_scores``
    with the pattern for attention modules it does not reimplement (TransformerBridge's GPT-J
    and ``boot_native`` models, TransformerLens 4.3)."""
    s = scores.to(ACCUMULATE)
    looks_like_pattern = (
        bool(torch.isfinite(s).all())
        and bool(((s >= 0) & (s <= 1)).all())
        and bool(torch.allclose(s.sum(dim=-1), torch.ones_like(s[..., 0]), rtol=0, atol=1e-3))
    )
    if looks_like_pattern:
        raise UnsupportedModelError(
            f"{adapter.spec.architecture}: blocks.{layer}.attn.hook_attn_scores holds the "
            "softmaxed attention pattern, not the pre-softmax scores (TransformerLens fires it "
            "after an attention module it does not reimplement returns), so there is no model "
            "score to check the sum against; attention-score decompositions need a model "
            "whose hook carries the scores (TransformerBridge GPT-2, GPT-NeoX, Llama; "
            "HookedTransformer)"
        )


def _pieces(
    adapter: AttentionAdapter,
    tr: Trace,
    layer: int,
    head: int,
    pos: int,
    side: str,
    rotate: bool,
) -> tuple[tuple[ScoreNode, ...], Tensor]:
    """The query (or key) pieces at ``pos``: labels and ``[pieces, d_head]`` float64."""
    if side == "query":
        W = adapter.W_Q(layer)[head].to(ACCUMULATE)
        bias = adapter.b_Q(layer)[head].to(ACCUMULATE)
        bias_label: ScoreNode = QueryBias(layer, head)
    else:
        W = adapter.W_K(layer)[head].to(ACCUMULATE)
        bias = adapter.b_K(layer)[head].to(ACCUMULATE)
        bias_label = KeyBias(layer, head)
    ln1 = adapter.ln1(layer).to(ACCUMULATE)
    terms = block_input_terms(tr, layer)
    labels: list[ScoreNode] = [label for label, _ in terms]
    stack = torch.stack([vectors[pos] for _, vectors in terms])  # [terms, d_model]
    normed = ln1.center(stack) / tr.ln1_scale[layer][pos]
    if ln1.gamma is not None:
        normed = normed * ln1.gamma
    rows = [normed @ W]
    if ln1.beta is not None:
        rows.append((ln1.beta @ W).unsqueeze(0))
        labels.append(Ln1Bias(layer))
    rows.append(bias.unsqueeze(0))
    labels.append(bias_label)
    pieces = torch.cat(rows)
    if rotate:
        cos = tr.run.activations[HookKey(Hook.ROT_COS, layer, all_positions=True)][0, pos]
        sin = tr.run.activations[HookKey(Hook.ROT_SIN, layer, all_positions=True)][0, pos]
        pieces = rotate_half(pieces, cos.to(ACCUMULATE), sin.to(ACCUMULATE))
    return tuple(labels), pieces


def rotate_half(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Hugging Face's rotary on the first ``rotary_dim = len(cos)`` dims of ``x``
    (``[..., d_head]``): ``x_r cos + rotate_half(x_r) sin``, the rest passed through."""
    dim = cos.shape[-1]
    x_rot, x_pass = x[..., :dim], x[..., dim:]
    half = dim // 2
    turned = torch.cat([-x_rot[..., half:], x_rot[..., :half]], dim=-1)
    return torch.cat([x_rot * cos + turned * sin, x_pass], dim=-1)
