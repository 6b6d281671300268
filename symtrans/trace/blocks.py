"""Every position of what the residual entering a block is made of: the terms that path and
attention-score decompositions expand (one forward pass of one prompt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from .. import labels as lb
from ..adapter.protocol import AttentionAdapter, Hook, HookKey, ModelSpec, RunResult
from .run import forward
from .splits import ACCUMULATE


@dataclass(frozen=True)
class BlockInputs:
    """What one forward pass of one prompt gives, float64, batch dropped."""

    embed: Float[Tensor, "pos d_model"]
    pos_embed: Float[Tensor, "pos d_model"] | None
    # layer -> what each head adds to the residual stream (z W_O through the sublayer's writer)
    head_out: dict[int, Float[Tensor, "pos n_heads d_model"]]
    b_O: dict[int, Float[Tensor, "pos d_model"]]  # what b_O adds (per position: a post-norm)
    mlp_out: dict[int, Float[Tensor, "pos d_model"]]
    pattern: dict[int, Float[Tensor, "n_heads q k"]]
    ln1_scale: dict[int, Float[Tensor, " pos"]]  # 1 where the block has no first norm
    run: RunResult
    spec: ModelSpec

    def write(
        self, layer: int, raw: Float[Tensor, "pos *rest d_model"]
    ) -> Float[Tensor, "pos *rest d_model"]:
        """What raw pieces of block ``layer``'s attention output (one per position) add to
        the residual stream: the writer applied with each position's frozen post-norm scale."""
        writer = self.spec.writer(layer, "attn")
        out = raw * writer.multiplier
        if writer.post is None:
            return out
        scale = self.act(writer.scale, layer).reshape(-1, *[1] * (raw.ndim - 1))  # type: ignore[arg-type]
        return writer.post.to(ACCUMULATE).frozen(out, scale)

    def read(
        self, layer: int, position: int, r: Float[Tensor, " d_model"]
    ) -> Float[Tensor, " d_model"]:
        """The vector block ``layer``'s raw attention output at ``position`` is read with:
        ``<write(v), r> = <v, read>``."""
        writer = self.spec.writer(layer, "attn")
        out = r * writer.multiplier
        if writer.post is None:
            return out
        scale = self.act(writer.scale, layer).reshape(-1)[position]  # type: ignore[arg-type]
        return writer.post.to(ACCUMULATE).read_vector(out) / scale

    def act(self, hook: Hook, layer: int = -1) -> Tensor:
        """An extra activation asked for (every position), float64, batch dropped."""
        return self.run.activations[every(hook, layer)][0].to(ACCUMULATE)


def every(hook: Hook, layer: int = -1) -> HookKey:
    """The key of ``hook`` at every position."""
    return HookKey(hook, layer, all_positions=True)


def block_inputs(
    adapter: AttentionAdapter,
    tokens: Sequence[int],
    layer: int,
    extra: frozenset[HookKey] = frozenset(),
) -> BlockInputs:
    """Run ``tokens`` once, caching every position of what the residual entering blocks
    ``0..layer`` is made of, their patterns and first-norm scales (and ``extra``)."""
    spec = adapter.spec
    keys = {every(Hook.EMBED), *extra}
    if spec.has_pos_embed:
        keys.add(every(Hook.POS_EMBED))
    first_norms = {at: adapter.ln1(at) is not None for at in range(layer + 1)}
    for at in range(layer + 1):
        keys |= {every(Hook.PATTERN, at), every(Hook.Z, at)}
        if first_norms[at]:
            keys.add(every(Hook.LN1_SCALE, at))
        scale = spec.writer(at, "attn").scale
        if scale is not None:
            keys.add(every(scale, at))
        if spec.has_mlp and at < layer:
            keys.add(every(Hook.MLP_OUT, at))
    run = forward(adapter, [list(tokens)], [len(tokens) - 1], keys)

    def act(hook: Hook, at: int = -1) -> Tensor:
        return run.activations[every(hook, at)][0].to(ACCUMULATE)

    n = len(tokens)
    inputs = BlockInputs(
        embed=act(Hook.EMBED),
        pos_embed=act(Hook.POS_EMBED) if spec.has_pos_embed else None,
        head_out={},
        b_O={},
        mlp_out={at: act(Hook.MLP_OUT, at) for at in range(layer)} if spec.has_mlp else {},
        pattern={at: act(Hook.PATTERN, at) for at in range(layer + 1)},
        ln1_scale={
            at: act(Hook.LN1_SCALE, at).reshape(-1)
            if first_norms[at]
            else torch.ones(n, dtype=ACCUMULATE)
            for at in range(layer + 1)
        },
        run=run,
        spec=spec,
    )
    for at in range(layer):
        W_O = adapter.W_O(at).to(ACCUMULATE)
        raw = einops.einsum(act(Hook.Z, at), W_O, "s h d, h d m -> s h m")
        inputs.head_out[at] = inputs.write(at, raw)
        inputs.b_O[at] = inputs.write(at, adapter.b_O(at).to(ACCUMULATE).expand(n, -1))
    return inputs


def block_input_terms(
    inputs: BlockInputs, layer: int
) -> list[tuple[lb.Label, Float[Tensor, "pos d_model"]]]:
    """The terms of ``x^layer_s`` at every position, in model order. They add up to the
    input of block ``layer`` (``blocks.{layer}.hook_resid_pre``)."""
    out: list[tuple[lb.Label, Tensor]] = [(lb.Embed(), inputs.embed)]
    if inputs.pos_embed is not None:
        out.append((lb.PosEmbed(), inputs.pos_embed))
    for at in range(layer):
        heads = inputs.head_out[at]
        out.extend((lb.HeadOut(at, h), heads[:, h]) for h in range(heads.shape[1]))
        out.append((lb.AttnBias(at), inputs.b_O[at]))
        if at in inputs.mlp_out:
            out.append((lb.MlpOut(at), inputs.mlp_out[at]))
    return out
