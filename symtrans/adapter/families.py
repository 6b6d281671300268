"""The model families symtrans writes as an exact sum, what each needs, and the configurations
it refuses, checked before any weight is loaded.

A family is recognised by the Hugging Face class name TransformerLens's bridge reports
(``cfg.architecture``). What the adapter reads from the model itself (post-norms, multipliers,
logit scale, soft-cap, grouped-query heads) it finds there; what it cannot see — a
configuration that TransformerLens 4.3's bridge computes differently from Hugging Face's own
code, or that makes the residual stream something other than a sum of what the blocks add —
is listed here as a :class:`Refusal` with the reason, measured on random models of the family
(see ``tests/families.py``). The load-time probe (:mod:`.fidelity`) catches any difference
this table does not name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import UnsupportedModelError

Rotary = Literal["none", "rotate_half", "adjacent"]


@dataclass(frozen=True)
class Refusal:
    """A configuration the family's bridge does not compute as Hugging Face does."""

    entry: str  # the config entry (or entries) responsible
    applies: Callable[[Any], bool]  # config -> whether this configuration has it
    reason: str


@dataclass(frozen=True)
class Family:
    """What symtrans knows about one model family."""

    name: str  # short id shown in reports: "gpt2", "gemma2"
    title: str  # "GPT-2"
    classes: tuple[str, ...]  # Hugging Face class names
    # Hugging Face computes this family's norms (or their variance) in float32 even in a
    # float64 model: the identity then holds to ~1e-7 relative, not 1e-15.
    norms_in_float32: bool = False
    rotary: Rotary = "rotate_half"  # how queries and keys are rotated (attention scores)
    # Why attention-score decompositions are refused for this family (None: supported).
    no_scores: str | None = None
    moe: bool = False  # mixture-of-experts MLPs
    refusals: tuple[Refusal, ...] = ()


def _get(config: Any, name: str, default: Any = None) -> Any:
    return getattr(config, name, default)


_PATTERN_HOOK = (
    "TransformerLens fires hook_attn_scores with the softmaxed pattern for this family (its "
    "bridge hands attention to Hugging Face's module), so there is no pre-softmax score to "
    "check a sum against"
)

