"""Small random models of every supported architecture, built offline, and the two ways of
loading them into TransformerLens (``TransformerBridge``; the legacy ``HookedTransformer``).

Every model has random γ, β and biases and ε = 1e-2 (see :func:`conftest._randomise`), d_model
32 and 2 layers, so that the whole matrix of tests stays fast on two CPU cores. Used by
``tests/test_architectures.py`` and ``benchmarks/exactness.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

# Hugging Face architectures (a directory written by save_pretrained), and the
# attention-only model (no Hugging Face form: TransformerLens builds it from a config).
HF_ARCHITECTURES = ("gpt2", "neox", "llama", "gptj")
ATTN_ONLY = "attn-only"
ARCHITECTURES = (*HF_ARCHITECTURES, ATTN_ONLY)
RMS_ARCHITECTURES = ("llama",)

# HookedTransformer weight processing: none, all four (from_pretrained's default), each alone.
FOLD_OPTIONS: dict[str, dict[str, bool]] = {
    "raw": {},
    "fold_ln": {"fold_ln": True},
    "center_writing_weights": {"fold_ln": True, "center_writing_weights": True},
    "center_unembed": {"center_unembed": True},
    "fold_value_biases": {"fold_value_biases": True},
    "all": {
        "fold_ln": True,
        "center_writing_weights": True,
        "center_unembed": True,
        "fold_value_biases": True,
    },
}


def build_hf(
    folder: Path, arch: str, seed: int = 0, n_layers: int = 2, d_mlp: int | None = None
) -> Path:
    """A random Hugging Face model of ``arch`` and a tokenizer, saved in ``folder``
    (``d_mlp``: GPT-2's n_inner, GPT-NeoX's intermediate size)."""
    import transformers as hf
    from transformers import AutoTokenizer

    from .conftest import _randomise, _tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    _tokenizer(folder)
    vocab = len(AutoTokenizer.from_pretrained(folder))
    common: dict[str, Any] = {"vocab_size": vocab, "bos_token_id": 0, "eos_token_id": 0}
    torch.manual_seed(seed)
    if arch == "gpt2":
        # n_inner None means 4·d_model, which HookedTransformer's GPT-2 loader assumes.
        model = hf.GPT2LMHeadModel(
            hf.GPT2Config(
                n_layer=n_layers,
                n_head=4,
                n_embd=32,
                n_inner=d_mlp,
                n_positions=64,
                layer_norm_epsilon=1e-2,
                **common,
            )
        )
    elif arch == "neox":
        model = hf.GPTNeoXForCausalLM(
            hf.GPTNeoXConfig(
                num_hidden_layers=n_layers,
                num_attention_heads=4,
                hidden_size=32,
                intermediate_size=d_mlp or 64,
                max_position_embeddings=64,
                layer_norm_eps=1e-2,
                rotary_pct=0.25,
                use_parallel_residual=True,
                tie_word_embeddings=False,
                **common,
            )
        )
    elif arch == "llama":
        model = hf.LlamaForCausalLM(
            hf.LlamaConfig(
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                max_position_embeddings=64,
                rms_norm_eps=1e-2,
                tie_word_embeddings=False,
                **common,
            )
        )
    elif arch == "gptj":
        model = hf.GPTJForCausalLM(
            hf.GPTJConfig(
                n_embd=32,
                n_layer=2,
                n_head=4,
                rotary_dim=4,
                n_positions=64,
                layer_norm_epsilon=1e-2,
                **common,
            )
        )
    else:
        raise ValueError(arch)
    _randomise(model, seed)
    model.save_pretrained(folder)
    if arch == "gpt2":
        # HookedTransformer's local loader (TransformerLens 3.x) reads n_ctx, which
        # transformers 5 no longer writes.
        config = json.loads((folder / "config.json").read_text())
        config["n_ctx"] = config["n_positions"]
        (folder / "config.json").write_text(json.dumps(config, indent=1))
    return folder


def folder_name(arch: str) -> str:
    # TransformerLens 3.x treats any path containing "llama" as a hub name it must not fetch.
    return {"llama": "rms-gqa"}.get(arch, arch)


# -- TransformerBridge ---------------------------------------------------------------------


def boot_bridge(folder: Path | None, arch: str, dtype: torch.dtype, compat: bool) -> Any:
    """A TransformerBridge of ``arch`` (attention-only: ``boot_native``), raw or after
    ``enable_compatibility_mode()``."""
    from transformer_lens.model_bridge import TransformerBridge

    if arch == ATTN_ONLY:
        import transformer_lens.model_bridge.sources  # noqa: F401  (attaches boot_native)
        from transformer_lens.config import TransformerBridgeConfig
        from transformers import AutoTokenizer

        assert folder is not None
        cfg = TransformerBridgeConfig(
            d_model=32,
            n_layers=2,
            n_heads=4,
            d_head=8,
            n_ctx=64,
            d_vocab=len(AutoTokenizer.from_pretrained(folder)),
            attn_only=True,
            normalization_type="LN",
            act_fn=None,
            eps=1e-2,
            seed=0,
            positional_embedding_type="standard",
        )
        bridge = TransformerBridge.boot_native(  # type: ignore[attr-defined]
            cfg, tokenizer=AutoTokenizer.from_pretrained(folder), dtype=torch.float64
        )
        _randomise_tl(bridge.original_model, seed=0)
        bridge = bridge.to(dtype)
    else:
        bridge = TransformerBridge.boot_transformers(str(folder), dtype=dtype)
    if compat:
        bridge.enable_compatibility_mode()
    return bridge


def _randomise_tl(model: torch.nn.Module, seed: int) -> None:
    """:func:`conftest._randomise` for TransformerLens's own parameter names too
    (``ln1.w``, ``ln_final.b``, ``b_Q``...)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
            leaf = name.split(".")[-1]
            is_norm = "ln" in name or "norm" in name
            if is_norm and leaf in ("w", "weight"):
                p.copy_(1.0 + 0.5 * noise)
            elif is_norm and leaf in ("b", "bias"):
                p.copy_(0.5 * noise)
            elif leaf == "bias" or leaf.startswith("b_"):
                p.copy_(0.3 * noise)
            else:
                p.add_(0.05 * noise)


