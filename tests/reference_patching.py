"""Seed 003's activation patching written with nothing but Hugging Face's own modules and
torch hooks (no TransformerLens, no symtrans code): one forward pass per cell, the clean
activation captured by one hook and written into the corrupted run by another.

Sites, per block of the Hugging Face model: ``resid_pre`` is the block's input (a forward
pre-hook on the block), ``attn_out``/``mlp_out`` the attention/MLP module's output (a forward
hook), ``z`` one head's slice of the input of the attention's output projection (``c_proj``,
``dense``, ``o_proj``, ``out_proj``; a forward pre-hook).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

# model_type -> where its blocks, attention, MLP and attention output projection are
MODULES = {
    "gpt2": ("transformer.h", "attn", "mlp", "attn.c_proj"),
    "gpt_neox": ("gpt_neox.layers", "attention", "mlp", "attention.dense"),
    "llama": ("model.layers", "self_attn", "mlp", "self_attn.o_proj"),
    "gptj": ("transformer.h", "attn", "mlp", "attn.out_proj"),
}


def _get(module: Any, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _module(hf: torch.nn.Module, site: str, layer: int) -> torch.nn.Module:
    blocks, attn, mlp, out_proj = MODULES[hf.config.model_type]
    block = _get(hf, blocks)[layer]
    if site == "resid_pre":
        return block  # type: ignore[no-any-return]
    return _get(block, {"attn_out": attn, "mlp_out": mlp, "z": out_proj}[site])  # type: ignore[no-any-return]


def _first(value: Any) -> Tensor:
    return value[0] if isinstance(value, tuple) else value  # type: ignore[no-any-return]


def _hook(hf: torch.nn.Module, site: str, layer: int, fn: Callable[[Tensor], Tensor | None]) -> Any:
    """Register ``fn`` on the site's tensor (its input for ``resid_pre`` and ``z``, its output
    otherwise); a tensor ``fn`` returns replaces it."""
    module = _module(hf, site, layer)
    if site in ("resid_pre", "z"):

        def pre(mod: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if args:
                new = fn(args[0])
                return None if new is None else ((new, *args[1:]), kwargs)
            new = fn(kwargs["hidden_states"])
            return None if new is None else (args, {**kwargs, "hidden_states": new})

        return module.register_forward_pre_hook(pre, with_kwargs=True)

    def post(mod: Any, args: Any, out: Any) -> Any:
        new = fn(_first(out))
        if new is None:
            return None
        return (new, *out[1:]) if isinstance(out, tuple) else new

    return module.register_forward_hook(post)


def metric(
    hf: torch.nn.Module,
    tokens: Tensor,
    answer: Tensor,
    vs: Tensor | None,
    hooks: Sequence[Any] = (),
) -> float:
    """Mean over the rows of logit(answer) − logit(vs) at the last position; ``hooks``
    (registered handles) are removed afterwards."""
    try:
        with torch.no_grad():
            logits = hf(tokens).logits[:, -1].to(torch.float64)
    finally:
        for handle in hooks:
            handle.remove()
    rows = torch.arange(tokens.shape[0])
    out = logits[rows, answer]
    if vs is not None:
        out = out - logits[rows, vs]
    return float(out.mean())


def capture(hf: torch.nn.Module, tokens: Tensor, site: str, layer: int) -> Tensor:
    """The site's activation of block ``layer`` in the run of ``tokens`` (every position)."""
    seen: list[Tensor] = []

    def keep(x: Tensor) -> None:
        seen.append(x.detach().clone())

    handle = _hook(hf, site, layer, keep)
    try:
        with torch.no_grad():
            hf(tokens)
    finally:
        handle.remove()
    return seen[0]


def patched_metric(
    hf: torch.nn.Module,
    clean: Tensor,
    corrupted: Tensor,
    answer: Tensor,
    vs: Tensor | None,
    site: str,
    layer: int,
    index: int,
    positions: Sequence[int] | None = None,
) -> float:
    """The corrupted run's metric with the site of block ``layer`` taken from the clean run:
    at position ``index`` (``resid_pre``, ``attn_out``, ``mlp_out``), or head ``index``'s
    slice of the output projection's input at ``positions`` (all by default) for ``z``."""
    source = capture(hf, clean, site, layer)
    if site == "z":
        n_heads = hf.config.num_attention_heads
        width = source.shape[-1] // n_heads
        at = list(range(source.shape[1])) if positions is None else list(positions)
        cols = slice(index * width, (index + 1) * width)

        def write(x: Tensor) -> Tensor:
            new = x.clone()
            new[:, at, cols] = source[:, at, cols]
            return new

    else:

        def write(x: Tensor) -> Tensor:
            new = x.clone()
            new[:, index] = source[:, index]
            return new

    return metric(hf, corrupted, answer, vs, [_hook(hf, site, layer, write)])


def float64_rms_norms(hf: torch.nn.Module) -> torch.nn.Module:
    """``hf`` with every Llama-style RMSNorm computed in the model's dtype: Hugging Face's own
    casts to float32 (its variance and its normalised output), a rounding of ~1e-8 that
    TransformerLens's bridge, which normalises in float64, does not make."""

    def forward(self: Any, x: Tensor) -> Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.variance_epsilon))

    for module in hf.modules():
        if type(module).__name__.endswith("RMSNorm"):
            module.forward = forward.__get__(module)  # type: ignore[method-assign]
    return hf
