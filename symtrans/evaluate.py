"""Numbers for every term: ``<c(γ⊙u), t_i>``, projected first.

The read-out vector ``w = c(γ⊙u)`` is formed once per prompt; a head's term is
``z · (W_O w)`` and a neuron's is ``a_n (W_out w)[n]``, so no ``[neurons, d_model]`` or
``[heads, d_model]`` tensor is ever built. Everything is computed in float64 from the model's
own activations, whatever the model's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import einops
import torch
from torch import Tensor

from .adapter.protocol import Hook, HookKey, ModelAdapter, RunResult
from .splits import Split

ACCUMULATE = torch.float64


@dataclass(frozen=True)
class Evaluation:
    """One group of prompts (same destination position) evaluated for one split."""

    values: Tensor  # [batch, terms]: each term's contribution <w, t_i> / σ
    beta_term: Tensor  # [batch]: <β, u>
    unembed_bias: Tensor  # [batch]: b_U (difference)
    scale: Tensor  # [batch]: σ(x^L_p), the frozen scale
    model_logits: Tensor  # [batch]: the model's own logit (or logit difference)


def _act(run: RunResult, hook: Hook, layer: int = -1) -> Tensor:
    return run.activations[HookKey(hook, layer)].to(ACCUMULATE)


def term_inner_products(
    adapter: ModelAdapter, run: RunResult, split: Split, w: Tensor, position: int
) -> Tensor:
    """``<w, t_i>`` for every term of ``split`` in the order of
    :func:`symtrans.splits.term_labels`. ``w``: ``[batch, d_model]`` -> ``[batch, terms]``."""
    spec = adapter.spec

    def dot(x: Tensor) -> Tensor:  # [batch, d_model] -> [batch, 1]
        return einops.einsum(x, w, "b m, b m -> b").unsqueeze(-1)

    cols = [dot(_act(run, Hook.EMBED))]
    if spec.has_pos_embed:
        cols.append(dot(_act(run, Hook.POS_EMBED)))
    for layer in range(spec.n_layers):
        if split == "layers":
            block = _act(run, Hook.ATTN_OUT, layer)
            if spec.has_mlp:
                block = block + _act(run, Hook.MLP_OUT, layer)
            cols.append(dot(block))
            continue
        if split in ("components", "neurons"):
            cols.append(dot(_act(run, Hook.ATTN_OUT, layer)))
        else:
            ov_w = einops.einsum(
                adapter.W_O(layer).to(ACCUMULATE), w, "h d m, b m -> b h d"
            )  # W_O w, per head
            b_O = adapter.b_O(layer).to(ACCUMULATE)
            if split == "heads":
                z = _act(run, Hook.Z, layer)  # [b, h, d]
                cols.append(einops.einsum(z, ov_w, "b h d, b h d -> b h"))
            else:
                pattern = _act(run, Hook.PATTERN, layer)[:, :, : position + 1]  # [b, h, s]
                v = _act(run, Hook.V, layer)[:, : position + 1]  # [b, s, h_kv, d]
                if v.shape[2] != spec.n_heads:  # grouped-query attention shares values
                    v = v.repeat_interleave(spec.n_heads // v.shape[2], dim=2)
                per_source = einops.einsum(v, ov_w, "b s h d, b h d -> b h s") * pattern
                cols.append(einops.rearrange(per_source, "b h s -> b (h s)"))
            cols.append(dot(b_O.expand_as(w)))
        if spec.has_mlp:
            if split == "neurons":
                W_out = adapter.W_out(layer).to(ACCUMULATE)  # [n, m]
                post = _act(run, Hook.MLP_POST, layer)  # [b, n]
                cols.append(post * einops.einsum(W_out, w, "n m, b m -> b n"))
                cols.append(dot(adapter.b_out(layer).to(ACCUMULATE).expand_as(w)))
            else:
                cols.append(dot(_act(run, Hook.MLP_OUT, layer)))
    return torch.cat(cols, dim=-1)


def first_non_finite(run: RunResult) -> tuple[str, int] | None:
    """The first activation (or the logits) holding NaN or inf, and the batch row, if any."""
    named = [("logits", run.logits)] + [
        (key.hook.value + ("" if key.layer < 0 else f" of block {key.layer}"), value)
        for key, value in run.activations.items()
    ]
    for name, value in named:
        bad = ~torch.isfinite(value.reshape(value.shape[0], -1)).all(dim=-1)
        if bool(bad.any()):
            return name, int(bad.nonzero()[0])
    return None


def unembed_direction(
    adapter: ModelAdapter, answer: Tensor, vs: Tensor | None
) -> tuple[Tensor, Tensor]:
    """``u = W_U[:, answer] - W_U[:, vs]`` as ``[batch, d_model]`` and ``b_U[answer] -
    b_U[vs]`` as ``[batch]``, float64 (no ``vs``: the answer's alone). ``answer``/``vs``:
    token ids ``[batch]``."""
    W_a, b_a = adapter.unembed(answer)
    u, b_U = W_a.to(ACCUMULATE), b_a.to(ACCUMULATE)
    if vs is not None:
        W_b, b_b = adapter.unembed(vs)
        u, b_U = u - W_b.to(ACCUMULATE), b_U - b_b.to(ACCUMULATE)
    return u, b_U


def evaluate(
    adapter: ModelAdapter,
    run: RunResult,
    split: Split,
    answer: Tensor,
    vs: Tensor | None,
    position: int,
) -> Evaluation:
    """Evaluate the identity for one group. ``answer``/``vs``: token ids ``[batch]``."""
    norm = adapter.spec.norm
    u, b_U = unembed_direction(adapter, answer, vs)
    logits = run.logits.to(ACCUMULATE)
    rows = torch.arange(logits.shape[0])
    model_logits = logits[rows, answer]
    if vs is not None:
        model_logits = model_logits - logits[rows, vs]
    norm64 = norm.to(ACCUMULATE)
    w = norm64.read_vector(u)
    scale = norm64.scale(_act(run, Hook.RESID_FINAL))
    values = term_inner_products(adapter, run, split, w, position) / scale.unsqueeze(-1)
    return Evaluation(
        values=values,
        beta_term=norm64.constant(u),
        unembed_bias=b_U,
        scale=scale,
        model_logits=model_logits,
    )
