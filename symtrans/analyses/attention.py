"""An attention score as an exact sum over (query term, key term) pairs.

With the first norm's scale ``σ1`` frozen at each position, a head's query at ``p`` and key at
``s`` are sums of pieces, one per term of the residual entering the block, plus the ``β1``
piece and the bias::

    q_p = R_p ( Σ_i γ1 ⊙ c(t_i(p)) / σ1_p W_Q  +  β1 W_Q  +  b_Q )
    k_s = R_s ( Σ_j γ1 ⊙ c(t_j(s)) / σ1_s W_K  +  β1 W_K  +  b_K )

(``R`` the rotary rotation at that position, the identity without rotary; it is linear, so it
is applied to each piece), and the pre-softmax score is
``<q_p, k_s> / scale = Σ_{i,j} <q_i, k_j> / scale``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from .. import labels as lb
from ..adapter import attention_adapter, dtype_name
from ..adapter.protocol import AttentionAdapter, Hook
from ..errors import InvalidArgumentError, UnsupportedModelError
from ..results.scores import ScoreDecomposition
from ..trace.blocks import BlockInputs, block_input_terms, block_inputs, every
from ..trace.inputs import resolve_head
from ..trace.splits import ACCUMULATE


def attention_scores(
    model: Any,
    prompt: str | Sequence[int],
    layer: int,
    head: int,
    query_pos: int = -1,
    key_pos: int = 0,
    check: bool = True,
) -> ScoreDecomposition:
    """Head ``(layer, head)``'s pre-softmax score from ``query_pos`` to ``key_pos`` (negative:
    from the end) as a sum over pairs of residual terms (embedding, earlier heads, ``b_O``,
    MLPs, the ``β1`` piece and ``b_Q`` / ``b_K``). With ``check`` (the default) the sum is
    checked against the model's own score before it is returned (``IdentityError``
    otherwise); a key the model masks (sliding window, local attention) is refused."""
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
    form = adapter.score_form(layer)
    if form.refusal is not None:
        raise UnsupportedModelError(
            f"{spec.architecture}: attention scores are not written as a sum of pieces for this "
            f"model: {form.refusal}"
        )
    rotate = form.rotary == "rotate_half"
    extra = {every(Hook.SCORES, layer)}
    if rotate:
        extra |= {every(Hook.ROT_COS, layer), every(Hook.ROT_SIN, layer)}
    tr = block_inputs(adapter, tokens, layer, frozenset(extra))
    scores = tr.act(Hook.SCORES, layer)
    _refuse_pattern_as_scores(adapter, scores, layer)
    q_labels, q = _pieces(adapter, tr, layer, head, p, "query", rotate)
    k_labels, k = _pieces(adapter, tr, layer, head, s, "key", rotate)
    model_score = float(scores[head, p, s])
    if not model_score > -1e30:  # -inf or the dtype's lowest: a masked key
        raise InvalidArgumentError(
            f"L{layer}H{head} cannot attend from position {p} to {s}: the model masks that key "
            "(a sliding window or local attention), so there is no score to decompose; pick a "
            "key within the window"
        )
    scale = form.scale
    values = (q @ k.T) / scale
    result = ScoreDecomposition(
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
        model_score=model_score,
        softcap=form.softcap,
        token_strings=tuple(adapter.token_strings(tokens)),
        dtype=dtype_name(spec.dtype),
        float32_norms=spec.norms_in_float32 or spec.norm.kind.value == "rmsnorm",
        norm=spec.norm.kind,
    )
    return result.verify() if check else result


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
    tr: BlockInputs,
    layer: int,
    head: int,
    pos: int,
    side: str,
    rotate: bool,
) -> tuple[tuple[lb.ScoreNode, ...], Float[Tensor, "pieces d_head"]]:
    """The query (or key) pieces at ``pos``: labels and ``[pieces, d_head]`` float64."""
    if side == "query":
        W = adapter.W_Q(layer)[head].to(ACCUMULATE)
        bias = adapter.b_Q(layer)[head].to(ACCUMULATE)
        bias_label: lb.ScoreNode = lb.QueryBias(layer, head)
    else:
        W = adapter.W_K(layer)[head].to(ACCUMULATE)
        bias = adapter.b_K(layer)[head].to(ACCUMULATE)
        bias_label = lb.KeyBias(layer, head)
    first = adapter.ln1(layer)
    ln1 = None if first is None else first.to(ACCUMULATE)
    terms = block_input_terms(tr, layer)
    labels: list[lb.ScoreNode] = [label for label, _ in terms]
    stack = torch.stack([vectors[pos] for _, vectors in terms])  # [terms, d_model]
    normed = stack if ln1 is None else ln1.center(stack) / tr.ln1_scale[layer][pos]
    if ln1 is not None and ln1.gamma is not None:
        normed = normed * ln1.gamma
    rows = [normed @ W]
    if ln1 is not None and ln1.beta is not None:
        rows.append((ln1.beta @ W).unsqueeze(0))
        labels.append(lb.Ln1Bias(layer))
    rows.append(bias.unsqueeze(0))
    labels.append(bias_label)
    pieces = torch.cat(rows)
    if rotate:
        cos = tr.act(Hook.ROT_COS, layer)[pos]
        sin = tr.act(Hook.ROT_SIN, layer)[pos]
        pieces = rotate_half(pieces, cos, sin)
    return tuple(labels), pieces


def rotate_half(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Hugging Face's rotary on the first ``rotary_dim = len(cos)`` dims of ``x``
    (``[..., d_head]``): ``x_r cos + rotate_half(x_r) sin``, the rest passed through."""
    dim = cos.shape[-1]
    x_rot, x_pass = x[..., :dim], x[..., dim:]
    half = dim // 2
    turned = torch.cat([-x_rot[..., half:], x_rot[..., :half]], dim=-1)
    return torch.cat([x_rot * cos + turned * sin, x_pass], dim=-1)