FAMILIES: tuple[Family, ...] = (
    Family(
        "gpt2",
        "GPT-2",
        ("GPT2LMHeadModel",),
        rotary="none",
        refusals=(
            Refusal(
                "scale_attn_weights=False",
                lambda c: _get(c, "scale_attn_weights", True) is False,
                "TransformerLens 4.3's bridge divides the attention scores by sqrt(d_head) "
                "whatever scale_attn_weights says (6.9e-3 off Hugging Face's logits on a random "
                "model)",
            ),
        ),
    ),
    Family(
        "gpt_neox",
        "GPT-NeoX / Pythia",
        ("GPTNeoXForCausalLM",),
        refusals=(
            Refusal(
                "attention_bias=False",
                lambda c: _get(c, "attention_bias", True) is False,
                "TransformerLens 4.3's GPT-NeoX bridge requires query/key/value biases and "
                "fails to boot without them",
            ),
        ),
    ),
    Family("llama", "Llama", ("LlamaForCausalLM",), norms_in_float32=True),
    Family("mistral", "Mistral", ("MistralForCausalLM",), norms_in_float32=True),
    Family("mixtral", "Mixtral", ("MixtralForCausalLM",), norms_in_float32=True, moe=True),
    Family("qwen2", "Qwen2 / Qwen2.5", ("Qwen2ForCausalLM",), norms_in_float32=True),
    Family("qwen2_moe", "Qwen2-MoE", ("Qwen2MoeForCausalLM",), norms_in_float32=True, moe=True),
    Family("qwen3", "Qwen3", ("Qwen3ForCausalLM",), norms_in_float32=True),
    Family("qwen3_moe", "Qwen3-MoE", ("Qwen3MoeForCausalLM",), norms_in_float32=True, moe=True),
    Family("gemma", "Gemma", ("GemmaForCausalLM",), norms_in_float32=True),
    Family("gemma2", "Gemma 2", ("Gemma2ForCausalLM",), norms_in_float32=True),
    Family(
        "gemma3",
        "Gemma 3",
        ("Gemma3ForCausalLM",),
        norms_in_float32=True,
        refusals=(
            Refusal(
                "attn_logit_softcapping",
                lambda c: _get(c, "attn_logit_softcapping") is not None,
                "Hugging Face's Gemma 3 stores attn_logit_softcapping but never applies it, "
                "while TransformerLens 4.3's bridge does (2.5 apart on a random model)",
            ),
        ),
    ),
    Family(
        "phi",
        "Phi-1/2",
        ("PhiForCausalLM",),
        refusals=(
            Refusal(
                "qk_layernorm=True",
                lambda c: bool(_get(c, "qk_layernorm", False)),
                "TransformerLens 4.3's Phi bridge has no query/key LayerNorm and refuses to boot",
            ),
        ),
    ),
    Family("phi3", "Phi-3", ("Phi3ForCausalLM",), norms_in_float32=True),
    Family("olmo", "OLMo", ("OlmoForCausalLM",), norms_in_float32=True),
    Family("olmo2", "OLMo 2", ("Olmo2ForCausalLM",), norms_in_float32=True),
    Family(
        "opt",
        "OPT",
        ("OPTForCausalLM",),
        rotary="none",
        no_scores=_PATTERN_HOOK,
        refusals=(
            Refusal(
                "do_layer_norm_before=False",
                lambda c: _get(c, "do_layer_norm_before", True) is False,
                "post-norm OPT blocks normalise the residual stream itself, so it is not a sum "
                "of what the blocks add (and TransformerLens 4.3's bridge fails on it)",
            ),
            Refusal(
                "word_embed_proj_dim",
                lambda c: (
                    _get(c, "word_embed_proj_dim", _get(c, "hidden_size")) != _get(c, "hidden_size")
                ),
                "a projection follows the final norm (project_out), which TransformerLens 4.3's "
                "bridge leaves outside its final norm",
            ),
        ),
    ),
    Family("gpt_neo", "GPT-Neo", ("GPTNeoForCausalLM",), rotary="none", no_scores=_PATTERN_HOOK),
    Family("gptj", "GPT-J", ("GPTJForCausalLM",), rotary="adjacent", no_scores=_PATTERN_HOOK),
    Family(
        "codegen",
        "CodeGen",
        ("CodeGenForCausalLM",),
        rotary="adjacent",
        refusals=(
            Refusal(
                "(any CodeGen)",
                lambda c: True,
                "TransformerLens 4.3's CodeGen bridge reads attn.embed_positions, which "
                "transformers 5 moved to the model's rotary_emb: every forward pass fails",
            ),
        ),
    ),
    Family("stablelm", "StableLM", ("StableLmForCausalLM",)),
    Family(
        "falcon",
        "Falcon",
        ("FalconForCausalLM",),
        refusals=(
            Refusal(
                "alibi=True",
                lambda c: bool(_get(c, "alibi", False)),
                "Hugging Face's own eager and sdpa attention disagree for ALiBi Falcon (eager "
                "adds the bias twice: 4e-3 apart on a random model), and TransformerLens 4.3's "
                "bridge follows eager with a float32 softmax",
            ),
            Refusal(
                "new_decoder_architecture with num_kv_heads > 1",
                lambda c: (
                    bool(_get(c, "new_decoder_architecture", False))
                    and int(_get(c, "num_kv_heads", 1) or 1) > 1
                ),
                "TransformerLens 4.3's bridge splits the fused query/key/value weight of the "
                "new Falcon architecture in the wrong order for grouped key/value heads (0.24 "
                "off Hugging Face's logits, or a failed boot)",
            ),
            Refusal(
                "num_ln_in_parallel_attn=1",
                lambda c: (
                    bool(_get(c, "new_decoder_architecture", False))
                    and _get(c, "num_ln_in_parallel_attn", 2) == 1
                ),
                "TransformerLens 4.3's bridge always reads ln_attn, which this layout lacks",
            ),
        ),
    ),
    Family(
        "bloom",
        "BLOOM",
        ("BloomForCausalLM",),
        rotary="none",
        refusals=(
            Refusal(
                "apply_residual_connection_post_layernorm=True",
                lambda c: bool(_get(c, "apply_residual_connection_post_layernorm", False)),
                "each block replaces the residual stream by its norm's output, so the stream "
                "is not a sum of what the blocks add",
            ),
        ),
    ),
    Family("mpt", "MPT", ("MptForCausalLM",), rotary="none"),
    Family(
        "gpt_bigcode",
        "GPT-BigCode / StarCoder",
        ("GPTBigCodeForCausalLM",),
        rotary="none",
        refusals=(
            Refusal(
                "multi_query=False",
                lambda c: _get(c, "multi_query", True) is False,
                "TransformerLens 4.3's GPT-BigCode bridge supports multi-query attention only "
                "and refuses to boot",
            ),
            Refusal(
                "scale_attn_weights=False",
                lambda c: _get(c, "scale_attn_weights", True) is False,
                "TransformerLens 4.3's bridge divides the scores by sqrt(d_head) whatever "
                "scale_attn_weights says (0.015 off Hugging Face's logits on a random model)",
            ),
        ),
    ),
    Family("granite", "Granite", ("GraniteForCausalLM",), norms_in_float32=True),
    Family("cohere", "Cohere", ("CohereForCausalLM",), norms_in_float32=True),
)

BY_CLASS: dict[str, Family] = {name: f for f in FAMILIES for name in f.classes}


def family_of(architecture: str) -> Family | None:
    """The family of a Hugging Face class name, or None for one symtrans has not checked."""
    return BY_CLASS.get(architecture)


def refuse_configuration(architecture: str, config: Any) -> None:
    """:class:`UnsupportedModelError` if ``config`` has an entry the family cannot compute
    exactly; nothing for a supported configuration (or an unknown family)."""
    family = family_of(architecture)
    if family is None or config is None:
        return
    for refusal in family.refusals:
        if refusal.applies(config):
            raise UnsupportedModelError(
                f"{family.title} ({architecture}) with {refusal.entry}: {refusal.reason}. "
                "symtrans refuses rather than report numbers for a model other than yours"
            )
