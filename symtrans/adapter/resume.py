"""A ``TransformerBridge``'s forward pass started at a block: the blocks from ``layer`` on,
called with the arguments the model's own forward gives them, on a residual the caller gives.

Activation patching runs the corrupted prompts hundreds of times, each changed at one block;
below that block every run is the corrupted run, so it is not run again. What a block gets
besides the residual (the causal mask, position ids, rotary tables) is read from the model's
own forward for the same tokens, stopped as it enters the first block (only the embedding
runs): nothing here rebuilds a mask or a rotary table, so it cannot disagree with the model.

:class:`OriginalModel` goes one step further for the patching cells, which need no hook
but the patched one: a cell patched at position ``p`` changes nothing before ``p``, so it
runs only positions ``p..`` and attends to the corrupted run's cached keys and values below
``p``. The bridge's attention ignores a key/value cache, so those passes run Hugging Face's
own model class, built on the bridge's own parameter tensors (nothing is copied).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..errors import UnsupportedModelError
from .protocol import CellBatch, Hook, HookKey, KeyValues, Patch


@dataclass(frozen=True)
class Layout:
    """Where a Hugging Face class keeps what a patching pass runs and patches (module paths;
    ``attention``, ``out_proj`` and ``mlp`` inside a block)."""

    blocks: str
    final_norm: str
    attention: str  # its first output is what the block adds (attn_out)
    out_proj: str  # its input is the heads' z, heads side by side
    mlp: str  # its output is mlp_out
    # Hugging Face's attention function whose arithmetic the bridge's attention runs (eager
    # attention takes the softmax in float32 for Llama, GPT-NeoX's sdpa stays in the dtype)
    attention_function: str = "eager"


# Hugging Face classes whose blocks all get the same arguments (no per-layer attention types)
# and whose logits are the unembedded final norm, nothing after it; patching through this path
# is checked against Hugging Face's own forward with hooks for each (tests/test_patching.py).
LAYOUTS = {
    "GPT2LMHeadModel": Layout("transformer.h", "transformer.ln_f", "attn", "attn.c_proj", "mlp"),
    "GPTNeoXForCausalLM": Layout(
        "gpt_neox.layers",
        "gpt_neox.final_layer_norm",
        "attention",
        "attention.dense",
        "mlp",
        attention_function="sdpa",
    ),
    "LlamaForCausalLM": Layout(
        "model.layers", "model.norm", "self_attn", "self_attn.o_proj", "mlp"
    ),
    "GPTJForCausalLM": Layout("transformer.h", "transformer.ln_f", "attn", "attn.out_proj", "mlp"),
}
RESUMABLE_MODELS = frozenset(LAYOUTS)

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


# -- Hugging Face's own model on the bridge's weights (patching cells) ------------------------


def _walk(root: Any, name: str) -> Any:
    """``root.a.b.c`` for ``"a.b.c"``: the bridge's components forward attribute reads to the
    module they wrap, so a Hugging Face parameter name finds the tensor the bridge runs."""
    value = root
    for part in name.split("."):
        value = getattr(value, part)
    return value


def _cache_argument(model: Any) -> str:
    """The name the model's forward takes its key/value cache by (``cache`` from
    transformers 5.24, ``past_key_values`` before)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _new_cache(pairs: list[tuple[Tensor | None, Tensor | None]]) -> Any:
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=pairs)


