"""Adapter for the legacy ``HookedTransformer`` (TransformerLens 2.x and 3.x; gone in 4.x).

Works with every weight-processing option, on or off: ``fold_ln`` (the final norm becomes
``LayerNormPre``/``RMSNormPre`` and its ``γ``, ``β`` live in ``W_U``, ``b_U``),
``center_writing_weights``, ``center_unembed`` (every logit at a position shifts by the same
amount; symtrans decomposes the logit the model outputs) and ``fold_value_biases``
(``b_V`` moves into ``b_O``). Nothing here imports ``transformer_lens``.

A HookedTransformer converted from a Hugging Face model is TransformerLens's own
re-implementation of it, computed from the weights and from the few configuration entries its
conversion reads. Where TransformerLens 3.9's conversion ignores an entry that changes the
forward pass (a bias, a sliding window, a partial rotary, an epsilon), every hook still adds up
to the HookedTransformer's own logit, which is not the original model's. So the original
configuration is read from where the model came from (``cfg.tokenizer_name``: its folder or
hub name, read from local files only) and each such entry refused with the reason, measured on
random models of the family against Hugging Face's own forward pass
(``tests/test_hooked_families.py``).
"""

from __future__ import annotations

import weakref
from typing import Any

from torch import Tensor

from ..errors import UnsupportedModelError
from ..norm import FinalNorm, NormKind
from .common import TransformerLensAdapter, refuse_nonlinear_logits, zeros_if_none
from .families import Refusal
from .protocol import Hook, HookKey, ModelSpec, RunResult, ScoreForm

# cfg.original_architecture of models whose HookedTransformer form has been checked against
# Hugging Face's forward (tests/test_hooked_transformer.py, tests/test_hooked_families.py),
# and their family (symtrans.adapter.families); None: built from a HookedTransformerConfig,
# where the block is HookedTransformer's own and the flags below decide the layout.
SUPPORTED_ARCHITECTURES: dict[str | None, str] = {
    None: "hooked",
    "GPT2LMHeadModel": "gpt2",
    "GPTNeoXForCausalLM": "gpt_neox",
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Phi3ForCausalLM": "phi3",
    "OPTForCausalLM": "opt",
    "GPTNeoForCausalLM": "gpt_neo",
    "GPTJForCausalLM": "gptj",
    "BloomForCausalLM": "bloom",
}

# Architectures TransformerLens 3.9's HookedTransformer has that symtrans has not checked,
# and why not.
_NOT_CHECKED = {
    **dict.fromkeys(
        ("GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM"),
        "TransformerLens 3.9 builds Gemma HookedTransformers only from official hub names, "
        "with the released sizes written into its code, so no model of this family could be "
        "checked against Hugging Face's forward pass here (Gemma 2 and 3 also normalise "
        "the attention and MLP outputs and soft-cap their logits)",
    ),
    "PhiForCausalLM": "TransformerLens 3.9 cannot build a Phi-1/2 HookedTransformer from a "
    "transformers 5 configuration (it reads partial_rotary_factor, which moved into "
    "rope_parameters), so none could be checked against Hugging Face's forward pass",
}

_BIASES = "attention_bias=True or mlp_bias=True"

