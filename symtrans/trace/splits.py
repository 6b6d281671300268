"""The splits of the residual stream, each defined once: its terms in model order, the
activations they need, and how each term is evaluated.

A split is a sequence of :class:`Piece` s. A piece names a run of terms (its labels), the
hooks it reads, and a function giving those terms' inner products with a read vector ``w``
(``[batch, d_model]`` -> ``[batch, len(labels)]``); labels and values come from the same
piece, so they cannot drift apart. Every split is an exact sum: ``x^L_p = Σ_i t_i``.
Evaluation projects first: a head's term is ``z · (W_O w)`` and a neuron's
``a_n (W_out w)[n]``, so no ``[heads, d_model]`` or ``[neurons, d_model]`` tensor is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from .. import labels as lb
from ..adapter.protocol import (
    Experts,
    Hook,
    HookKey,
    ModelAdapter,
    ModelSpec,
    Readout,
    RunResult,
)
from ..errors import UnsupportedModelError
from ..kinds import Split

ACCUMULATE = torch.float64


class Reading:
    """What a piece evaluates against: the projections of the hooks onto the read vector
    ``w`` (``[batch, d_model]``) at the destination position. :class:`HostReading` contracts
    the adapter's activations with ``w`` here; :class:`ProjectedReading` takes the same
    numbers computed where the model runs (:meth:`ReadoutAdapter.readout`)."""

    def project(self, hook: Hook, layer: int = -1) -> Tensor:
        """``<w, x>`` (``[batch, 1]``) for a hook of width ``d_model``; ``z · (W_O w)`` per
        head for ``Z`` (``[batch, n_heads]``); ``a_n (W_out w)[n]`` for ``MLP_POST``
        (``[batch, d_mlp]``); ``v_s · (W_O w)`` for ``V`` (``[batch, pos, n_heads]``)."""
        raise NotImplementedError

    def bias(self, hook: Hook, layer: int) -> Float[Tensor, "batch 1"]:
        """``<w, b_O>`` (``hook`` ATTN_OUT) or ``<w, b_out>`` (MLP_OUT) of block ``layer``."""
        raise NotImplementedError

    def act(self, hook: Hook, layer: int = -1) -> Tensor:
        """A cached activation that is not projected (the pattern), float64."""
        raise NotImplementedError


@dataclass(frozen=True)
class HostReading(Reading):
    """One forward pass's activations, the read vector ``w`` per prompt, and the weights,
    contracted here in float64."""

    adapter: ModelAdapter
    run: RunResult
    w: Float[Tensor, "batch d_model"]
    position: int

    def act(self, hook: Hook, layer: int = -1) -> Tensor:
        return self.run.activations[HookKey(hook, layer)].to(ACCUMULATE)

    def dot(self, x: Float[Tensor, "batch d_model"]) -> Float[Tensor, "batch 1"]:
        return einops.einsum(x, self.w, "b m, b m -> b").unsqueeze(-1)

    def read(self, layer: int, sublayer: str) -> Float[Tensor, "batch d_model"]:
        """The vector a raw output of ``sublayer`` ("attn" or "mlp") of block ``layer`` is read
        with: ``<w, multiplier · post(v)> = <read, v>``, the post-norm's scale frozen at the
        value the forward pass computed (``w`` itself where the sublayer writes as it is)."""
        return read_vector(self.adapter.spec, self.run, self.w, layer, sublayer)

    def per_head(self, layer: int) -> Float[Tensor, "batch n_heads d_head"]:
        """``W_O r`` for every head of ``layer`` (``r`` the attention's read vector)."""
        W_O = self.adapter.W_O(layer).to(ACCUMULATE)
        return einops.einsum(W_O, self.read(layer, "attn"), "h d m, b m -> b h d")

    def project(self, hook: Hook, layer: int = -1) -> Tensor:
        if hook is Hook.Z:
            return einops.einsum(
                self.act(Hook.Z, layer), self.per_head(layer), "b h d, b h d -> b h"
            )
        if hook is Hook.V:  # [b, s, h, d], one per query head
            return einops.einsum(
                self.act(Hook.V, layer), self.per_head(layer), "b s h d, b h d -> b s h"
            )
        if hook is Hook.MLP_POST:
            W_out = self.adapter.W_out(layer).to(ACCUMULATE)  # [n, m]
            read = self.read(layer, "mlp")
            return self.act(hook, layer) * einops.einsum(W_out, read, "n m, b m -> b n")
        return self.dot(self.act(hook, layer))

    def bias(self, hook: Hook, layer: int) -> Float[Tensor, "batch 1"]:
        attn = hook is Hook.ATTN_OUT
        b = (self.adapter.b_O(layer) if attn else self.adapter.b_out(layer)).to(ACCUMULATE)
        read = self.read(layer, "attn" if attn else "mlp")
        return einops.einsum(b, read, "m, b m -> b").unsqueeze(-1)


def read_vector(
    spec: ModelSpec, run: RunResult, w: Float[Tensor, "batch d_model"], layer: int, sublayer: str
) -> Float[Tensor, "batch d_model"]:
    """``multiplier · c(γ_post ⊙ w) / σ_post`` (see :meth:`Reading.read`)."""
    writer = spec.writer(layer, sublayer)
    read = w * writer.multiplier
    if writer.post is None:
        return read
    assert writer.scale is not None
    scale = run.activations[HookKey(writer.scale, layer)].to(ACCUMULATE).reshape(-1, 1)
    return writer.post.to(ACCUMULATE).read_vector(read) / scale


def written(
    spec: ModelSpec,
    run: RunResult,
    layer: int,
    sublayer: str,
    raw: Float[Tensor, "*batch d_model"],
    row: int | None = None,
) -> Float[Tensor, "*batch d_model"]:
    """What a raw piece of a sublayer's output adds to the residual stream, linearly: with a
    post-norm, ``multiplier · γ ⊙ c(raw) / σ_post`` (its scale frozen; batch row ``row`` of
    the run, or every row), so pieces add up to the sublayer's written output."""
    writer = spec.writer(layer, sublayer)
    out = raw * writer.multiplier
    if writer.post is None:
        return out
    assert writer.scale is not None
    if writer.post.beta is not None:  # not linear in the pieces: symtrans has no such model
        raise UnsupportedModelError(
            f"block {layer}'s {sublayer} post-norm has a bias, so its pieces do not add up "
            "linearly through it"
        )
    scale = run.activations[HookKey(writer.scale, layer)].to(ACCUMULATE)
    scale = scale[row].reshape(()) if row is not None else scale.reshape(-1, *[1] * (raw.ndim - 1))
    return writer.post.to(ACCUMULATE).frozen(out, scale)


def writer_hooks(spec: ModelSpec, layer: int, sublayer: str) -> set[HookKey]:
    """The hooks reading a raw output of ``sublayer`` needs (a post-norm's scale)."""
    writer = spec.writer(layer, sublayer)
    return set() if writer.scale is None else {HookKey(writer.scale, layer)}


@dataclass(frozen=True)
class ProjectedReading(Reading):
    """The projections a :class:`~symtrans.adapter.protocol.ReadoutAdapter` computed where the
    model runs."""

    readout: Readout

    def project(self, hook: Hook, layer: int = -1) -> Tensor:
        return self.readout.projections[HookKey(hook, layer)].to(ACCUMULATE)

    def bias(self, hook: Hook, layer: int) -> Float[Tensor, "batch 1"]:
        return self.readout.biases[HookKey(hook, layer)].to(ACCUMULATE).reshape(-1, 1)

    def act(self, hook: Hook, layer: int = -1) -> Tensor:
        return self.project(hook, layer)


Values = Callable[[Reading], Float[Tensor, "batch k"]]


@dataclass(frozen=True)
class Piece:
    """A run of terms: their labels, the hooks they read, and their inner products with
    ``w`` (``[batch, len(labels)]``)."""

    labels: tuple[lb.Label, ...]
    hooks: frozenset[HookKey]
    values: Values


def _piece(labels: tuple[lb.Label, ...], hooks: set[HookKey], values: Values) -> Piece:
    return Piece(labels, frozenset(hooks), values)


def _embedding(spec: ModelSpec) -> Iterator[Piece]:
    yield _piece((lb.Embed(),), {HookKey(Hook.EMBED)}, lambda r: r.project(Hook.EMBED))
    if spec.has_pos_embed:
        yield _piece(
            (lb.PosEmbed(),), {HookKey(Hook.POS_EMBED)}, lambda r: r.project(Hook.POS_EMBED)
        )


def _block(layer: int) -> Piece:
    """What block ``layer`` adds, from the residual before and after it: exact for any
    block layout."""
    hooks = {HookKey(Hook.RESID_PRE, layer), HookKey(Hook.RESID_POST, layer)}

    def values(r: Reading) -> Tensor:
        return r.project(Hook.RESID_POST, layer) - r.project(Hook.RESID_PRE, layer)

    return _piece((lb.BlockOut(layer),), hooks, values)


def _attention_out(layer: int) -> Piece:
    return _piece(
        (lb.AttnOut(layer),),
        {HookKey(Hook.ATTN_OUT, layer)},
        lambda r: r.project(Hook.ATTN_OUT, layer),
    )


def _attention_bias(layer: int, spec: ModelSpec) -> Piece:
    return _piece(
        (lb.AttnBias(layer),),
        writer_hooks(spec, layer, "attn"),
        lambda r: r.bias(Hook.ATTN_OUT, layer),
    )


def _heads(layer: int, spec: ModelSpec) -> Piece:
    def values(r: Reading) -> Tensor:  # z · (W_O w) per head
        return r.project(Hook.Z, layer)

    labels = tuple(lb.HeadOut(layer, h) for h in range(spec.n_heads))
    hooks = {HookKey(Hook.Z, layer)} | writer_hooks(spec, layer, "attn")
    return _piece(labels, hooks, values)


def _head_sources(layer: int, spec: ModelSpec, position: int) -> Piece:
    def values(r: Reading) -> Tensor:  # A_{p,s} v_s · (W_O w), per head and source
        pattern = r.act(Hook.PATTERN, layer)[:, :, : position + 1]  # [b, h, s]
        v = r.project(Hook.V, layer)[:, : position + 1]  # [b, s, h]: v_s · (W_O w)
        per_source = einops.rearrange(v, "b s h -> b h s") * pattern
        return einops.rearrange(per_source, "b h s -> b (h s)")

    labels = tuple(
        lb.HeadSource(layer, h, s) for h in range(spec.n_heads) for s in range(position + 1)
    )
    hooks = {HookKey(Hook.PATTERN, layer), HookKey(Hook.V, layer)}
    return _piece(labels, hooks | writer_hooks(spec, layer, "attn"), values)


def _mlp_out(layer: int) -> Piece:
    return _piece(
        (lb.MlpOut(layer),),
        {HookKey(Hook.MLP_OUT, layer)},
        lambda r: r.project(Hook.MLP_OUT, layer),
    )


def _neurons(layer: int, spec: ModelSpec) -> Iterator[Piece]:
    def values(r: Reading) -> Tensor:  # a_n (W_out r)[n]
        return r.project(Hook.MLP_POST, layer)

    post = writer_hooks(spec, layer, "mlp")
    labels = _neuron_labels(layer, spec.d_mlp)
    yield _piece(labels, {HookKey(Hook.MLP_POST, layer)} | post, values)
    yield _piece((lb.MlpBias(layer),), post, lambda r: r.bias(Hook.MLP_OUT, layer))


@cache
def _neuron_labels(layer: int, d_mlp: int) -> tuple[lb.Label, ...]:
    """Made once per layer and width: a split is listed three times a batch (hooks, labels,
    values), and GPT-2 small has 36,864 neurons."""
    return tuple(lb.Neuron(layer, n) for n in range(d_mlp))


@dataclass(frozen=True)
class ExpertActivations:
    """A mixture-of-experts MLP at the destination, float64: every expert's hidden
    activation (router weight not applied), the router weights, and the shared expert's."""

    hidden: Float[Tensor, "batch n_experts d_expert"]
    weights: Float[Tensor, "batch n_experts"]
    shared: Float[Tensor, "batch d_shared"] | None
    shared_gate: Float[Tensor, "batch 1"] | None  # sigmoid applied


def expert_activations(
    adapter: ModelAdapter, run: RunResult, layer: int
) -> tuple[ExpertActivations, Experts]:
    """Each expert's ``act(gate x) ⊙ (up x)`` from what the MLP read (``x``), with the
    router weights the forward pass computed (frozen)."""
    experts = adapter.experts(layer)  # type: ignore[attr-defined]
    x = run.activations[HookKey(Hook.MLP_IN, layer)].to(ACCUMULATE)  # [b, m]
    gate_up = einops.einsum(experts.gate_up.to(ACCUMULATE), x, "e i m, b m -> b e i")
    gate, up = gate_up.chunk(2, dim=-1)
    weights = run.activations[HookKey(Hook.EXPERT_WEIGHTS, layer)].to(ACCUMULATE)
    shared = shared_gate = None
    if experts.shared_down is not None:
        assert experts.shared_gate is not None and experts.shared_up is not None
        assert experts.shared_act is not None
        g = x @ experts.shared_gate.to(ACCUMULATE).T
        shared = experts.shared_act(g) * (x @ experts.shared_up.to(ACCUMULATE).T)
        gated = run.activations[HookKey(Hook.SHARED_GATE, layer)].to(ACCUMULATE)
        shared_gate = torch.sigmoid(gated.reshape(-1, 1))
    return (
        ExpertActivations(
            experts.act(gate) * up, weights.reshape(x.shape[0], -1), shared, shared_gate
        ),
        experts,
    )


def moe_hooks(spec: ModelSpec, layer: int) -> set[HookKey]:
    shape = spec.moe_at(layer)
    keys = {HookKey(Hook.MLP_IN, layer), HookKey(Hook.EXPERT_WEIGHTS, layer)}
    if shape is not None and shape.d_shared:
        keys.add(HookKey(Hook.SHARED_GATE, layer))
    return keys | writer_hooks(spec, layer, "mlp")


def _expert_pieces(layer: int, spec: ModelSpec, neurons: bool) -> Iterator[Piece]:
    """A mixture-of-experts MLP: one term per expert (``neurons``: per expert neuron),
    router weights frozen, then the shared expert through its gate."""
    shape = spec.moe_at(layer)
    assert shape is not None
    hooks = moe_hooks(spec, layer)
    cache: dict[int, tuple[ExpertActivations, Experts, Tensor]] = {}

    def parts(r: Reading) -> tuple[ExpertActivations, Experts, Tensor]:
        if not isinstance(r, HostReading):
            raise UnsupportedModelError(
                f"block {layer}'s experts are evaluated from the activations here; an adapter "
                "that projects where the model runs does not give them"
            )
        key = id(r.run)
        if key not in cache:
            acts, experts = expert_activations(r.adapter, r.run, layer)
            cache.clear()
            cache[key] = (acts, experts, r.read(layer, "mlp"))
        return cache[key]

    def expert_values(r: Reading) -> Tensor:  # g_e a_{e,n} (down_e^T r)[n]
        acts, experts, read = parts(r)
        readout = einops.einsum(experts.down.to(ACCUMULATE), read, "e m i, b m -> b e i")
        values = acts.weights[:, :, None] * acts.hidden * readout
        return values.flatten(1) if neurons else values.sum(-1)

    if neurons:
        labels: tuple[lb.Label, ...] = tuple(
            lb.ExpertNeuron(layer, e, n)
            for e in range(shape.n_experts)
            for n in range(shape.d_expert)
        )
    else:
        labels = tuple(lb.Expert(layer, e) for e in range(shape.n_experts))
    yield _piece(labels, hooks, expert_values)
    if not shape.d_shared:
        return

    def shared_values(r: Reading) -> Tensor:
        acts, experts, read = parts(r)
        assert acts.shared is not None and acts.shared_gate is not None
        assert experts.shared_down is not None
        readout = read @ experts.shared_down.to(ACCUMULATE)  # [b, d_shared]
        values = acts.shared_gate * acts.shared * readout
        return values if neurons else values.sum(-1, keepdim=True)

    shared_labels: tuple[lb.Label, ...] = (
        tuple(lb.SharedNeuron(layer, n) for n in range(shape.d_shared))
        if neurons
        else (lb.SharedExpert(layer),)
    )
    yield _piece(shared_labels, hooks, shared_values)


def pieces(spec: ModelSpec, split: Split, position: int) -> Iterator[Piece]:
    """The pieces of ``split`` in model order: the embedding first, then block by block."""
    yield from _embedding(spec)
    for layer in range(spec.n_layers):
        if split == "layers":
            yield _block(layer)
            continue
        if split in ("components", "neurons"):
            yield _attention_out(layer)
        elif split == "heads":
            yield _heads(layer, spec)
            yield _attention_bias(layer, spec)
        else:  # positions
            yield _head_sources(layer, spec, position)
            yield _attention_bias(layer, spec)
        if spec.has_mlp:
            if spec.moe_at(layer) is not None and split != "components":
                yield from _expert_pieces(layer, spec, neurons=split == "neurons")
            elif split == "neurons":
                yield from _neurons(layer, spec)
            else:
                yield _mlp_out(layer)


def check_supported(spec: ModelSpec, split: Split) -> None:
    """:class:`UnsupportedModelError` if ``split`` is not exact for this model."""
    if split not in spec.splits:
        raise UnsupportedModelError(
            f"split={split!r} is not available for {spec.architecture}: {spec.splits_note}; "
            f"use one of {', '.join(repr(s) for s in spec.splits)}"
        )


def term_labels(spec: ModelSpec, split: Split, position: int) -> list[lb.Label]:
    """The labels of ``split``'s terms in model order."""
    return [label for piece in pieces(spec, split, position) for label in piece.labels]


def linear_logit_hooks(spec: ModelSpec) -> frozenset[HookKey]:
    """For a soft-capped model, the logits before the cap (the linear logit the terms add up
    to); nothing for any other model, whose output logits are linear already."""
    return frozenset({HookKey(Hook.UNEMBED)} if spec.softcap is not None else ())


def required_hooks(spec: ModelSpec, split: Split) -> frozenset[HookKey]:
    """Exactly the activations ``split`` needs, the final residual (for ``σ``) and, for a
    soft-capped model, the logits before the cap."""
    keys = {HookKey(Hook.RESID_FINAL), *linear_logit_hooks(spec)}
    for piece in pieces(spec, split, 0):
        keys |= piece.hooks
    return frozenset(keys)


def term_inner_products(
    adapter: ModelAdapter,
    run: RunResult,
    split: Split,
    w: Float[Tensor, "batch d_model"],
    position: int,
) -> Float[Tensor, "batch terms"]:
    """``<w, t_i>`` for every term of ``split``, in the order of :func:`term_labels`."""
    return split_values(HostReading(adapter, run, w, position), adapter.spec, split, position)


def split_values(
    reading: Reading, spec: ModelSpec, split: Split, position: int
) -> Float[Tensor, "batch terms"]:
    """Every term of ``split`` evaluated against ``reading``, in the order of
    :func:`term_labels`."""
    columns = []
    for piece in pieces(spec, split, position):
        values = piece.values(reading)
        if values.shape[-1] != len(piece.labels):  # a piece's own labels and values
            raise AssertionError(f"{piece.labels[0]}: {values.shape[-1]} values")
        columns.append(values)
    return torch.cat(columns, dim=-1)