class OriginalModel:
    """Hugging Face's own class of the bridge's model, its parameters and buffers the very
    tensors the bridge holds, its attention the function whose arithmetic the bridge runs
    (:attr:`Layout.attention_function`). Runs the rows of a
    :class:`~symtrans.adapter.protocol.CellBatch`."""

    def __init__(self, bridge: Any) -> None:
        hf = bridge.original_model
        name = type(hf).__name__
        if name not in LAYOUTS:
            raise UnsupportedModelError(
                f"{name}: patching from a position has not been checked for this model; "
                "patch through the whole forward pass"
            )
        config = copy.deepcopy(hf.config)
        config._attn_implementation = LAYOUTS[name].attention_function
        with torch.device("meta"):
            model = type(hf)(config)
        named = [
            *model.named_parameters(remove_duplicate=False),
            *model.named_buffers(remove_duplicate=False),
        ]
        for path, _ in named:
            owner, _, leaf = path.rpartition(".")
            module = model.get_submodule(owner)
            try:
                value = _walk(hf, path)
            except AttributeError as exc:
                raise UnsupportedModelError(
                    f"{name}: the bridge holds no tensor for {path!r} ({exc}), so Hugging "
                    "Face's own blocks cannot run on its weights; patch through the whole "
                    "forward pass"
                ) from exc
            if leaf in module._parameters:
                module._parameters[leaf] = value
            else:
                module._buffers[leaf] = value
        self.model = model.eval()
        self.layout = LAYOUTS[name]
        self.blocks = list(model.get_submodule(self.layout.blocks))
        self.final_norm = model.get_submodule(self.layout.final_norm)
        self.unembed = model.get_output_embeddings()
        self._cache_name = _cache_argument(model)

    def key_values(self, tokens: Int[Tensor, "batch pos"]) -> KeyValues:
        """The keys and values every block caches for ``tokens``."""
        kwargs: dict[str, Any] = {self._cache_name: _new_cache([]), "use_cache": True}
        if "logits_to_keep" in inspect.signature(self.model.forward).parameters:
            kwargs["logits_to_keep"] = 1  # only the cache is wanted
        with torch.no_grad():
            out = self.model(tokens, **kwargs)
        cache = getattr(out, "cache", None)
        cache = out.past_key_values if cache is None else cache
        return tuple((layer.keys, layer.values) for layer in cache.layers)

    def _block_arguments(
        self, tokens: Int[Tensor, "1 pos"], offset: int, prefix: KeyValues | None
    ) -> tuple[tuple[Any, ...], dict[str, Any], Any]:
        """What the model's forward passes its first block for positions ``offset..`` of
        ``tokens`` (one row; masks and rotary tables broadcast over the rows), with the cache
        it was given: ``(arguments after the residual, keyword arguments, that cache)``."""
        cache = None
        if offset:
            if prefix is None:
                raise ValueError("a batch at a position past 0 needs the prefix's keys/values")
            device = tokens.device
            cache = _new_cache(
                [(k[:1, :, :offset].to(device), v[:1, :, :offset].to(device)) for k, v in prefix]
            )
        kwargs = {self._cache_name: cache, "use_cache": cache is not None}

        def stop(module: Any, args: tuple[Any, ...], given: dict[str, Any]) -> None:
            raise _BlockEntry(args, given)

        handle = self.blocks[0].register_forward_pre_hook(stop, with_kwargs=True)
        try:
            with torch.no_grad():
                self.model(tokens[:1, offset:], **kwargs)
        except _BlockEntry as entry:
            return tuple(entry.block_args[1:]), dict(entry.block_kwargs), cache
        finally:
            handle.remove()
        raise UnsupportedModelError(
            f"{type(self.model).__name__}: the forward pass never entered its first block"
        )

    @contextmanager
    def _patched(self, layer: int, batch: CellBatch, rows: slice) -> Iterator[None]:
        """``batch.patches`` of block ``layer`` as hooks on its Hugging Face modules, each
        applied to ``rows`` (the rows starting there: the last ones running)."""
        block, layout = self.blocks[layer], self.layout
        handles = []
        for key, given in batch.patches.items():
            if key.layer != layer:
                continue
            patch = _on_rows(given, rows)
            if key.hook is Hook.ATTN_OUT:
                handles.append(
                    block.get_submodule(layout.attention).register_forward_hook(_first(patch))
                )
            elif key.hook is Hook.MLP_OUT:
                handles.append(block.get_submodule(layout.mlp).register_forward_hook(_first(patch)))
            elif key.hook is Hook.Z:
                module = block.get_submodule(layout.out_proj)
                handles.append(module.register_forward_pre_hook(_heads(patch, self._n_heads)))
            else:
                raise ValueError(f"a patching pass patches attn_out, mlp_out or z, not {key}")
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @contextmanager
    def _last_only(self, layer: int, batch: CellBatch) -> Iterator[None]:
        """In the last block, the MLP of the last position only: it acts position by
        position and nothing after the block reads another position, so its output
        ``[rows, 1, d_model]`` added to the residual (broadcast) gives the last position
        exactly. Not where that MLP's output is patched."""
        if layer != len(self.blocks) - 1 or HookKey(Hook.MLP_OUT, layer) in batch.patches:
            yield
            return

        def last(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
            return (args[0][:, -1:], *args[1:])

        handle = self.blocks[layer].get_submodule(self.layout.mlp).register_forward_pre_hook(last)
        try:
            yield
        finally:
            handle.remove()

    @property
    def _n_heads(self) -> int:
        config = self.model.config
        return int(getattr(config, "n_head", None) or config.num_attention_heads)

    def run_cells(self, batch: CellBatch) -> Float[Tensor, "rows k"]:
        """See :meth:`~symtrans.adapter.protocol.ResumableAdapter.run_cells`."""
        offset = batch.offset
        device = self.unembed.weight.device  # the model's; the batch may come from the CPU
        args, kwargs, template = self._block_arguments(
            batch.tokens.to(device), offset, batch.prefix
        )
        x: Tensor | None = None
        with torch.no_grad():
            for layer in range(int(batch.starts[0]), len(self.blocks)):
                joining = batch.starting(layer)
                if joining.stop > joining.start:
                    new = batch.resid[joining, offset:].to(device)
                    x = new if x is None else torch.cat([x, new])
                assert x is not None
                given_args, given = args, kwargs
                if template is not None and batch.prefix is not None:
                    keys, values = batch.prefix[layer]
                    rows = batch.pairs[: x.shape[0]]
                    data: list[tuple[Tensor | None, Tensor | None]] = [(None, None)] * layer
                    data.append(
                        (keys[rows, :, :offset].to(device), values[rows, :, :offset].to(device))
                    )
                    cache = _new_cache(data)
                    given_args = tuple(cache if v is template else v for v in args)
                    given = {k: cache if v is template else v for k, v in kwargs.items()}
                with self._patched(layer, batch, joining), self._last_only(layer, batch):
                    out = self.blocks[layer](x, *given_args, **given)
                x = out[0] if isinstance(out, tuple) else out
            assert x is not None
            normed = self.final_norm(x[:, -1])
            columns = batch.columns.to(device)
            weight = self.unembed.weight[columns]  # [rows, k, d_model]
            logits = torch.einsum("rd,rkd->rk", normed, weight)
            bias = getattr(self.unembed, "bias", None)
            return (logits if bias is None else logits + bias[columns]).cpu()


def _on_rows(patch: Patch, rows: slice) -> Patch:
    """``patch`` applied to ``rows`` of an activation, the other rows as they are."""

    def on_rows(act: Tensor) -> Tensor:
        out = act.clone()
        out[rows] = patch(act[rows])
        return out

    return on_rows


def _first(patch: Patch) -> Callable[..., Any]:
    """A forward hook replacing a module's output (its first element, for a tuple)."""

    def hook(module: Any, args: Any, output: Any) -> Any:
        if isinstance(output, tuple):
            return (patch(output[0]), *output[1:])
        return patch(output)

    return hook


def _heads(patch: Patch, n_heads: int) -> Callable[..., Any]:
    """A pre-hook on the output projection: its input, heads side by side, patched as
    ``[batch, pos, n_heads, d_head]`` (``z``)."""

    def hook(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        z = args[0]
        split = z.reshape(*z.shape[:-1], n_heads, z.shape[-1] // n_heads)
        return (patch(split).reshape(z.shape), *args[1:])

    return hook