# -- HookedTransformer (TransformerLens 2.x / 3.x) -----------------------------------------


def hooked_available() -> bool:
    try:
        from transformer_lens import HookedTransformer  # noqa: F401
    except ImportError:
        return False
    return True


def load_hooked(
    folder: Path, arch: str, dtype: torch.dtype, option: str, hf_model: Any = None
) -> Any:
    """A HookedTransformer of ``arch`` with the weight processing ``FOLD_OPTIONS[option]``."""
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformers import AutoTokenizer

    flags = {
        "fold_ln": False,
        "center_writing_weights": False,
        "center_unembed": False,
        "fold_value_biases": False,
        **FOLD_OPTIONS[option],
    }
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if arch == ATTN_ONLY:
        cfg = HookedTransformerConfig(
            d_model=32,
            n_layers=2,
            n_heads=4,
            d_head=8,
            n_ctx=64,
            d_vocab=len(tokenizer),
            attn_only=True,
            normalization_type="LN",
            eps=1e-2,
            act_fn=None,
            seed=0,
            positional_embedding_type="standard",
            dtype=torch.float64,
        )
        model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
        _randomise_tl(model, seed=0)
        state = {k: v.to(dtype) for k, v in model.state_dict().items()}
        cfg = HookedTransformerConfig(**{**cfg.to_dict(), "dtype": dtype})
    else:
        cfg = loading.get_pretrained_model_config(
            str(folder), dtype=dtype, device="cpu", fold_ln=flags["fold_ln"]
        )
        state = loading.get_pretrained_state_dict(str(folder), cfg, hf_model=hf_model, dtype=dtype)
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    model.load_and_process_state_dict(state, **flags)
    return model.eval()


def attn_only_weights(model: Any) -> dict[str, Any]:
    """The weights :func:`reference.attn_only_logits` needs, read from either API by
    TransformerLens's own names (the norms as parameters, ``None`` where folded away)."""

    def norm(module: Any) -> tuple[Any, Any]:
        inner = getattr(module, "original_component", None)
        if inner is not None:  # bridge: the wrapped torch LayerNorm
            return inner.weight, inner.bias
        return getattr(module, "w", None), getattr(module, "b", None)

    return {
        "eps": model.cfg.eps,
        "W_E": model.W_E,
        "W_pos": model.W_pos,
        "layers": [
            {
                "ln1": norm(block.ln1),
                **{
                    name: getattr(block.attn, name)
                    for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O")
                },
            }
            for block in model.blocks
        ],
        "ln_final": norm(model.ln_final),
        "W_U": model.W_U,
        "b_U": model.b_U,
    }
