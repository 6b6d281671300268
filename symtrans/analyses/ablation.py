"""Ablation, exact: the logit when some terms are removed from the final residual ``x^L_p``.

With the frozen scale ``σ = σ(x^L_p)`` the logit is linear in the terms, so removing a set
``R`` gives ``total - Σ_{i∈R} value_i``. With the scale recomputed from what is left,

    logit' = (Σ_{i∉R} value_i) · σ / σ(x^L_p - r) + <β, u> + b_U,    r = Σ_{i∈R} t_i

which needs the removed terms' vectors ``t_i`` at the destination position, and ``x^L_p``. One
forward pass caching only the activations those labels need gives them: a head's ``z W_O``,
a neuron's ``a_n W_out[n]``, a source position's ``A_{p,s} v_s W_O``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import singledispatch
from typing import Any

import einops
import numpy as np
import torch
from torch import Tensor

from .. import labels as lb
from ..adapter import resolve
from ..adapter.protocol import Hook, HookKey, ModelAdapter, ModelSpec, RunResult
from ..errors import InvalidArgumentError
from ..results.decomposition import Decomposition
from ..trace.run import forward
from ..trace.splits import ACCUMULATE, expert_activations, moe_hooks, writer_hooks, written

SCALE_RTOL = 1e-6  # σ from a new run vs d.scale: a larger gap means another model or prompt


def resolve_labels(d: Decomposition, labels: Iterable[lb.Label | str]) -> list[lb.Label]:
    """The labels of ``d`` named by ``labels`` (typed labels, or their TL-style strings)."""
    by_name = {str(label): label for label in d.labels}
    known = set(d.labels)
    out: list[lb.Label] = []
    for item in labels:
        label = by_name.get(item) if isinstance(item, str) else item
        if label is None or label not in known:
            sample = ", ".join(str(x) for x in d.labels[:6])
            raise InvalidArgumentError(
                f"{item!r} is not a term of this decomposition (split={d.split!r}; its terms "
                f"are {sample}, ...); pass labels from d.labels, or decompose with the split "
                "that has this term"
            )
        if label in out:
            raise InvalidArgumentError(f"{item!r} is given twice; each term can be removed once")
        out.append(label)
    return out


def ablate(
    d: Decomposition,
    labels: Iterable[lb.Label | str],
    renormalize: bool = False,
    model: Any = None,
) -> float:
    """The logit (or logit difference) of ``d`` with the terms ``labels`` removed from
    ``x^L_p``. ``renormalize=False`` keeps the frozen scale ``σ``; ``renormalize=True``
    recomputes it from the residual that is left and needs ``model`` (the one ``d`` came
    from) for the removed terms' vectors."""
    chosen = resolve_labels(d, labels)
    index = {label: i for i, label in enumerate(d.labels)}
    removed = float(sum(d.values[index[label]] for label in chosen))
    kept = float(np.sum(d.values)) - removed
    if not renormalize:
        return kept + d.constant
    if model is None:
        raise InvalidArgumentError(
            "ablate(..., renormalize=True) recomputes the final norm's scale from the residual "
            "minus the removed terms, which needs their vectors; pass model= (the model d was "
            "decomposed from)"
        )
    adapter = resolve(model)
    r, x = removed_vector(adapter, d, chosen)
    norm = adapter.spec.norm.to(ACCUMULATE)
    new_scale = float(norm.scale(x - r))
    return kept * d.scale / new_scale + d.constant


def removed_vector(
    adapter: ModelAdapter, d: Decomposition, labels: list[lb.Label]
) -> tuple[Tensor, Tensor]:
    """``(Σ_{label} t_label, x^L_p)``, both ``[d_model]`` float64, from one forward pass of
    ``d.tokens`` caching only what the labels need."""
    keys = {HookKey(Hook.RESID_FINAL)}
    for label in labels:
        keys |= _hooks(label, adapter.spec)
    run = forward(adapter, [list(d.tokens)], [d.position], keys, prompts=[d.prompt])
    x = run.activations[HookKey(Hook.RESID_FINAL)][0].to(ACCUMULATE)
    scale = float(adapter.spec.norm.to(ACCUMULATE).scale(x))
    if abs(scale - d.scale) > SCALE_RTOL * d.scale:
        raise InvalidArgumentError(
            f"the model gives σ(x^L_p) = {scale:.12g} for this prompt but the decomposition "
            f"has {d.scale:.12g}; pass the model (and dtype) that d was decomposed from"
        )
    r = torch.zeros_like(x)
    for label in labels:
        r = r + _vector(label, adapter, run)
    return r, x


def _act(run: RunResult, hook: Hook, layer: int = -1) -> Tensor:
    """The destination row of one cached activation, float64, batch of one dropped."""
    return run.activations[HookKey(hook, layer)][0].to(ACCUMULATE)


# -- what each label needs, and its vector at the destination position ----------------------


@singledispatch
def _hooks(label: object, spec: ModelSpec) -> set[HookKey]:
    return set()  # a rewritten term: _vector says why it has no vector


@_hooks.register
def _(label: lb.Embed, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.EMBED)}


@_hooks.register
def _(label: lb.PosEmbed, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.POS_EMBED)}


@_hooks.register
def _(label: lb.BlockOut, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.RESID_PRE, label.layer), HookKey(Hook.RESID_POST, label.layer)}


@_hooks.register
def _(label: lb.AttnOut, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.ATTN_OUT, label.layer)}


