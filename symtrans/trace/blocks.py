"""Every position of what the residual entering a block is made of: the terms that path and
attention-score decompositions expand (one forward pass of one prompt)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import einops
from jaxtyping import Float
from torch import Tensor

from .. import labels as lb
from ..adapter.protocol import AttentionAdapter, Hook, HookKey, RunResult
from .run import forward
from .splits import ACCUMULATE


@dataclass(frozen=True)
class BlockInputs:
    """What one forward pass of one prompt gives, float64, batch dropped."""

    embed: Float[Tensor, "pos d_model"]
    pos_embed: Float[Tensor, "pos d_model"] | None
    head_out: dict[int, Float[Tensor, "pos n_heads d_model"]]  # layer -> z W_O per head
    b_O: dict[int, Float[Tensor, " d_model"]]
    mlp_out: dict[int, Float[Tensor, "pos d_model"]]
    pattern: dict[int, Float[Tensor, "n_heads q k"]]
    ln1_scale: dict[int, Float[Tensor, " pos"]]
    run: RunResult

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
    for at in range(layer + 1):
        keys |= {every(Hook.PATTERN, at), every(Hook.LN1_SCALE, at), every(Hook.Z, at)}
        if spec.has_mlp and at < layer:
            keys.add(every(Hook.MLP_OUT, at))
    run = forward(adapter, [list(tokens)], [len(tokens) - 1], keys)

    def act(hook: Hook, at: int = -1) -> Tensor:
        return run.activations[every(hook, at)][0].to(ACCUMULATE)

    head_out = {
        at: einops.einsum(act(Hook.Z, at), adapter.W_O(at).to(ACCUMULATE), "s h d, h d m -> s h m")
        for at in range(layer)
    }
    return BlockInputs(
        embed=act(Hook.EMBED),
        pos_embed=act(Hook.POS_EMBED) if spec.has_pos_embed else None,
        head_out=head_out,
        b_O={at: adapter.b_O(at).to(ACCUMULATE) for at in range(layer)},
        mlp_out={at: act(Hook.MLP_OUT, at) for at in range(layer)} if spec.has_mlp else {},
        pattern={at: act(Hook.PATTERN, at) for at in range(layer + 1)},
        ln1_scale={at: act(Hook.LN1_SCALE, at).reshape(-1) for at in range(layer + 1)},
        run=run,
    )


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
        out.append((lb.AttnBias(at), inputs.b_O[at].expand_as(inputs.embed)))
        if at in inputs.mlp_out:
            out.append((lb.MlpOut(at), inputs.mlp_out[at]))
    return out
