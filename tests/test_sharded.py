"""Sharded models (issue 15): a model whose weights accelerate placed with a ``device_map``
decomposes exactly, each term gathered to the CPU in float64. This machine has no accelerator,
so the map puts blocks on the CPU, in CPU memory offload (``"cpu"``: the module's weights live
in accelerate's map, ``meta`` on the module) and on disk (``"disk"``): every weight the
adapters read then has to be onloaded, block by block. ``benchmarks/gpu_check.py`` runs the
multi-GPU case where a GPU machine is lent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans.adapter import as_adapter
from symtrans.adapter.host import Onloading, is_offloaded

from . import reference

PROMPT, ANSWER, VS = "Dublin is the capital city of", " Ireland", " France"
SPLITS = ("layers", "heads", "neurons")

# Hugging Face module names of each family's pieces: block 0 stays, block 1 is offloaded.
MAPS = {
    "gpt2": {
        "transformer.wte": 0,
        "transformer.wpe": 0,
        "transformer.drop": 0,
        "transformer.h.0": "cpu",
        "transformer.h.1": "disk",
        "transformer.ln_f": "disk",
        "lm_head": 0,
    },
    "llama": {
        "model.embed_tokens": 0,
        "model.rotary_emb": 0,
        "model.layers.0": "disk",
        "model.layers.1": "cpu",
        "model.norm": "disk",
        "lm_head": "disk",
    },
}


def _map(arch: str) -> dict[str, Any]:
    # 0 stands for "the execution device": here the CPU.
    return {k: ("cpu" if v == 0 else v) for k, v in MAPS[arch].items()}


def _reference(hf: torch.nn.Module, tokens: list[int], tokenizer: Any) -> float:
    a = tokenizer.encode(ANSWER, add_special_tokens=False)[0]
    b = tokenizer.encode(VS, add_special_tokens=False)[0]
    return reference.logit(hf, tokens, len(tokens) - 1, a, b)


@pytest.mark.parametrize("library", ["nnsight", "transformer_lens"])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_offloaded_model_decomposes_exactly(
    arch: str, library: str, arch_dirs: dict[str, Path], arch_hf: Any, tmp_path: Path
) -> None:
    if library == "nnsight":
        pytest.importorskip("nnsight", reason="the symtrans[nnsight] extra is not installed")
    model = st.load_model(
        arch_dirs[arch],
        dtype=torch.float64,
        library=library,
        device_map=_map(arch),
        offload_folder=tmp_path / "offload",
    )
    hf_module = model._module if library == "nnsight" else model.original_model
    assert is_offloaded(hf_module)  # the map did offload: the weights are meta on the modules
    adapter = as_adapter(model)
    if library == "transformer_lens":
        assert isinstance(adapter, Onloading)
    whole = arch_hf(arch, torch.float64)
    tol = 1e-6 if arch == "llama" else 1e-12
    for split in SPLITS:
        d = st.decompose(model, PROMPT, ANSWER, vs=VS, split=split).verify()
        assert d.values.dtype == np.float64
        ref = _reference(whole, list(d.tokens), model.tokenizer)
        assert abs(d.total - ref) <= tol and abs(d.model_logit - ref) <= tol, (split, d.total, ref)
    # The weights read block by block equal the whole model's.
    for layer in range(2):
        if arch == "gpt2":
            expected = whole.transformer.h[layer].mlp.c_proj.weight
        else:
            expected = whole.model.layers[layer].mlp.down_proj.weight.T
        assert torch.equal(adapter.W_out(layer), expected)
    assert is_offloaded(hf_module)  # onloading is temporary: the weights went back
