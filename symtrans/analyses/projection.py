"""A head's output split along the unembedding of what it attends to (seed 001's ``project``).

Head ``(l, h)`` at destination ``p`` carries ``r_s = A_{p,s} v_s W_O`` from each source
``s ≤ p`` (``Σ_s r_s = H^{l,h}_p``). With a direction ``e_s`` per source (the unembedding
``W_U[:, t_s]`` of the source token by default; or one token's unembedding, or a given
vector, for every ``s``)::

    r_s = c_s e_s + (r_s - c_s e_s),     c_s = <r_s, e_s> / |e_s|²

and, summed over ``s``, ``H = P + Q`` (parallel, perpendicular). ``only_negative=True`` keeps
in ``P`` only the sources with ``c_s < 0`` (copy suppression: the head pushes down the token
it attends to); the other parallel parts go to ``Q``, so ``H = P + Q`` still.

The effects go through the direct path only, as in the seed: the final residual ``x^L_p`` is
changed and nothing after the head is rerun. For the full model (``x``), the projection only
(``x - H + P``), the perpendicular part only (``x - H + Q``) and the ablated head (``x - H``)
the logits of the whole vocabulary are ``LN(x') W_U + b_U``, with the scale frozen at
``σ(x^L_p)`` or recomputed from ``x'``; from them the logit of the decomposition's direction
and the cross-entropy of its answer at ``p``.
"""

from __future__ import annotations

from typing import Any

import einops
import torch
from torch import Tensor

from .. import labels as lb
from ..adapter import resolve
from ..adapter.protocol import Hook, HookKey, ModelAdapter
from ..errors import InvalidArgumentError
from ..norm import FinalNorm
from ..results.decomposition import Decomposition
from ..results.projection import Effect, Projection, SourcePart, head_indices
from ..trace.evaluate import answer_direction
from ..trace.inputs import resolve_head
from ..trace.run import forward
from ..trace.splits import ACCUMULATE, writer_hooks, written

SCALE_RTOL = 1e-6  # σ from the new run vs d.scale: a larger gap means another model or prompt


def _directions(adapter: ModelAdapter, d: Decomposition, onto: Any, n: int) -> tuple[Tensor, str]:
    """``[n, d_model]`` float64 directions ``e_s`` for sources ``0..n-1``, and their name."""
    spec = adapter.spec
    if isinstance(onto, str) and onto == "source":
        W, _ = adapter.unembed(torch.tensor(d.tokens[:n], dtype=torch.long))
        e, name = W.to(ACCUMULATE), "source"
    elif isinstance(onto, str):
        W, _ = adapter.unembed(torch.tensor([adapter.single_token(onto, "onto")]))
        e, name = W.to(ACCUMULATE).expand(n, -1), onto
    elif isinstance(onto, Tensor) and tuple(onto.shape) == (spec.d_model,):
        e, name = onto.detach().to(ACCUMULATE).expand(n, -1), "vector"
    else:
        shown = f"a tensor of shape {tuple(onto.shape)}" if isinstance(onto, Tensor) else repr(onto)
        raise InvalidArgumentError(
            f"onto must be 'source' (each source token's unembedding), a single-token string, "
            f"or a tensor of shape ({spec.d_model},), got {shown}"
        )
    zero = (e * e).sum(-1) == 0
    if bool(zero.any()):
        raise InvalidArgumentError(
            f"the direction for source position {int(zero.nonzero()[0])} is the zero vector, "
            "which has no parallel part; project onto a non-zero direction"
        )
    return e, name