# Configuration entries TransformerLens 3.9's conversion ignores or gets wrong, per family;
# each measured on a random model (tests/test_hooked_families.py), off Hugging Face's logits.
HOOKED_REFUSALS: dict[str, tuple[Refusal, ...]] = {
    "llama": (
        Refusal(
            _BIASES,
            lambda c: bool(getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False)),
            "TransformerLens 3.9's Llama conversion drops the attention and MLP biases (0.96 "
            "off Hugging Face's logits on a random model)",
        ),
    ),
    "qwen2": (
        Refusal(
            "use_sliding_window=True",
            lambda c: bool(getattr(c, "use_sliding_window", False)),
            "TransformerLens 3.9's Qwen2 conversion ignores the sliding window, so every layer "
            "attends to every earlier key (0.11 off Hugging Face's logits on a random model)",
        ),
    ),
    "qwen3": (
        Refusal(
            "attention_bias=True",
            lambda c: bool(getattr(c, "attention_bias", False)),
            "TransformerLens 3.9's Qwen3 conversion sets the query/key/value biases to zero "
            "(0.88 off Hugging Face's logits on a random model)",
        ),
        Refusal(
            "use_sliding_window=True",
            lambda c: bool(getattr(c, "use_sliding_window", False)),
            "TransformerLens 3.9's Qwen3 conversion ignores the sliding window",
        ),
    ),
    "phi3": (
        Refusal(
            "partial_rotary_factor < 1",
            lambda c: _rotary_fraction(c) < 1.0,
            "TransformerLens 3.9's Phi-3 conversion rotates every dimension of each head "
            "(0.013 off Hugging Face's logits on a random model)",
        ),
    ),
    "gptj": (
        Refusal(
            "layer_norm_epsilon != 1e-5",
            lambda c: float(getattr(c, "layer_norm_epsilon", 1e-5)) != 1e-5,
            "TransformerLens 3.9's GPT-J conversion writes eps=1e-5 whatever the "
            "configuration says (0.13 off Hugging Face's logits on a random model)",
        ),
    ),
    "bloom": (
        Refusal(
            "apply_residual_connection_post_layernorm=True",
            lambda c: bool(getattr(c, "apply_residual_connection_post_layernorm", False)),
            "each block replaces the residual stream by its norm's output, so the stream is "
            "not a sum of what the blocks add, and TransformerLens 3.9's BLOOM conversion "
            "ignores the entry (0.81 off Hugging Face's logits on a random model)",
        ),
    ),
}

# The final norm's module class -> (kind, has γ and β)
_NORMS = {
    "LayerNorm": (NormKind.LAYER, True),
    "LayerNormPre": (NormKind.LAYER, False),
    "RMSNorm": (NormKind.RMS, True),
    "RMSNormPre": (NormKind.RMS, False),
}


def is_hooked_transformer(model: Any) -> bool:
    return any(c.__name__ == "HookedTransformer" for c in type(model).__mro__)


def _rope(config: Any) -> dict[str, Any]:
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    return rope if isinstance(rope, dict) else {}


def _rotary_fraction(config: Any) -> float:
    """The fraction of each head's dimensions the original model rotates."""
    for value in (
        _rope(config).get("partial_rotary_factor"),
        getattr(config, "partial_rotary_factor", None),
        getattr(config, "rotary_pct", None),
    ):
        if value is not None:
            return float(value)
    return 1.0


# Read once per model and source: the original configuration does not change under it.
_ORIGINALS: weakref.WeakKeyDictionary[Any, tuple[str, tuple[str, Any] | None]] = (
    weakref.WeakKeyDictionary()
)


def original_config(model: Any) -> tuple[str, Any] | None:
    """``(source, config)``: the Hugging Face configuration the HookedTransformer was
    converted from, read from local files at ``cfg.tokenizer_name`` (TransformerLens records
    the folder or hub name there), or None where it is not readable or is not this model's."""
    cfg = model.cfg
    source = str(getattr(cfg, "tokenizer_name", None) or "")
    try:
        seen, found = _ORIGINALS[model]
        if seen == source:
            return found
    except (KeyError, TypeError):
        pass
    found = None
    if source:
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(source, local_files_only=True)
        except Exception:  # not a folder, not in the local cache, not a config
            config = None
        names = getattr(config, "architectures", None) or []
        if config is not None and cfg.original_architecture in names:
            found = (source, config)
    try:
        _ORIGINALS[model] = (source, found)
    except TypeError:
        pass
    return found