@_hooks.register
def _(label: lb.MlpOut, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.MLP_OUT, label.layer)}


@_hooks.register
def _(label: lb.HeadOut, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.Z, label.layer)} | writer_hooks(spec, label.layer, "attn")


@_hooks.register
def _(label: lb.HeadSource, spec: ModelSpec) -> set[HookKey]:
    hooks = {HookKey(Hook.PATTERN, label.layer), HookKey(Hook.V, label.layer)}
    return hooks | writer_hooks(spec, label.layer, "attn")


@_hooks.register
def _(label: lb.Neuron, spec: ModelSpec) -> set[HookKey]:
    return {HookKey(Hook.MLP_POST, label.layer)} | writer_hooks(spec, label.layer, "mlp")


@_hooks.register
def _(label: lb.AttnBias, spec: ModelSpec) -> set[HookKey]:
    return writer_hooks(spec, label.layer, "attn")


@_hooks.register
def _(label: lb.MlpBias, spec: ModelSpec) -> set[HookKey]:
    return writer_hooks(spec, label.layer, "mlp")


@_hooks.register
def _(
    label: lb.Expert | lb.ExpertNeuron | lb.SharedExpert | lb.SharedNeuron, spec: ModelSpec
) -> set[HookKey]:
    return moe_hooks(spec, label.layer)


@singledispatch
def _vector(label: object, adapter: ModelAdapter, run: RunResult) -> Tensor:
    raise InvalidArgumentError(
        f"{label!r} has no vector to remove from the residual stream (it is a rewritten term); "
        "ablate with renormalize=False, or decompose again and ablate the original terms"
    )


def _write(adapter: ModelAdapter, run: RunResult, layer: int, sublayer: str, raw: Tensor) -> Tensor:
    """A raw piece of a sublayer's output as what it adds to the residual stream."""
    return written(adapter.spec, run, layer, sublayer, raw, row=0)


@_vector.register
def _(label: lb.Embed, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _act(run, Hook.EMBED)


@_vector.register
def _(label: lb.PosEmbed, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _act(run, Hook.POS_EMBED)


@_vector.register
def _(label: lb.BlockOut, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _act(run, Hook.RESID_POST, label.layer) - _act(run, Hook.RESID_PRE, label.layer)


@_vector.register
def _(label: lb.AttnOut, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _act(run, Hook.ATTN_OUT, label.layer)


@_vector.register
def _(label: lb.MlpOut, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _act(run, Hook.MLP_OUT, label.layer)


@_vector.register
def _(label: lb.HeadOut, adapter: ModelAdapter, run: RunResult) -> Tensor:
    z = _act(run, Hook.Z, label.layer)[label.head]  # [d_head]
    raw = z @ adapter.W_O(label.layer)[label.head].to(ACCUMULATE)
    return _write(adapter, run, label.layer, "attn", raw)


@_vector.register
def _(label: lb.HeadSource, adapter: ModelAdapter, run: RunResult) -> Tensor:
    weight = _act(run, Hook.PATTERN, label.layer)[label.head, label.source]
    v = run.activations[HookKey(Hook.V, label.layer)][0].to(ACCUMULATE)  # [pos, h, d]
    W_O = adapter.W_O(label.layer)[label.head].to(ACCUMULATE)
    raw = weight * einops.einsum(v[label.source, label.head], W_O, "d, d m -> m")
    return _write(adapter, run, label.layer, "attn", raw)


@_vector.register
def _(label: lb.AttnBias, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _write(adapter, run, label.layer, "attn", adapter.b_O(label.layer).to(ACCUMULATE))


@_vector.register
def _(label: lb.Neuron, adapter: ModelAdapter, run: RunResult) -> Tensor:
    a = _act(run, Hook.MLP_POST, label.layer)[label.neuron]
    raw = a * adapter.W_out(label.layer)[label.neuron].to(ACCUMULATE)
    return _write(adapter, run, label.layer, "mlp", raw)


@_vector.register
def _(label: lb.MlpBias, adapter: ModelAdapter, run: RunResult) -> Tensor:
    return _write(adapter, run, label.layer, "mlp", adapter.b_out(label.layer).to(ACCUMULATE))


@_vector.register
def _(label: lb.Expert | lb.ExpertNeuron, adapter: ModelAdapter, run: RunResult) -> Tensor:
    acts, experts = expert_activations(adapter, run, label.layer)
    hidden = acts.weights[0, label.expert] * acts.hidden[0, label.expert]  # [d_expert]
    down = experts.down[label.expert].to(ACCUMULATE)  # [d_model, d_expert]
    if isinstance(label, lb.ExpertNeuron):
        raw = hidden[label.neuron] * down[:, label.neuron]
    else:
        raw = down @ hidden
    return _write(adapter, run, label.layer, "mlp", raw)


@_vector.register
def _(label: lb.SharedExpert | lb.SharedNeuron, adapter: ModelAdapter, run: RunResult) -> Tensor:
    acts, experts = expert_activations(adapter, run, label.layer)
    assert acts.shared is not None and acts.shared_gate is not None
    assert experts.shared_down is not None
    hidden = acts.shared_gate[0] * acts.shared[0]  # [d_shared]
    down = experts.shared_down.to(ACCUMULATE)  # [d_model, d_shared]
    if isinstance(label, lb.SharedNeuron):
        raw = hidden[label.neuron] * down[:, label.neuron]
    else:
        raw = down @ hidden
    return _write(adapter, run, label.layer, "mlp", raw)
