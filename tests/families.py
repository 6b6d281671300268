"""One tiny random model per family of symtrans.adapter.families, with the family's
distinctive configuration entries set to non-default values, and the configurations each
family refuses (issue 12).

Every model: 2 layers, hidden 32, 4 heads (2 key/value heads where the family has grouped
queries), random norm weights and biases and random biases (conftest._randomise), ε = 1e-2
where the config has one, a tokenizer trained offline (conftest._tokenizer). Used by
tests/test_families.py and benchmarks/exactness.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PROMPT = "The river is long and the city is old. Dublin is the capital city of"  # > any window


@dataclass(frozen=True)
class Variant:
    name: str  # "gemma2-caps"
    family: str  # symtrans.adapter.families name
    model: str  # Hugging Face model class
    config: str  # Hugging Face config class
    kwargs: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None  # a piece of the UnsupportedModelError expected at load
    note: str = ""


_LLAMA = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    rms_norm_eps=1e-2,
    tie_word_embeddings=False,
)
_OLMO = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=64,
    tie_word_embeddings=False,
)
_FALCON = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    layer_norm_epsilon=1e-2,
    max_position_embeddings=64,
    ffn_hidden_size=64,
    bias=True,
    tie_word_embeddings=False,
)
_BIGCODE = dict(
    n_embd=32,
    n_layer=2,
    n_head=4,
    n_inner=64,
    n_positions=64,
    layer_norm_epsilon=1e-2,
    tie_word_embeddings=False,
)
_OPT = dict(
    hidden_size=32,
    ffn_dim=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    word_embed_proj_dim=32,
    pad_token_id=1,
)

VARIANTS: tuple[Variant, ...] = (
    Variant(
        "gpt2",
        "gpt2",
        "GPT2LMHeadModel",
        "GPT2Config",
        dict(
            n_layer=2,
            n_head=4,
            n_embd=32,
            n_inner=64,
            n_positions=64,
            layer_norm_epsilon=1e-2,
            scale_attn_by_inverse_layer_idx=True,
            tie_word_embeddings=False,
        ),
    ),
    Variant(
        "gpt2-unscaled",
        "gpt2",
        "GPT2LMHeadModel",
        "GPT2Config",
        dict(n_layer=2, n_head=4, n_embd=32, n_positions=64, scale_attn_weights=False),
        refused="scale_attn_weights=False",
    ),
    Variant(
        "neox",
        "gpt_neox",
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        dict(
            num_hidden_layers=2,
            num_attention_heads=4,
            hidden_size=32,
            intermediate_size=64,
            max_position_embeddings=64,
            layer_norm_eps=1e-2,
            rotary_pct=0.25,
            use_parallel_residual=True,
            tie_word_embeddings=False,
        ),
    ),
    Variant(
        "neox-sequential",
        "gpt_neox",
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        dict(
            num_hidden_layers=2,
            num_attention_heads=4,
            hidden_size=32,
            intermediate_size=64,
            max_position_embeddings=64,
            layer_norm_eps=1e-2,
            rotary_pct=1.0,
            use_parallel_residual=False,
        ),
    ),
    Variant(
        "neox-no-bias",
        "gpt_neox",
        "GPTNeoXForCausalLM",
        "GPTNeoXConfig",
        dict(num_hidden_layers=2, num_attention_heads=4, hidden_size=32, attention_bias=False),
        refused="attention_bias=False",
    ),
    Variant(
        "llama",
        "llama",
        "LlamaForCausalLM",
        "LlamaConfig",
        dict(_LLAMA, attention_bias=True, mlp_bias=True, head_dim=16),
    ),
    Variant(
        "mistral",
        "mistral",
        "MistralForCausalLM",
        "MistralConfig",
        dict(_LLAMA, head_dim=8, sliding_window=4),
    ),
    Variant(
        "mixtral",
        "mixtral",
        "MixtralForCausalLM",
        "MixtralConfig",
        dict(_LLAMA, num_local_experts=4, num_experts_per_tok=2),
    ),
    Variant(
        "qwen2-moe",
        "qwen2_moe",
        "Qwen2MoeForCausalLM",
        "Qwen2MoeConfig",
        dict(
            _LLAMA,
            num_experts=4,
            num_experts_per_tok=2,
            moe_intermediate_size=16,
            shared_expert_intermediate_size=24,
            norm_topk_prob=True,
        ),
    ),
    Variant(
        "qwen3-moe",
        "qwen3_moe",
        "Qwen3MoeForCausalLM",
        "Qwen3MoeConfig",
        dict(_LLAMA, head_dim=8, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=16),
    ),
    Variant(
        "qwen2",
        "qwen2",
        "Qwen2ForCausalLM",
        "Qwen2Config",
        dict(_LLAMA, use_sliding_window=True, sliding_window=4, max_window_layers=1),
    ),
    Variant(
        "qwen3",
        "qwen3",
        "Qwen3ForCausalLM",
        "Qwen3Config",
        dict(_LLAMA, head_dim=8, attention_bias=True),
    ),
    Variant(
        "gemma",
        "gemma",
        "GemmaForCausalLM",
        "GemmaConfig",
        dict(_LLAMA, head_dim=16, tie_word_embeddings=True),
    ),
    Variant(
        "gemma2",
        "gemma2",
        "Gemma2ForCausalLM",
        "Gemma2Config",
        dict(
            _LLAMA,
            head_dim=8,
            tie_word_embeddings=True,
            final_logit_softcapping=2.0,
            attn_logit_softcapping=1.0,
            query_pre_attn_scalar=32,
            sliding_window=4,
        ),
    ),
    Variant(
        "gemma3",
        "gemma3",
        "Gemma3ForCausalLM",
        "Gemma3TextConfig",
        dict(
            _LLAMA,
            head_dim=8,
            tie_word_embeddings=True,
            query_pre_attn_scalar=32,
            sliding_window=4,
            final_logit_softcapping=2.0,
            layer_types=["sliding_attention", "full_attention"],
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 100.0},
                "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            },
        ),
    ),
    Variant(
        "gemma3-attn-cap",
        "gemma3",
        "Gemma3ForCausalLM",
        "Gemma3TextConfig",
        dict(_LLAMA, head_dim=8, attn_logit_softcapping=1.0),
        refused="attn_logit_softcapping",
    ),
    Variant(
        "phi",
        "phi",
        "PhiForCausalLM",
        "PhiConfig",
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=64,
            layer_norm_eps=1e-2,
            partial_rotary_factor=0.25,
            tie_word_embeddings=False,
        ),
    ),
    Variant(
        "phi-qk-norm",
        "phi",
        "PhiForCausalLM",
        "PhiConfig",
        dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            qk_layernorm=True,
        ),
        refused="qk_layernorm=True",
    ),
    Variant(
        "phi3",
        "phi3",
        "Phi3ForCausalLM",
        "Phi3Config",
        dict(_LLAMA, partial_rotary_factor=0.5, sliding_window=4),
    ),
    Variant(
        "olmo",
        "olmo",
        "OlmoForCausalLM",
        "OlmoConfig",
        dict(_OLMO, clip_qkv=0.5, attention_bias=True),
    ),
    Variant(
        "olmo2",
        "olmo2",
        "Olmo2ForCausalLM",
        "Olmo2Config",
        dict(_OLMO, rms_norm_eps=1e-2, num_key_value_heads=2, attention_bias=True),
    ),
    Variant("opt", "opt", "OPTForCausalLM", "OPTConfig", dict(_OPT, do_layer_norm_before=True)),
    Variant(
        "opt-post-norm",
        "opt",
        "OPTForCausalLM",
        "OPTConfig",
        dict(_OPT, do_layer_norm_before=False),
        refused="do_layer_norm_before=False",
    ),
    Variant(
        "opt-project",
        "opt",
        "OPTForCausalLM",
        "OPTConfig",
        dict(_OPT, word_embed_proj_dim=16),
        refused="word_embed_proj_dim",
    ),
    Variant(
        "gpt-neo",
        "gpt_neo",
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        dict(
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            max_position_embeddings=64,
            layer_norm_epsilon=1e-2,
            intermediate_size=64,
            attention_types=[[["global", "local"], 1]],
            window_size=4,
        ),
    ),
    Variant(
        "gptj",
        "gptj",
        "GPTJForCausalLM",
        "GPTJConfig",
        dict(
            n_embd=32,
            n_layer=2,
            n_head=4,
            rotary_dim=4,
            n_positions=64,
            layer_norm_epsilon=1e-2,
            n_inner=64,
        ),
    ),
    Variant(
        "codegen",
        "codegen",
        "CodeGenForCausalLM",
        "CodeGenConfig",
        dict(n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64, n_ctx=64),
        refused="CodeGen",
    ),
    Variant(
        "stablelm",
        "stablelm",
        "StableLmForCausalLM",
        "StableLmConfig",
        dict(
            _LLAMA,
            layer_norm_eps=1e-2,
            use_parallel_residual=False,
            use_qkv_bias=True,
            qk_layernorm=True,
        ),
    ),
    Variant(
        "stablelm-parallel",
        "stablelm",
        "StableLmForCausalLM",
        "StableLmConfig",
        dict(_LLAMA, layer_norm_eps=1e-2, use_parallel_residual=True, use_qkv_bias=True),
    ),
    Variant(
        "falcon",
        "falcon",
        "FalconForCausalLM",
        "FalconConfig",
        dict(
            _FALCON,
            new_decoder_architecture=False,
            multi_query=True,
            parallel_attn=True,
            alibi=False,
        ),
    ),
    Variant(
        "falcon-alibi",
        "falcon",
        "FalconForCausalLM",
        "FalconConfig",
        dict(
            _FALCON,
            new_decoder_architecture=False,
            multi_query=False,
            parallel_attn=False,
            alibi=True,
        ),
        refused="alibi=True",
    ),
    Variant(
        "falcon-new",
        "falcon",
        "FalconForCausalLM",
        "FalconConfig",
        dict(_FALCON, new_decoder_architecture=True, num_kv_heads=1, num_ln_in_parallel_attn=2),
    ),
    Variant(
        "falcon-new-gqa",
        "falcon",
        "FalconForCausalLM",
        "FalconConfig",
        dict(_FALCON, new_decoder_architecture=True, num_kv_heads=2, multi_query=False),
        refused="num_kv_heads > 1",
    ),
    Variant(
        "bloom",
        "bloom",
        "BloomForCausalLM",
        "BloomConfig",
        dict(
            hidden_size=32, n_layer=2, n_head=4, layer_norm_epsilon=1e-2, tie_word_embeddings=False
        ),
    ),
    Variant(
        "bloom-post-ln-residual",
        "bloom",
        "BloomForCausalLM",
        "BloomConfig",
        dict(hidden_size=32, n_layer=2, n_head=4, apply_residual_connection_post_layernorm=True),
        refused="apply_residual_connection_post_layernorm",
    ),
    Variant(
        "mpt",
        "mpt",
        "MptForCausalLM",
        "MptConfig",
        dict(
            d_model=32,
            n_heads=4,
            n_layers=2,
            expansion_ratio=2,
            max_seq_len=64,
            layer_norm_epsilon=1e-2,
            tie_word_embeddings=False,
            attn_config={"clip_qkv": 0.5, "softmax_scale": 0.2},
        ),
    ),
    Variant(
        "gpt-bigcode",
        "gpt_bigcode",
        "GPTBigCodeForCausalLM",
        "GPTBigCodeConfig",
        dict(_BIGCODE, multi_query=True),
    ),
    Variant(
        "gpt-bigcode-mha",
        "gpt_bigcode",
        "GPTBigCodeForCausalLM",
        "GPTBigCodeConfig",
        dict(_BIGCODE, multi_query=False),
        refused="multi_query=False",
    ),
    Variant(
        "granite",
        "granite",
        "GraniteForCausalLM",
        "GraniteConfig",
        dict(
            _LLAMA,
            embedding_multiplier=3.0,
            residual_multiplier=0.5,
            attention_multiplier=0.3,
            logits_scaling=4.0,
            attention_bias=True,
            mlp_bias=True,
        ),
    ),
    Variant(
        "cohere",
        "cohere",
        "CohereForCausalLM",
        "CohereConfig",
        dict(
            _LLAMA,
            layer_norm_eps=1e-2,
            logit_scale=0.25,
            use_qk_norm=True,
            attention_bias=True,
            pad_token_id=0,
        ),
    ),
)

# An architecture TransformerLens boots but symtrans has not checked: the layers split only.
UNLISTED = Variant(
    "starcoder2",
    "",
    "Starcoder2ForCausalLM",
    "Starcoder2Config",
    dict(_LLAMA, norm_epsilon=1e-2, use_bias=True),
)

BY_NAME = {v.name: v for v in (*VARIANTS, UNLISTED)}
SUPPORTED = tuple(v for v in VARIANTS if v.refused is None)
REFUSED = tuple(v for v in VARIANTS if v.refused is not None)


def build(folder: Path, variant: Variant, seed: int = 0) -> Path:
    """The random model of ``variant`` and its tokenizer, saved in ``folder``."""
    import transformers as hf
    from transformers import AutoTokenizer

    from .conftest import _randomise, _tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    _tokenizer(folder)
    vocab = len(AutoTokenizer.from_pretrained(folder))
    kwargs: dict[str, Any] = {
        "vocab_size": vocab,
        "bos_token_id": 0,
        "eos_token_id": 0,
        "pad_token_id": 0,
    }
    kwargs.update(variant.kwargs)
    config = getattr(hf, variant.config)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(hf, variant.model)(config)
    with torch.no_grad():
        _randomise(model, seed)
        # per-head norm weights (Cohere's query/key norms are [heads, d_head]) random too
        gen = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if p.ndim >= 2 and "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    model.save_pretrained(folder)
    return folder