def project(
    model: Any,
    d: Decomposition,
    head: lb.HeadOut | str,
    onto: str | Tensor = "source",
    only_negative: bool = False,
) -> Projection:
    """Split ``head``'s term of ``d`` (split ``"heads"`` or ``"positions"``) source by source
    into its part along ``onto`` and the rest, with the logit and loss at ``d.position`` when
    only the parallel part, only the perpendicular part or none of the head's output reaches
    the final norm. ``onto``: ``"source"`` (the unembedding of the token each source
    position holds), a single-token string, or a ``[d_model]`` tensor."""
    if not isinstance(only_negative, bool):
        raise InvalidArgumentError(f"only_negative must be True or False, got {only_negative!r}")
    adapter = resolve(model)
    spec = adapter.spec
    target = resolve_head(head, spec.n_layers, spec.n_heads)
    spots = head_indices(d, target)
    layer, h, p = target.layer, target.head, d.position
    keys = {HookKey(Hook.PATTERN, layer), HookKey(Hook.V, layer), HookKey(Hook.RESID_FINAL)}
    keys |= writer_hooks(spec, layer, "attn")
    run = forward(adapter, [list(d.tokens)], [p], keys, prompts=[d.prompt])
    norm = spec.norm.to(ACCUMULATE)
    x = run.activations[HookKey(Hook.RESID_FINAL)][0].to(ACCUMULATE)  # [d_model]
    scale = float(norm.scale(x))
    if abs(scale - d.scale) > SCALE_RTOL * d.scale:
        raise InvalidArgumentError(
            f"the model gives σ(x^L_p) = {scale:.12g} for this prompt but the decomposition "
            f"has {d.scale:.12g}; pass the model (and dtype) that d was decomposed from"
        )

    pattern = run.activations[HookKey(Hook.PATTERN, layer)][0, h, : p + 1].to(ACCUMULATE)  # [S]
    v = run.activations[HookKey(Hook.V, layer)][0, : p + 1].to(ACCUMULATE)  # [S, h, d_head]
    W_O = adapter.W_O(layer)[h].to(ACCUMULATE)  # [d_head, d_model]
    raw = pattern[:, None] * einops.einsum(v[:, h], W_O, "s d, d m -> s m")  # [S, d_model]
    r = written(spec, run, layer, "attn", raw, row=0)  # what each source adds to x^L_p
    e, name = _directions(adapter, d, onto, p + 1)  # [S, d_model]
    coef = (r * e).sum(-1) / (e * e).sum(-1)  # [S]
    kept = coef < 0 if only_negative else torch.ones_like(coef, dtype=torch.bool)
    par = (coef * kept)[:, None] * e  # [S, d_model]
    perp = r - par

    w = norm.read_vector(answer_direction(adapter, d.answer, d.vs))  # [d_model]
    par_values = (par @ w) / d.scale
    perp_values = (perp @ w) / d.scale
    sources = tuple(
        SourcePart(
            position=s,
            token=d.token_strings[s],
            attention=float(pattern[s]),
            coefficient=float(coef[s]),
            kept=bool(kept[s]),
            parallel=float(par_values[s]),
            perpendicular=float(perp_values[s]),
        )
        for s in range(p + 1)
    )
    H, P, Q = r.sum(0), par.sum(0), perp.sum(0)
    residuals = torch.stack([x, x - H + P, x - H + Q, x - H])  # [4, d_model]
    effects = _effects(adapter, d, norm, residuals, d.scale)
    return Projection(
        head=target,
        onto=name,
        only_negative=only_negative,
        sources=sources,
        head_value=float(sum(d.values[i] for i in spots)),
        full=effects[0],
        projection_only=effects[1],
        perpendicular_only=effects[2],
        ablated=effects[3],
        base=d,
    )


def _effects(
    adapter: ModelAdapter, d: Decomposition, norm: FinalNorm, residuals: Tensor, scale: float
) -> list[Effect]:
    """An :class:`Effect` per row of ``residuals`` (``[k, d_model]``): logits of the whole
    vocabulary through the final norm, frozen (``scale``) and recomputed."""
    W_U, b_U = adapter.unembed(torch.arange(adapter.d_vocab))  # [vocab, d_model], [vocab]
    W_U, b_U = W_U.to(ACCUMULATE), b_U.to(ACCUMULATE)
    normed = torch.cat([norm.frozen(residuals, scale), norm.apply(residuals)])  # [2k, d_model]
    logits = normed @ W_U.T + b_U  # [2k, vocab]
    answer = adapter.single_token(d.answer, "answer")
    logit = logits[:, answer]
    if d.vs is not None:
        logit = logit - logits[:, adapter.single_token(d.vs, "vs")]
    loss = -torch.log_softmax(logits, dim=-1)[:, answer]
    k = len(residuals)
    return [
        Effect(float(logit[i]), float(loss[i]), float(logit[k + i]), float(loss[k + i]))
        for i in range(k)
    ]