def _refuse_conversion(label: str, family: str, model: Any) -> str:
    """The original configuration's source, or :class:`UnsupportedModelError` for an entry
    TransformerLens's conversion of ``family`` does not compute as Hugging Face does."""
    cfg = model.cfg
    refusals = HOOKED_REFUSALS.get(family, ())
    original = original_config(model)
    if original is None:
        if refusals:
            entries = ", ".join(r.entry for r in refusals)
            raise UnsupportedModelError(
                f"{label}: TransformerLens 3.9's conversion of this block layout ignores "
                f"configuration entries that change the forward pass ({entries}), and the "
                "original Hugging Face configuration is not readable here (cfg.tokenizer_name="
                f"{getattr(cfg, 'tokenizer_name', None)!r}), so symtrans cannot tell whether "
                "this model computes the original's logits. Build the HookedTransformer from "
                "the model's folder or a hub name in the local cache, or load the model with "
                "st.load_model(path) (a TransformerBridge, checked against the original)"
            )
        return ""
    source, config = original
    for refusal in refusals:
        if refusal.applies(config):
            raise UnsupportedModelError(
                f"{label} from {source!r} with {refusal.entry}: {refusal.reason}. symtrans "
                "refuses rather than report numbers for a model other than yours; load it with "
                "st.load_model(path) instead (a TransformerBridge, checked against the original)"
            )
    for entry, expected, got in _differences(cfg, config):
        raise UnsupportedModelError(
            f"{label} from {source!r}: the configuration says {entry}={expected!r} but "
            f"TransformerLens's conversion computes with {got!r}, so the HookedTransformer is "
            "not the original model. symtrans refuses rather than report numbers for a model "
            "other than yours; load it with st.load_model(path) instead"
        )
    return source


def _differences(cfg: Any, config: Any) -> list[tuple[str, Any, Any]]:
    """The entries TransformerLens carries over from ``config`` whose values it changed:
    ``(entry, the configuration's value, the HookedTransformer's)``."""
    out: list[tuple[str, Any, Any]] = []
    eps_names = ("layer_norm_epsilon", "layer_norm_eps", "rms_norm_eps")
    eps = next(
        ((n, getattr(config, n)) for n in eps_names if getattr(config, n, None) is not None), None
    )
    if eps is not None and abs(float(eps[1]) - float(cfg.eps)) > 1e-9 * float(eps[1]):
        out.append((eps[0], float(eps[1]), float(cfg.eps)))
    if cfg.positional_embedding_type == "rotary":
        d_head = int(cfg.d_head)
        explicit = getattr(config, "rotary_dim", None)  # GPT-J: a number of dimensions
        rotary = int(explicit) if explicit else round(_rotary_fraction(config) * d_head)
        if rotary != int(cfg.rotary_dim):
            out.append(("rotary dimensions", rotary, int(cfg.rotary_dim)))
        rope = _rope(config)
        kind = rope.get("rope_type", rope.get("type", "default")) or "default"
        if kind not in ("default", "llama3") or (
            kind == "llama3" and not getattr(cfg, "use_NTK_by_parts_rope", False)
        ):
            out.append(("rope_type", kind, "default"))
        theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
        base = float(cfg.rotary_base)
        if theta is not None and abs(float(theta) - base) > 1e-9 * float(theta):
            out.append(("rope_theta", float(theta), base))
    return out


def _refuse_unsupported(model: Any) -> tuple[str, str]:
    """The family name and the original configuration's source ("" where there is none), or
    :class:`UnsupportedModelError` naming the piece symtrans cannot write exactly."""
    cfg = model.cfg
    arch = getattr(cfg, "original_architecture", None)
    label = f"HookedTransformer({arch})" if arch else "HookedTransformer"
    refuse_nonlinear_logits(
        label,
        softcap=getattr(cfg, "output_logits_soft_cap", None),
        logit_scale=None,
        has_final_norm=getattr(cfg, "normalization_type", None) is not None
        and getattr(model, "ln_final", None) is not None,
    )
    if getattr(cfg, "num_experts", None):
        raise UnsupportedModelError(
            f"{label}: its MLPs are mixtures of experts, which symtrans's HookedTransformer "
            "adapter does not present (no single W_out per block); load the model with "
            "st.load_model(path), whose TransformerBridge gives one term per expert"
        )
    if arch not in SUPPORTED_ARCHITECTURES:
        known = ", ".join(sorted(a for a in SUPPORTED_ARCHITECTURES if a))
        why = _NOT_CHECKED.get(str(arch), "this architecture's block layout has not been checked")
        raise UnsupportedModelError(
            f"{label}: {why}; symtrans refuses rather than return a sum that may not add up "
            f"(supported: {known}, or a model built from a HookedTransformerConfig). Load it "
            "with st.load_model(path) instead (a TransformerBridge)"
        )
    if getattr(cfg, "use_normalization_before_and_after", False):
        raise UnsupportedModelError(
            f"{label}: the blocks normalise their attention and MLP outputs (post-norms), so a "
            "head's output z·W_O is not what the block adds to the residual stream"
        )
    kind = type(model.ln_final).__name__
    if kind not in _NORMS:
        raise UnsupportedModelError(
            f"{label}: final norm {kind} is not supported (expected one of {', '.join(_NORMS)})"
        )
    family = SUPPORTED_ARCHITECTURES[arch]
    source = _refuse_conversion(label, family, model) if arch else ""
    return family, source


