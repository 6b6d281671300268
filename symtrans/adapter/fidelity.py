"""Is the wrapped model the user's model? The load-time probe.

TransformerLens's bridge re-implements parts of many architectures; where it computes a model
differently from the model's own code, every hook still adds up to the bridge's numbers, so
an identity checked against the bridge alone can be exact and wrong. :func:`load_model`
therefore runs the Hugging Face module on a short probe *before* the bridge takes it over (the
bridge replaces its submodules in place: there is no second copy of the weights), runs the
bridge on the same tokens, and refuses a model whose logits differ by more than the dtype
allows, naming the configuration entries that differ from the family's defaults.

Hugging Face's eager attention runs the softmax in float32 for some families and its sdpa
attention stays in the model's dtype; the bridge follows one or the other depending on the
family. Both are Hugging Face's own computation, so the probe compares against each
available implementation and keeps the closer.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from ..errors import UnsupportedModelError
from .common import dtype_name
from .families import family_of

PROBE_LENGTH = 12

# Relative to max(1, max |logit|) on the probe.
PROBE_RTOL = {
    ("float64", False): 1e-9,
    ("float64", True): 1e-5,  # norms computed in float32 by Hugging Face
    ("float32", False): 1e-4,
    ("float32", True): 1e-4,
    ("float16", False): 5e-2,
    ("float16", True): 5e-2,
    ("bfloat16", False): 5e-2,
    ("bfloat16", True): 5e-2,
}

# Config entries that set sizes, ids and bookkeeping rather than what the forward computes.
_BOOKKEEPING = {
    "vocab_size", "hidden_size", "n_embd", "d_model", "num_hidden_layers", "n_layer",
    "n_layers", "num_layers", "num_attention_heads", "n_head", "n_heads", "num_heads",
    "num_key_value_heads", "num_kv_heads", "intermediate_size", "n_inner", "ffn_dim",
    "ffn_hidden_size", "moe_intermediate_size", "shared_expert_intermediate_size",
    "max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "head_dim",
    "architectures", "dtype", "torch_dtype", "transformers_version", "model_type",
    "tie_word_embeddings", "use_cache", "output_attentions", "output_hidden_states",
    "return_dict", "num_local_experts", "num_experts", "num_experts_per_tok",
    "expansion_ratio", "word_embed_proj_dim", "layer_types", "max_window_layers",
}  # fmt: skip


@dataclass(frozen=True)
class Fidelity:
    """How closely the wrapped model reproduces the original on the probe."""

    architecture: str
    error: float  # max |wrapper logits − Hugging Face logits| on the probe
    tolerance: float
    reference: str  # the Hugging Face attention implementation compared against
    tokens: int  # probe length

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance


# Fidelity of the models symtrans loaded, by model (no attribute is set on the user's object).
RECORDS: weakref.WeakKeyDictionary[Any, Fidelity] = weakref.WeakKeyDictionary()


def probe_tokens(vocab_size: int, bos: int | None) -> Int[Tensor, "1 pos"]:
    """A fixed probe: ids spread over the vocabulary (BOS first where the model has one)."""
    ids = [(17 + 7919 * i) % vocab_size for i in range(PROBE_LENGTH)]
    if bos is not None and 0 <= bos < vocab_size:
        ids[0] = bos
    return torch.tensor([ids], dtype=torch.long)


def reference_logits(hf: Any, ids: Tensor) -> dict[str, Float[Tensor, "pos vocab"]]:
    """Hugging Face's own logits on ``ids`` under each attention implementation it offers
    (eager first); the module is left in eager mode, which the bridge uses."""
    out: dict[str, Tensor] = {}
    for implementation in ("eager", "sdpa"):
        try:
            hf.set_attn_implementation(implementation)
        except (ValueError, ImportError, AttributeError, NotImplementedError):
            continue
        ids = ids.to(_device(hf))
        with torch.no_grad():
            logits = hf(ids, attention_mask=torch.ones_like(ids), use_cache=False).logits
        out[implementation] = logits[0].detach()
    try:
        hf.set_attn_implementation("eager")
    except (ValueError, ImportError, AttributeError, NotImplementedError):
        pass
    return out


def _device(module: Any) -> torch.device:
    try:
        return next(module.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def tolerance(dtype: torch.dtype, architecture: str, scale: float) -> float:
    """How far the wrapper's probe logits may be from the original's: the dtype's relative
    tolerance (looser where Hugging Face computes the family's norms in float32), times the
    logits' scale."""
    family = family_of(architecture)
    in_float32 = bool(family is not None and family.norms_in_float32)
    rtol = PROBE_RTOL.get((dtype_name(dtype), in_float32), 5e-2)
    return rtol * max(1.0, scale)


def measure(
    architecture: str,
    dtype: torch.dtype,
    wrapped: Float[Tensor, "pos vocab"],
    references: dict[str, Float[Tensor, "pos vocab"]],
) -> Fidelity:
    """The wrapper's logits against the closest Hugging Face reference."""
    errors = {
        name: float((wrapped.to(torch.float64) - ref.to(torch.float64)).abs().max())
        for name, ref in references.items()
    }
    name = min(errors, key=lambda k: errors[k])
    scale = float(references[name].abs().max())
    return Fidelity(
        architecture=architecture,
        error=errors[name],
        tolerance=tolerance(dtype, architecture, scale),
        reference=name,
        tokens=int(wrapped.shape[0]),
    )


def differing_entries(config: Any) -> list[str]:
    """The configuration entries that differ from the family's defaults (what a wrapper may
    have ignored), sizes and bookkeeping left out."""
    try:
        defaults = type(config)().to_dict()
    except Exception:  # a config class that cannot be built bare: nothing to compare
        return []
    out = []
    for key, value in sorted(config.to_dict().items()):
        if key in _BOOKKEEPING or key.startswith("_") or key.endswith("_token_id"):
            continue
        if "eps" in key or key in ("id2label", "label2id"):
            continue
        if key in defaults and defaults[key] != value:
            out.append(f"{key}={value!r}")
    return out


def refuse_unfaithful(fidelity: Fidelity, config: Any) -> None:
    """:class:`UnsupportedModelError` if the wrapper's logits are not the model's."""
    if fidelity.passed:
        return
    entries = differing_entries(config)
    named = (
        f"; the configuration entries that differ from {type(config).__name__}'s defaults: "
        f"{', '.join(entries)} (one of them is computed differently)"
        if entries
        else ""
    )
    raise UnsupportedModelError(
        f"{fidelity.architecture}: TransformerLens's bridge computes logits that differ from "
        f"Hugging Face's own forward pass by {fidelity.error:.3g} on a {fidelity.tokens}-token "
        f"probe (tolerance {fidelity.tolerance:.3g}, {fidelity.reference} attention){named}. "
        "symtrans refuses rather than verify the numbers of a model other than yours"
    )


def reference_outputs(
    source: str, dtype: torch.dtype, tokens: list[int], position: int, answer: str, vs: str | None
) -> dict[str, float]:
    """Hugging Face's own output logit of ``answer`` (minus ``vs``) after ``tokens`` at
    ``position``, from the model at ``source`` loaded afresh in ``dtype`` (a second copy of
    its weights), under each attention implementation it offers."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(source)
    architecture = str((getattr(config, "architectures", None) or [""])[0])
    family = family_of(architecture)
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": "eager"}
    if family is not None and family.moe:
        kwargs["experts_implementation"] = "eager"
    hf = AutoModelForCausalLM.from_pretrained(source, **kwargs).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)
    a = tokenizer.encode(answer, add_special_tokens=False)
    b = None if vs is None else tokenizer.encode(vs, add_special_tokens=False)
    if len(a) != 1 or (b is not None and len(b) != 1):
        raise UnsupportedModelError(
            f"the tokenizer at {source!r} does not make {answer!r} (and {vs!r}) one token each, "
            "so it is not the tokenizer the decomposition used; pass the model's own folder"
        )
    out = {}
    for name, logits in reference_logits(hf, torch.tensor([tokens])).items():
        row = logits[position].to(torch.float64)
        out[name] = float(row[a[0]] - (row[b[0]] if b is not None else 0.0))
    return out
