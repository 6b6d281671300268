"""A ``TransformerBridge``'s forward pass started at a block: the blocks from ``layer`` on,
called with the arguments the model's own forward gives them, on a residual the caller gives.

Activation patching runs the corrupted prompts hundreds of times, each changed at one block;
below that block every run is the corrupted run, so it is not run again. What a block gets
besides the residual (the causal mask, position ids, rotary tables) is read from the model's
own forward for the same tokens, stopped as it enters the first block (only the embedding
runs): nothing here rebuilds a mask or a rotary table, so it cannot disagree with the model.
"""

from __future__ import annotations

from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..errors import UnsupportedModelError

# Hugging Face classes whose blocks all get the same arguments (no per-layer attention types)
# and whose logits are the unembedded final norm, nothing after it; patching through this path
# is checked against Hugging Face's own forward with hooks for each (tests/test_patching.py).
RESUMABLE_MODELS = frozenset(
    {"GPT2LMHeadModel", "GPTNeoXForCausalLM", "LlamaForCausalLM", "GPTJForCausalLM"}
)

BlockArguments = tuple[tuple[Any, ...], dict[str, Any]]


class _BlockEntry(Exception):
    """Raised as the first block is entered, carrying the arguments it was called with."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__("first block entered")
        self.block_args = args
        self.block_kwargs = kwargs


def resumable(bridge: Any) -> bool:
    """Whether :func:`replay` is known to give the bridge's own numbers for this model."""
    hf = getattr(bridge, "original_model", None)
    return type(hf).__name__ in RESUMABLE_MODELS and hasattr(bridge, "blocks")


def block_arguments(bridge: Any, tokens: Int[Tensor, "batch pos"]) -> BlockArguments:
    """What the model's forward passes its blocks for ``tokens``, besides the residual:
    ``(positional arguments after the residual, keyword arguments)``. The forward stops as
    it enters block 0; ``use_cache=False``, so no key/value cache is filled by a replay."""
    first = bridge.blocks[0]

    def stop(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        raise _BlockEntry(args, kwargs)

    handle = first.register_forward_pre_hook(stop, with_kwargs=True)
    try:
        with torch.no_grad():
            bridge(tokens, use_cache=False)
    except _BlockEntry as entry:
        args, kwargs = entry.block_args, entry.block_kwargs
    else:
        raise UnsupportedModelError(
            f"{type(bridge.original_model).__name__}: the forward pass never entered its first "
            "block, so it cannot be started at a block; patch through the full forward pass"
        )
    finally:
        handle.remove()
    caches = [
        type(v).__name__ for v in (*args, *kwargs.values()) if type(v).__name__[-5:] == "Cache"
    ]
    if caches:  # a replayed block would append its keys and values to it
        raise UnsupportedModelError(
            f"{type(bridge.original_model).__name__} passes its blocks a {caches[0]} even with "
            "use_cache=False, so its forward pass cannot be started at a block"
        )
    return tuple(args[1:]), dict(kwargs)


def replay(
    bridge: Any,
    layer: int,
    resid: Float[Tensor, "batch pos d_model"],
    arguments: BlockArguments,
    positions: Int[Tensor, " batch"],
) -> Float[Tensor, "batch d_vocab"]:
    """Blocks ``layer..`` on ``resid``, the final norm, and the logits at ``positions``."""
    rest, kwargs = arguments
    x = resid
    for block in list(bridge.blocks)[layer:]:
        out = block(x, *rest, **kwargs)
        x = out[0] if isinstance(out, tuple) else out
    normed = bridge.ln_final(x)  # every position, as the model's forward does
    rows = torch.arange(x.shape[0], device=x.device)
    return bridge.unembed(normed[rows, positions].unsqueeze(1))[:, 0]
