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
    "opt": ("model.decoder.layers", "self_attn", "fc2", "self_attn.out_proj"),
    "gpt_neo": ("transformer.h", "attn", "mlp", "attn.attention.out_proj"),
}

# Modules whose output already has the residual stream added (BLOOM's attention and MLP,
# MPT's MLP: ``forward(hidden_states, residual)``): the site is the output minus ``residual``.
RESIDUAL_INSIDE = {("bloom", "attn_out"), ("bloom", "mlp_out"), ("mpt", "mlp_out")}


# Names the other families give the same modules (tests/families.py's models).
_ATTENTION = ("self_attn", "attn", "attention", "self_attention")
_MLP = ("mlp", "feed_forward", "block_sparse_moe", "ffn")
_OUT_PROJ = ("o_proj", "dense", "c_proj", "out_proj")


def _get(module: Any, path: str) -> Any:
    for part in path.split("."):
        module = getattr(module, part)
    return module


def modules(hf: torch.nn.Module) -> tuple[str, str, str, str]:
    """``(blocks, attention, MLP, output projection)`` paths of ``hf``: :data:`MODULES`, or
    found by the names the families use (the blocks: the module list as long as the model
    has layers)."""
    if hf.config.model_type in MODULES:
        return MODULES[hf.config.model_type]
    n_layers = hf.config.num_hidden_layers
    blocks = next(
        name
        for name, m in hf.named_modules()
        if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers and name.count(".") <= 2
    )
    block = _get(hf, blocks)[0]
    attn = next(n for n in _ATTENTION if isinstance(getattr(block, n, None), torch.nn.Module))
    mlp = next(n for n in _MLP if isinstance(getattr(block, n, None), torch.nn.Module))
    out_proj = next(
        n for n in _OUT_PROJ if isinstance(getattr(getattr(block, attn), n, None), torch.nn.Module)
    )
    return blocks, attn, mlp, f"{attn}.{out_proj}"


def _module(hf: torch.nn.Module, site: str, layer: int) -> torch.nn.Module:
    blocks, attn, mlp, out_proj = modules(hf)
    block = _get(hf, blocks)[layer]
    if site == "resid_pre":
        return block  # type: ignore[no-any-return]
    return _get(block, {"attn_out": attn, "mlp_out": mlp, "z": out_proj}[site])  # type: ignore[no-any-return]


def _first(value: Any) -> Tensor:
    return value[0] if isinstance(value, tuple) else value  # type: ignore[no-any-return]


def _hook(
    hf: torch.nn.Module,
    site: str,
    layer: int,
    fn: Callable[[Tensor], Tensor | None],
    batch: int,
) -> Any:
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

    inside = (hf.config.model_type, site) in RESIDUAL_INSIDE

    def post(mod: Any, args: Any, kwargs: dict[str, Any], out: Any) -> Any:
        value = _first(out)
        shape = value.shape  # OPT's fc2 sees [batch·pos, d_model]
        residual = (args[1] if len(args) > 1 else kwargs["residual"]) if inside else 0
        new = fn((value - residual).reshape(batch, -1, shape[-1]))
        if new is None:
            return None
        new = new.reshape(shape) + residual
        return (new, *out[1:]) if isinstance(out, tuple) else new

    return module.register_forward_hook(post, with_kwargs=True)


def metric(
    hf: torch.nn.Module,
    tokens: Tensor,
    answer: Tensor,
    vs: Tensor | None,
    hooks: Sequence[Any] = (),
) -> float:
    """Mean over the rows of logit(answer) − logit(vs) at the last position (before the final
    soft-cap of a model that has one: the cap is invertible, ``c·atanh(y/c)``, and the linear
    logit is what symtrans decomposes); ``hooks`` (registered handles) are removed afterwards."""
    try:
        with torch.no_grad():
            logits = hf(tokens).logits[:, -1].to(torch.float64)
        cap = getattr(hf.config, "final_logit_softcapping", None)
        if cap:
            logits = cap * torch.atanh(logits / cap)
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

    handle = _hook(hf, site, layer, keep, tokens.shape[0])
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

    return metric(hf, corrupted, answer, vs, [_hook(hf, site, layer, write, corrupted.shape[0])])


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
