"""The splits check themselves in the forward pass that produced their numbers: the finer
split adds up to the coarser one, vector by vector at the destination, before any number is
reported.

- the embedding (and positional embedding) is the residual entering block 0;
- each block's output is the next block's input, and the last one the final norm's input;
- attention output + MLP output = what the block adds to the residual stream;
- heads (or heads × source positions) + ``b_O``, through the sublayer's writer (multiplier,
  post-norm with its frozen scale), = the attention output;
- neurons + ``b_out``, through the writer, = the MLP output.

A hook that does not mean what the adapter assumes for an architecture fails here with
:class:`UnsupportedModelError` instead of giving a sum that adds up to the wrong thing.
"""

from __future__ import annotations

from collections.abc import Sequence

import einops
import torch
from jaxtyping import Float
from torch import Tensor

from ..adapter.common import dtype_name
from ..adapter.protocol import Hook, HookKey, ModelAdapter, ModelSpec, RunResult
from ..errors import UnsupportedModelError
from ..kinds import Split
from .splits import ACCUMULATE, expert_activations

# Largest |recomputed − hook| allowed, relative to the size of the parts, per the model's
# dtype (and whether Hugging Face computes its norms, post-norms included, in float32).
CHECK_RTOL = {
    ("float64", False): 1e-10,
    ("float64", True): 1e-5,
    ("float32", False): 1e-4,
    ("float32", True): 1e-4,
    ("float16", False): 2e-2,
    ("float16", True): 2e-2,
    ("bfloat16", False): 5e-2,
    ("bfloat16", True): 5e-2,
}


def check_hooks(spec: ModelSpec, split: Split) -> frozenset[HookKey]:
    """What the checks read, beyond what the split itself reads."""
    keys = {HookKey(Hook.EMBED), HookKey(Hook.RESID_FINAL)}
    if spec.has_pos_embed:
        keys.add(HookKey(Hook.POS_EMBED))
    for layer in range(spec.n_layers):
        keys |= {HookKey(Hook.RESID_PRE, layer), HookKey(Hook.RESID_POST, layer)}
        if split != "layers":
            keys.add(HookKey(Hook.ATTN_OUT, layer))
            if spec.has_mlp:
                keys.add(HookKey(Hook.MLP_OUT, layer))
    return frozenset(keys)


def _write(spec: ModelSpec, run: RunResult, layer: int, sublayer: str, raw: Tensor) -> Tensor:
    """What a raw sublayer output ``[batch, d_model]`` adds to the residual stream."""
    writer = spec.writer(layer, sublayer)
    out = raw
    if writer.post is not None:
        assert writer.scale is not None
        scale = run.activations[HookKey(writer.scale, layer)].to(ACCUMULATE).reshape(-1, 1)
        out = writer.post.to(ACCUMULATE).frozen(raw, scale)
    return out * writer.multiplier