def _final_norm(model: Any) -> FinalNorm:
    """The final norm as ``model.ln_final`` applies it."""
    return _norm(model.ln_final, model.cfg)


def _norm(ln: Any, cfg: Any) -> FinalNorm:
    """A norm module (``LayerNorm``, ``LayerNormPre``, ``RMSNorm``, ``RMSNormPre``) as it
    applies itself."""
    if type(ln).__name__ not in _NORMS:
        raise UnsupportedModelError(
            f"norm {type(ln).__name__} is not supported (expected one of {', '.join(_NORMS)})"
        )
    kind, affine = _NORMS[type(ln).__name__]
    gamma = getattr(ln, "w", None) if affine else None
    beta = getattr(ln, "b", None) if affine and kind is NormKind.LAYER else None
    return FinalNorm(
        kind=kind,
        eps=float(getattr(ln, "eps", cfg.eps)),
        d_model=int(cfg.d_model),
        gamma=None if gamma is None else gamma.detach(),
        beta=None if beta is None else beta.detach(),
    )


class HookedTransformerAdapter(TransformerLensAdapter):
    """A :class:`~symtrans.adapter.protocol.ModelAdapter` over a ``HookedTransformer``."""

    def __init__(self, model: Any) -> None:
        architecture, self._source = _refuse_unsupported(model)
        cfg = model.cfg
        self._model = model
        # HookedTransformer's norms have no input hook; the last block's output is that input.
        self._resid_final = f"blocks.{int(cfg.n_layers) - 1}.hook_resid_post"
        self._spec = ModelSpec(
            architecture=architecture,
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            d_model=int(cfg.d_model),
            d_head=int(cfg.d_head),
            d_mlp=0 if cfg.attn_only else int(cfg.d_mlp or 0),
            n_ctx=int(cfg.n_ctx),
            # shortformer adds positions to the attention inputs only, not to the residual
            has_pos_embed=cfg.positional_embedding_type == "standard",
            parallel=bool(cfg.parallel_attn_mlp),
            norm=_final_norm(model),
            dtype=model.W_U.dtype,
            # HookedTransformer computes every norm in the model's dtype (Hugging Face's
            # float32 norms are not carried over).
            family="" if architecture == "hooked" else architecture,
        )

    @property
    def source(self) -> str:
        """The folder or hub name of the original Hugging Face model ("" where there is none
        or its configuration is not readable here): what ``d.verify(reference="hf")`` loads."""
        return self._source

    def unembed(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        return self._model.W_U[:, ids].T.detach(), self._model.b_U[ids].detach()

    def W_O(self, layer: int) -> Tensor:
        return self._model.blocks[layer].attn.W_O.detach()

    def b_O(self, layer: int) -> Tensor:
        return zeros_if_none(getattr(self._model.blocks[layer].attn, "b_O", None), self._spec)

    def W_out(self, layer: int) -> Tensor:
        return self._model.blocks[layer].mlp.W_out.detach()

    def b_out(self, layer: int) -> Tensor:
        return zeros_if_none(getattr(self._model.blocks[layer].mlp, "b_out", None), self._spec)

    # -- attention weights (symtrans.paths, symtrans.attention) ---------------------------------
    # GroupedQueryAttention's W_K, W_V, b_K, b_V already repeat each key/value head per
    # query head, so every accessor is [n_heads, ...].
    def W_Q(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_Q.detach()

    def W_K(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_K.detach()

    def W_V(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_V.detach()

    def b_Q(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._model.blocks[layer].attn.b_Q.detach()

    def b_K(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._model.blocks[layer].attn.b_K.detach()

    def b_V(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._model.blocks[layer].attn.b_V.detach()

    def score_form(self, layer: int) -> ScoreForm:
        """Block ``layer``'s scores: divided by its ``attn.attn_scale`` (per layer, so
        ``scale_attn_by_inverse_layer_idx`` and GPT-Neo's unscaled scores are read as the
        model has them), rotate-half rotary where the model is rotary, its soft-cap; or why
        the score is not a sum of pieces for this model."""
        cfg = self._model.cfg
        positions = cfg.positional_embedding_type
        rotary = "rotate_half" if positions == "rotary" else "none"
        refusal = None
        if getattr(cfg, "use_qk_norm", False):
            refusal = (
                "queries and keys pass through their own norms (q_norm, k_norm), which the "
                "score decomposition does not freeze"
            )
        elif positions == "alibi":
            refusal = "its ALiBi position bias is not a term of the residual stream"
        elif positions not in ("standard", "rotary"):
            refusal = f"its {positions!r} positions enter the scores, not the residual stream"
        elif rotary == "rotate_half" and (
            getattr(cfg, "rotary_adjacent_pairs", False)
            or getattr(cfg, "use_dynamic_ntk_rope", False)
        ):
            refusal = (
                "its rotary rotates adjacent pairs of dimensions or rescales itself with the "
                "context (GPT-J style, dynamic NTK), and the score decomposition applies the "
                "rotate-half rotary of GPT-NeoX and Llama only"
            )
        cap = getattr(cfg, "attn_scores_soft_cap", None)
        return ScoreForm(
            scale=float(self._model.blocks[layer].attn.attn_scale),
            rotary=rotary,
            softcap=float(cap) if cap is not None and float(cap) > 0 else None,
            refusal=refusal,
        )

    def ln1(self, layer: int) -> FinalNorm:
        """The first norm of block ``layer`` (``γ``/``β`` ``None`` after ``fold_ln``); its
        scale is read from the forward pass (:attr:`Hook.LN1_SCALE`), not recomputed."""
        return _norm(self._model.blocks[layer].ln1, self._model.cfg)

    def run(
        self, tokens: Tensor, positions: Tensor, keys: frozenset[HookKey], *args: Any, **kw: Any
    ) -> RunResult:
        """The shared forward pass; the rotary tables, which HookedTransformer keeps as
        buffers (``attn.rotary_cos``/``rotary_sin``) and hooks nowhere, are read after it."""
        rotary = frozenset(k for k in keys if k.hook in (Hook.ROT_COS, Hook.ROT_SIN))
        run = super().run(tokens, positions, keys - rotary, *args, **kw)
        if not rotary:
            return run
        acts = dict(run.activations)
        batch, n = tokens.shape
        for key in rotary:
            table = self._rotary_table(key)  # [n_ctx, rotary_dim]
            acts[key] = table[:n].unsqueeze(0).expand(batch, -1, -1)
        return RunResult(logits=run.logits, activations=acts)

    def _rotary_table(self, key: HookKey) -> Tensor:
        cfg = self._model.cfg
        if cfg.positional_embedding_type != "rotary":
            raise UnsupportedModelError(
                f"{key.hook.value}: this HookedTransformer has "
                f"{cfg.positional_embedding_type!r} positions, not rotary"
            )
        if getattr(cfg, "rotary_adjacent_pairs", False) or getattr(
            cfg, "use_dynamic_ntk_rope", False
        ):
            raise UnsupportedModelError(
                "this HookedTransformer's rotary rotates adjacent pairs or rescales "
                "itself with the context (GPT-J style, dynamic NTK); attention-score "
                "decompositions read the rotate-half rotary of GPT-NeoX and Llama only"
            )
        attn = self._model.blocks[key.layer].attn
        table = attn.rotary_cos if key.hook is Hook.ROT_COS else attn.rotary_sin
        return table.detach()
