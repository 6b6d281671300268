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
from ..adapter.protocol import Hook, HookKey, ModelAdapter, ModelSpec, Readout, RunResult
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

    def per_head(self, layer: int) -> Float[Tensor, "batch n_heads d_head"]:
        """``W_O w`` for every head of ``layer``."""
        W_O = self.adapter.W_O(layer).to(ACCUMULATE)
        return einops.einsum(W_O, self.w, "h d m, b m -> b h d")

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
            return self.act(hook, layer) * einops.einsum(W_out, self.w, "n m, b m -> b n")
        return self.dot(self.act(hook, layer))

    def bias(self, hook: Hook, layer: int) -> Float[Tensor, "batch 1"]:
        b = self.adapter.b_O(layer) if hook is Hook.ATTN_OUT else self.adapter.b_out(layer)
        return self.dot(b.to(ACCUMULATE).expand_as(self.w))


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


def _block(layer: int, spec: ModelSpec) -> Piece:
    hooks = {HookKey(Hook.ATTN_OUT, layer)} | (
        {HookKey(Hook.MLP_OUT, layer)} if spec.has_mlp else set()
    )

    def values(r: Reading) -> Tensor:
        out = r.project(Hook.ATTN_OUT, layer)
        if spec.has_mlp:
            out = out + r.project(Hook.MLP_OUT, layer)
        return out

    return _piece((lb.BlockOut(layer),), hooks, values)


def _attention_out(layer: int) -> Piece:
    return _piece(
        (lb.AttnOut(layer),),
        {HookKey(Hook.ATTN_OUT, layer)},
        lambda r: r.project(Hook.ATTN_OUT, layer),
    )


def _attention_bias(layer: int) -> Piece:
    return _piece(
        (lb.AttnBias(layer),),
        set(),
        lambda r: r.bias(Hook.ATTN_OUT, layer),
    )


def _heads(layer: int, spec: ModelSpec) -> Piece:
    def values(r: Reading) -> Tensor:  # z · (W_O w) per head
        return r.project(Hook.Z, layer)

    labels = tuple(lb.HeadOut(layer, h) for h in range(spec.n_heads))
    return _piece(labels, {HookKey(Hook.Z, layer)}, values)


def _head_sources(layer: int, spec: ModelSpec, position: int) -> Piece:
    def values(r: Reading) -> Tensor:  # A_{p,s} v_s · (W_O w), per head and source
        pattern = r.act(Hook.PATTERN, layer)[:, :, : position + 1]  # [b, h, s]
        v = r.project(Hook.V, layer)[:, : position + 1]  # [b, s, h]: v_s · (W_O w)
        per_source = einops.rearrange(v, "b s h -> b h s") * pattern
        return einops.rearrange(per_source, "b h s -> b (h s)")

    labels = tuple(
        lb.HeadSource(layer, h, s) for h in range(spec.n_heads) for s in range(position + 1)
    )
    return _piece(labels, {HookKey(Hook.PATTERN, layer), HookKey(Hook.V, layer)}, values)


def _mlp_out(layer: int) -> Piece:
    return _piece(
        (lb.MlpOut(layer),),
        {HookKey(Hook.MLP_OUT, layer)},
        lambda r: r.project(Hook.MLP_OUT, layer),
    )


def _neurons(layer: int, spec: ModelSpec) -> Iterator[Piece]:
    def values(r: Reading) -> Tensor:  # a_n (W_out w)[n]
        return r.project(Hook.MLP_POST, layer)

    labels = _neuron_labels(layer, spec.d_mlp)
    yield _piece(labels, {HookKey(Hook.MLP_POST, layer)}, values)
    yield _piece(
        (lb.MlpBias(layer),),
        set(),
        lambda r: r.bias(Hook.MLP_OUT, layer),
    )


@cache
def _neuron_labels(layer: int, d_mlp: int) -> tuple[lb.Label, ...]:
    """Made once per layer and width: a split is listed three times a batch (hooks, labels,
    values), and GPT-2 small has 36,864 neurons."""
    return tuple(lb.Neuron(layer, n) for n in range(d_mlp))


def pieces(spec: ModelSpec, split: Split, position: int) -> Iterator[Piece]:
    """The pieces of ``split`` in model order: the embedding first, then block by block."""
    yield from _embedding(spec)
    for layer in range(spec.n_layers):
        if split == "layers":
            yield _block(layer, spec)
            continue
        if split in ("components", "neurons"):
            yield _attention_out(layer)
        elif split == "heads":
            yield _heads(layer, spec)
            yield _attention_bias(layer)
        else:  # positions
            yield _head_sources(layer, spec, position)
            yield _attention_bias(layer)
        if spec.has_mlp:
            if split == "neurons":
                yield from _neurons(layer, spec)
            else:
                yield _mlp_out(layer)


def term_labels(spec: ModelSpec, split: Split, position: int) -> list[lb.Label]:
    """The labels of ``split``'s terms in model order."""
    return [label for piece in pieces(spec, split, position) for label in piece.labels]


def required_hooks(spec: ModelSpec, split: Split) -> frozenset[HookKey]:
    """Exactly the activations ``split`` needs, and the final residual (for ``σ``)."""
    keys = {HookKey(Hook.RESID_FINAL)}
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