def check_consistency(
    adapter: ModelAdapter,
    run: RunResult,
    split: Split,
    position: int,
    prompts: Sequence[str],
) -> None:
    """:class:`UnsupportedModelError` unless every finer split adds up to the coarser one
    (see the module's docstring) for every prompt of the batch."""
    spec = adapter.spec
    rtol = CHECK_RTOL.get((dtype_name(spec.dtype), spec.norms_in_float32), 5e-2)

    def act(hook: Hook, layer: int = -1) -> Tensor:
        return run.activations[HookKey(hook, layer)].to(ACCUMULATE)

    def expect(
        what: str,
        parts: list[Float[Tensor, "batch d_model"]],
        hook: str,
        value: Float[Tensor, "batch d_model"],
    ) -> None:
        got = torch.stack(parts).sum(0)
        size = torch.stack([p.abs().amax(-1) for p in parts]).sum(0)
        size = torch.maximum(size, value.abs().amax(-1)).clamp(min=1.0)
        error = (got - value).abs().amax(-1)
        bad = error > rtol * size
        if bool(bad.any()):
            row = int(bad.nonzero()[0])
            raise UnsupportedModelError(
                f"{spec.architecture}: {what} add up to a vector {float(error[row]):.3g} away "
                f"from {hook} (the parts' size {float(size[row]):.3g}, tolerance "
                f"{float(rtol * size[row]):.3g}) for prompt {prompts[row]!r}: TransformerLens's "
                "hook does not mean what symtrans's adapter assumes for this architecture, so "
                "no number is reported"
            )

    embedding = [act(Hook.EMBED)] + ([act(Hook.POS_EMBED)] if spec.has_pos_embed else [])
    expect("the embeddings", embedding, "the residual entering block 0", act(Hook.RESID_PRE, 0))
    last = spec.n_layers - 1
    for layer in range(spec.n_layers):
        post = act(Hook.RESID_POST, layer)
        following = (
            ("the final norm's input", act(Hook.RESID_FINAL))
            if layer == last
            else (f"the residual entering block {layer + 1}", act(Hook.RESID_PRE, layer + 1))
        )
        expect(f"block {layer}'s output", [post], following[0], following[1])
        if split == "layers":
            continue
        added = post - act(Hook.RESID_PRE, layer)
        sublayers = [act(Hook.ATTN_OUT, layer)] + (
            [act(Hook.MLP_OUT, layer)] if spec.has_mlp else []
        )
        expect(f"block {layer}'s attention and MLP outputs", sublayers, "what it adds", added)
        if split in ("heads", "positions"):
            per_head = _heads(adapter, run, split, layer, position)  # [batch, heads, d_model]
            raw = per_head.sum(1) + adapter.b_O(layer).to(ACCUMULATE)
            written = _write(spec, run, layer, "attn", raw)
            expect(
                f"block {layer}'s heads and b_O",
                [written],
                "its attention output (hook_attn_out)",
                act(Hook.ATTN_OUT, layer),
            )
        if spec.moe_at(layer) is not None and split != "components":
            acts, experts = expert_activations(adapter, run, layer)
            down = experts.down.to(ACCUMULATE)
            raw = einops.einsum(acts.weights[:, :, None] * acts.hidden, down, "b e i, e m i -> b m")
            if acts.shared is not None:
                assert acts.shared_gate is not None and experts.shared_down is not None
                shared = acts.shared @ experts.shared_down.to(ACCUMULATE).T
                raw = raw + acts.shared_gate * shared
            expect(
                f"block {layer}'s experts",
                [_write(spec, run, layer, "mlp", raw)],
                "its MLP output (hook_mlp_out)",
                act(Hook.MLP_OUT, layer),
            )
        elif split == "neurons" and spec.has_mlp:
            W_out = adapter.W_out(layer).to(ACCUMULATE)
            raw = act(Hook.MLP_POST, layer) @ W_out + adapter.b_out(layer).to(ACCUMULATE)
            expect(
                f"block {layer}'s neurons and b_out",
                [_write(spec, run, layer, "mlp", raw)],
                "its MLP output (hook_mlp_out)",
                act(Hook.MLP_OUT, layer),
            )


def _heads(
    adapter: ModelAdapter, run: RunResult, split: Split, layer: int, position: int
) -> Float[Tensor, "batch n_heads d_model"]:
    """Each head's raw output at the destination: ``z W_O``, or ``Σ_s A v_s W_O``."""
    W_O = adapter.W_O(layer).to(ACCUMULATE)
    if split == "heads":
        z = run.activations[HookKey(Hook.Z, layer)].to(ACCUMULATE)
    else:
        pattern = run.activations[HookKey(Hook.PATTERN, layer)].to(ACCUMULATE)
        v = run.activations[HookKey(Hook.V, layer)].to(ACCUMULATE)[:, : position + 1]
        z = einops.einsum(pattern[:, :, : position + 1], v, "b h s, b s h d -> b h d")
    return einops.einsum(z, W_O, "b h d, h d m -> b h m")
