"""Adapter for TransformerLens's ``TransformerBridge`` (TransformerLens 3.x and 4.x), raw or
after ``enable_compatibility_mode()``.

The bridge wraps the Hugging Face module itself, so its hooks see the numbers of the forward
pass it runs. ``enable_compatibility_mode()`` folds the norms into the weights and centres them
*in place*: the final norm then has ``γ = 1``, ``β = 0`` and the folded ``W_U``/``b_U`` carry
them. The adapter reads the final norm from the module the forward applies, after any folding,
so both forms add up.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..errors import UnsupportedModelError
from ..kinds import SPLITS
from ..norm import FinalNorm, NormKind
from .common import (
    TransformerLensAdapter,
    per_query_head,
    refuse_nonlinear_logits,
    zeros_if_none,
)
from .families import Family, family_of, refuse_configuration
from .host import is_offloaded, onloaded
from .protocol import (
    CellBatch,
    Experts,
    Hook,
    HookKey,
    KeyValues,
    ModelSpec,
    MoEShape,
    Patch,
    RunResult,
    ScoreForm,
    Writer,
    Writers,
)
from .resume import OriginalModel, block_arguments, replay, resumable

NATIVE_FAMILY = Family(
    "native", "TransformerLens native", ("TransformerLensNative",), rotary="none"
)

# TransformerLens's own blocks (TransformerBridge.boot_native, attention-only included): not a
# Hugging Face family, every hook is TransformerLens's own computation.
NATIVE = "TransformerLensNative"


def _architecture(bridge: Any) -> str:
    cfg = bridge.cfg
    for name in (getattr(cfg, "architecture", None), getattr(cfg, "original_architecture", None)):
        if name:
            return str(name)
    if type(bridge.original_model).__name__ == "NativeModel":
        return NATIVE
    return type(bridge.original_model).__name__


def _hf_config(bridge: Any) -> Any:
    return getattr(getattr(bridge, "original_model", None), "config", None)


def _has_final_norm(bridge: Any) -> bool:
    ln = getattr(bridge, "ln_final", None)
    module = getattr(ln, "original_component", None)
    return ln is not None and type(module).__name__ != "Identity"


def _softcap(bridge: Any) -> float | None:
    caps = [
        getattr(bridge.cfg, "output_logits_soft_cap", None),
        getattr(_hf_config(bridge), "final_logit_softcapping", None),
    ]
    positive = [float(c) for c in caps if c is not None and float(c) > 0]
    return max(positive) if positive else None


def _logit_scale(bridge: Any, family: Family | None) -> float:
    """The factor the model multiplies its logits by after the unembedding (read from the
    module the forward runs: compatibility mode folds Cohere's into W_U and sets it to 1)."""
    hf = getattr(bridge, "original_model", None)
    if family is not None and family.name == "cohere":
        return float(getattr(hf, "logit_scale", 1.0))
    if family is not None and family.name == "granite":
        return 1.0 / float(getattr(_hf_config(bridge), "logits_scaling", 1.0) or 1.0)
    return 1.0


def _refuse_unsupported(bridge: Any) -> tuple[str, Family | None]:
    """The architecture and its family (None for one symtrans has not checked, which gets
    the ``layers`` split only), or :class:`UnsupportedModelError` naming the missing piece."""
    arch = _architecture(bridge)
    family = NATIVE_FAMILY if arch == NATIVE else family_of(arch)
    refuse_configuration(arch, _hf_config(bridge))
    scales = [getattr(_hf_config(bridge), name, None) for name in ("logit_scale", "logits_scaling")]
    refuse_nonlinear_logits(
        arch,
        # Gemma 2 and 3 are modelled: the pre-cap logit is decomposed, the cap applied after.
        softcap=None
        if family is not None and family.name in ("gemma2", "gemma3")
        else _softcap(bridge),
        # Cohere's and Granite's scale are a linear factor in the identity.
        logit_scale=None
        if family is not None and family.name in ("cohere", "granite")
        else next((s for s in scales if s is not None and float(s) != 1.0), None),
        has_final_norm=_has_final_norm(bridge),
    )
    return arch, family


def _final_norm(bridge: Any) -> FinalNorm:
    """The final norm as the bridge's forward applies it (see ``NormalizationBridge``)."""
    cfg = bridge.cfg
    ln = bridge.ln_final
    module = getattr(ln, "original_component", None)
    rms = getattr(ln, "uses_rms_norm", None)
    if rms is None:
        norm_type = "RMS" if getattr(cfg, "final_rms", False) else str(cfg.normalization_type)
        if norm_type not in ("LN", "LNPre", "RMS", "RMSPre"):
            raise UnsupportedModelError(
                f"final norm of type {norm_type!r} is not supported (expected LayerNorm or RMSNorm)"
            )
        rms = norm_type.startswith("RMS")
    # The python-norm path uses cfg.eps; the native path (and HF's module) the module's own.
    module_eps = getattr(module, "eps", None)
    if module_eps is None:
        module_eps = getattr(module, "variance_epsilon", None)
    native = getattr(ln, "use_native_layernorm_autograd", False) or getattr(
        cfg, "layer_norm_folding", False
    )
    eps = module_eps if (native and module_eps is not None) else getattr(cfg, "eps", module_eps)
    if eps is None:
        raise UnsupportedModelError("the final norm has no epsilon (neither eps nor cfg.eps)")
    return _bridge_norm(ln, bool(rms), float(eps), int(cfg.d_model))


def _bridge_norm(ln: Any, rms: bool, eps: float, d_model: int) -> FinalNorm:
    """A bridge norm component as it applies itself: ``γ`` (and, for LayerNorm, ``β``) from
    the Hugging Face module it wraps, none for the parameter-free (folded) bridges."""
    module = getattr(ln, "original_component", None)
    param_free = type(ln).__name__ in ("LayerNormPreBridge", "RMSNormPreBridge")
    gamma = None if param_free else getattr(module, "weight", None)
    if gamma is not None and getattr(ln, "uses_weight_offset", False):
        gamma = 1.0 + gamma  # Gemma's RMSNorm scales by (1 + weight)
    beta = None if (param_free or rms) else getattr(module, "bias", None)
    return FinalNorm(
        kind=NormKind.RMS if rms else NormKind.LAYER,
        eps=eps,
        d_model=d_model,
        gamma=None if gamma is None else gamma.detach(),
        beta=None if beta is None else beta.detach(),
    )


def _d_mlp(bridge: Any) -> int:
    """The MLP's width as its weights have it (TransformerLens's cfg.d_mlp is 4·d_model for
    OPT and Falcon whatever the config says)."""
    mlp = bridge.blocks[0].mlp
    try:
        with onloaded(mlp):  # accelerate may have offloaded it (``device_map``)
            return int(mlp.W_out.shape[0])
    except (AttributeError, TypeError):  # mixture of experts: no single W_out
        return int(bridge.cfg.d_mlp or 0)


def _post_norm(block: Any, name: str, d_model: int) -> FinalNorm | None:
    """The norm a block applies after a sublayer (``ln1_post``/``ln2_post``), if any."""
    ln = getattr(block, name, None)
    if ln is None:
        return None
    module = getattr(ln, "original_component", None)
    rms = bool(getattr(ln, "uses_rms_norm", False)) or "RMS" in type(module).__name__
    eps: Any = getattr(module, "eps", None)
    if eps is None:
        eps = getattr(module, "variance_epsilon", None)
    if eps is None:
        raise UnsupportedModelError(
            f"the norm {name} has no epsilon (neither eps nor variance_epsilon)"
        )
    return _bridge_norm(ln, rms, float(eps), d_model)


def _writers(bridge: Any, family: Family | None, d_model: int) -> tuple[Writers, ...]:
    """How each sublayer writes: Granite's residual multiplier, Gemma 2/3's and OLMo 2's
    norms after attention and MLP (their scale read from the forward pass)."""
    multiplier = 1.0
    if family is not None and family.name == "granite":
        multiplier = float(getattr(_hf_config(bridge), "residual_multiplier", 1.0) or 1.0)
    out = []
    for block in bridge.blocks:
        attn, mlp = _post_norm(block, "ln1_post", d_model), _post_norm(block, "ln2_post", d_model)
        out.append(
            Writers(
                attn=Writer(multiplier, attn, Hook.ATTN_POST_SCALE if attn is not None else None),
                mlp=Writer(multiplier, mlp, Hook.MLP_POST_SCALE if mlp is not None else None),
            )
        )
    return tuple(out)


def _moe_module(bridge: Any, layer: int) -> Any | None:
    """The Hugging Face sparse MoE block of ``layer``, or None for a dense MLP."""
    module = getattr(bridge.blocks[layer].mlp, "original_component", None)
    return module if hasattr(module, "experts") and hasattr(module, "gate") else None


def _moe_shapes(bridge: Any) -> tuple[MoEShape | None, ...]:
    out: list[MoEShape | None] = []
    for layer in range(len(bridge.blocks)):
        module = _moe_module(bridge, layer)
        if module is None:
            out.append(None)
            continue
        down = module.experts.down_proj  # [E, d_model, d_expert]
        shared = getattr(module, "shared_expert", None)
        d_shared = 0 if shared is None else int(shared.down_proj.weight.shape[1])
        out.append(MoEShape(int(down.shape[0]), int(down.shape[2]), d_shared))
    return tuple(out)


def _clip_qkv(bridge: Any) -> float | None:
    """OLMo's and MPT's clip_qkv: the model clamps queries, keys and values to ±clip after
    the hooks TransformerLens places on them."""
    config = _hf_config(bridge)
    clip = getattr(config, "clip_qkv", None)
    attn_config = getattr(config, "attn_config", None)
    if clip is None and attn_config is not None:
        clip = getattr(attn_config, "clip_qkv", None)
        if clip is None and isinstance(attn_config, dict):
            clip = attn_config.get("clip_qkv")
    return None if clip is None else float(clip)


def _accepts_logits_to_keep(bridge: Any) -> bool:
    """Whether the wrapped Hugging Face model can unembed only some positions."""
    forward = getattr(getattr(bridge, "original_model", None), "forward", None)
    try:
        return forward is not None and "logits_to_keep" in inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return False


def is_bridge(model: Any) -> bool:
    return any(c.__name__ == "TransformerBridge" for c in type(model).__mro__) or (
        hasattr(model, "original_model") and hasattr(model, "cfg") and hasattr(model, "adapter")
    )


class BridgeAdapter(TransformerLensAdapter):
    """A :class:`~symtrans.adapter.protocol.ModelAdapter` over a ``TransformerBridge``."""

    _resid_final = "ln_final.hook_in"

    def __init__(self, bridge: Any) -> None:
        arch, family = _refuse_unsupported(bridge)
        cfg = bridge.cfg
        self._model = bridge
        self._family = family
        attn_only = bool(getattr(cfg, "attn_only", False))
        d_model = int(cfg.d_model)
        note = ""
        if family is None:  # not checked: the residual differences alone are exact
            splits: tuple[str, ...] = ("layers",)
            note = (
                f"symtrans has not checked what {arch}'s hooks mean inside a block, so only "
                "the 'layers' split (each block's output read from the residual stream before "
                "and after it) is exact"
            )
        else:
            splits = SPLITS
        self._spec = ModelSpec(
            architecture=family.name if family is not None else arch,
            n_layers=int(cfg.n_layers),
            n_heads=int(cfg.n_heads),
            d_model=d_model,
            d_head=int(cfg.d_head),
            d_mlp=0 if attn_only else _d_mlp(bridge),
            n_ctx=int(cfg.n_ctx),
            has_pos_embed=getattr(bridge, "pos_embed", None) is not None
            and cfg.positional_embedding_type == "standard",
            parallel=bool(getattr(cfg, "parallel_attn_mlp", False)),
            norm=_final_norm(bridge),
            dtype=bridge.W_U.dtype,
            family=family.name if family is not None else "",
            splits=splits,
            splits_note=note,
            writers=_writers(bridge, family, d_model),
            logit_scale=_logit_scale(bridge, family),
            softcap=_softcap(bridge) if family is not None else None,
            norms_in_float32=bool(family is not None and family.norms_in_float32),
            moe=_moe_shapes(bridge) if family is not None and family.moe else (),
            clip_qkv=_clip_qkv(bridge),
        )
        self._logits_to_keep = _accepts_logits_to_keep(bridge)
        self._original_model: OriginalModel | None = None

    def _destination_logits(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """The model's own forward, unembedding only the final norm's output at
        ``positions`` (Hugging Face's ``logits_to_keep``) rather than ``[batch, pos, d_vocab]``
        logits: a third of a GPT-2-small forward's time, 190 MB at batch 8 x 118."""
        if not self._logits_to_keep or bool((positions != positions[0]).any()):
            return super()._destination_logits(tokens, positions)
        # One destination position for the whole batch (decompose groups prompts that way).
        logits = self._model(tokens, logits_to_keep=positions[:1].to(tokens.device))
        return logits[:, 0]

    def unembed(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """The rows the logits are read with, the model's logit scale included (Cohere,
        Granite): ``logit = <LN(x), W_U[:, t]> + b_U[t]`` holds for what this returns."""
        W_U = self._model.W_U  # [d_model, d_vocab]
        b_U = self._model.b_U
        rows, bias = W_U[:, ids].T.detach(), b_U[ids].detach()
        scale = self._spec.logit_scale
        return (rows, bias) if scale == 1.0 else (rows * scale, bias * scale)

    def W_O(self, layer: int) -> Tensor:
        return self._model.blocks[layer].attn.W_O.detach()

    def b_O(self, layer: int) -> Tensor:
        return zeros_if_none(self._model.blocks[layer].attn.b_O, self._spec)

    def W_out(self, layer: int) -> Tensor:
        if self._spec.moe and self._spec.moe[layer] is not None:
            raise UnsupportedModelError(
                f"block {layer}'s MLP is a mixture of experts: it has one W_out per expert "
                "(adapter.experts), not a single one"
            )
        return self._model.blocks[layer].mlp.W_out.detach()

    def experts(self, layer: int) -> Experts:
        """The weights of block ``layer``'s mixture-of-experts MLP (Hugging Face's own)."""
        module = _moe_module(self._model, layer)
        if module is None:
            raise UnsupportedModelError(f"block {layer}'s MLP is not a mixture of experts")
        shared = getattr(module, "shared_expert", None)
        return Experts(
            gate_up=module.experts.gate_up_proj.detach(),
            down=module.experts.down_proj.detach(),
            act=module.experts.act_fn,
            shared_gate=None if shared is None else shared.gate_proj.weight.detach(),
            shared_up=None if shared is None else shared.up_proj.weight.detach(),
            shared_down=None if shared is None else shared.down_proj.weight.detach(),
            shared_act=None if shared is None else shared.act_fn,
        )

    def b_out(self, layer: int) -> Tensor:
        # Read through the output projection: the bridge's ``mlp.b_out`` alias is the tensor
        # seen at boot, which stays ``meta`` when accelerate offloaded the block.
        mlp = self._model.blocks[layer].mlp
        out = getattr(mlp, "out", None)
        return zeros_if_none(mlp.b_out if out is None else out.bias, self._spec)

    # -- attention weights (symtrans.paths, symtrans.attention) ---------------------------------
    def W_Q(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._model.blocks[layer].attn.W_Q.detach()

    def W_K(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._per_query_head(self._model.blocks[layer].attn.W_K.detach())

    def W_V(self, layer: int) -> Tensor:  # [n_heads, d_model, d_head]
        return self._per_query_head(self._model.blocks[layer].attn.W_V.detach())

    def b_Q(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._head_bias(self._model.blocks[layer].attn.b_Q)

    def b_K(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._head_bias(self._model.blocks[layer].attn.b_K)

    def b_V(self, layer: int) -> Tensor:  # [n_heads, d_head]
        return self._head_bias(self._model.blocks[layer].attn.b_V)

    def _head_bias(self, value: Tensor | None) -> Tensor:
        if value is None:
            return torch.zeros(self._spec.n_heads, self._spec.d_head, dtype=self._spec.dtype)
        return self._per_query_head(value.detach())

    def _per_query_head(self, value: Tensor) -> Tensor:
        """The bridge gives keys and values per key/value head: one per query head here."""
        return per_query_head(value, self._spec.n_heads)

    def score_form(self, layer: int) -> ScoreForm:
        """What block ``layer``'s scores are: the scale the model really divides by (read
        from Hugging Face's attention module: ``scaling``, GPT-2's per-layer flags, ...; the
        bridge's cfg.attn_scale says √d_head for all of them), its soft-cap, its rotary, or
        why the score is not a sum of pieces for this family."""
        cfg = self._model.cfg
        family = self._family
        attn = self._model.blocks[layer].attn
        module = getattr(attn, "original_component", None)
        scaling = getattr(module, "scaling", None)
        if scaling is not None:
            scale = 1.0 / float(scaling)
        elif family is not None and family.name == "gpt2":
            config = _hf_config(self._model)
            scale = float(cfg.d_head) ** 0.5
            if getattr(config, "scale_attn_by_inverse_layer_idx", False):
                scale *= layer + 1
        else:
            value = float(getattr(cfg, "attn_scale", -1.0) or -1.0)
            scale = value if value > 0 else float(cfg.d_head) ** 0.5
        refusal = None
        if family is not None and family.no_scores:
            refusal = family.no_scores
        elif family is not None and family.rotary == "adjacent":
            refusal = (
                "its rotary rotates adjacent pairs of dimensions, not halves, and TransformerLens "
                "gives no rotated queries or keys to check a rotation against"
            )
        elif hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
            refusal = (
                "queries and keys pass through their own norms (q_norm, k_norm), which the "
                "score decomposition does not freeze"
            )
        elif cfg.positional_embedding_type == "alibi":
            refusal = "its ALiBi position bias is not a term of the residual stream"
        elif family is not None and family.name == "cohere":
            refusal = (
                "its rotary interleaves dimensions, which the score decomposition does not apply"
            )
        elif self._spec.clip_qkv is not None:
            refusal = f"the model clamps its queries and keys (clip_qkv={self._spec.clip_qkv:g})"
        rotary = "none" if family is not None and family.rotary == "none" else "rotate_half"
        if cfg.positional_embedding_type == "standard" or family is None:
            rotary = "none" if self._spec.has_pos_embed else rotary
        cap = getattr(_hf_config(self._model), "attn_logit_softcapping", None)
        return ScoreForm(
            scale=scale,
            rotary=rotary,
            softcap=None if cap is None else float(cap),
            refusal=refusal,
        )

    def ln1(self, layer: int) -> FinalNorm | None:
        """The first norm of block ``layer`` (``γ``/``β`` ``None`` where folded away; None
        where the attention reads the residual stream as it is, OLMo 2); its scale is read
        from the forward pass (:attr:`Hook.LN1_SCALE`), not recomputed."""
        ln = getattr(self._model.blocks[layer], "ln1", None)
        if ln is None:
            return None
        module = getattr(ln, "original_component", None)
        rms = bool(getattr(ln, "uses_rms_norm", False)) or "RMS" in type(module).__name__
        eps = getattr(module, "eps", None) or getattr(module, "variance_epsilon", None)
        eps = float(eps if eps is not None else self._model.cfg.eps)
        return _bridge_norm(ln, rms, eps, self._spec.d_model)

    # -- a forward pass started at a block (activation patching) ---------------------------
    @property
    def resumable(self) -> bool:
        """Whether :meth:`run_from` can skip the blocks below (see :mod:`.resume`)."""
        return resumable(self._model)

    def run_from(
        self,
        layer: int,
        resid: Tensor,
        tokens: Tensor,
        positions: Tensor,
        keys: frozenset[HookKey],
        patches: Mapping[HookKey, Patch] | None = None,
    ) -> RunResult:
        """Blocks ``layer..`` of ``tokens`` on ``resid`` (``[batch, pos, d_model]``), the
        blocks below not run (see :meth:`~.protocol.ResumableAdapter.run_from`)."""
        if not self.resumable:
            raise UnsupportedModelError(
                f"{type(self._model.original_model).__name__}: starting the forward pass at a "
                "block has not been checked for this model; run the whole pass with resid_pre "
                "patched instead (symtrans.trace.run.forward_from does)"
            )
        arguments = block_arguments(self._model, tokens)

        def logits_at(_: Tensor, where: Tensor) -> Tensor:
            return replay(self._model, layer, resid, arguments, where)

        return self._hooked(tokens, positions, keys, patches, logits_at)

    @property
    def runs_cells(self) -> bool:
        """Whether :meth:`run_cells` runs: Hugging Face's own blocks on the bridge's weights,
        so not after the bridge processed them (compatibility mode: the bridge's forward then
        computes differently from the Hugging Face classes), nor on a model sharded or
        offloaded by accelerate (whose hooks the blocks built here would not have)."""
        hf = self._model.original_model
        devices = set(dict(getattr(hf, "hf_device_map", None) or {}).values())
        return (
            self.resumable
            and not getattr(self._model, "_weights_processed", False)
            and len(devices) <= 1  # accelerate's hooks move a sharded model's activations
            and not is_offloaded(hf)
        )

    def _original(self) -> OriginalModel:
        """Hugging Face's own model on the bridge's weights, built once (see :mod:`.resume`)."""
        if not self.runs_cells:
            raise UnsupportedModelError(
                f"{type(self._model.original_model).__name__}: patching from a position has "
                "not been checked for this model or its weights were processed; run the "
                "passes from a block instead (symtrans.trace.run.forward_cells does)"
            )
        if self._original_model is None:
            self._original_model = OriginalModel(self._model)
        return self._original_model

    def key_values(self, tokens: Tensor) -> KeyValues:
        """The keys and values every block caches for ``tokens`` (Hugging Face's own)."""
        return self._original().key_values(tokens)

    def run_cells(self, batch: CellBatch) -> Tensor:
        """The rows of a patching pass through Hugging Face's own blocks, each from its start
        block and position (see :meth:`~.protocol.ResumableAdapter.run_cells`)."""
        return self._original().run_cells(batch)
