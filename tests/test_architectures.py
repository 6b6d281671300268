"""Every architecture through TransformerBridge, raw and after enable_compatibility_mode(),
in every dtype, for every split, for an answer and for answer − vs: the terms add up to the
logit of an independent forward pass.

The reference is Hugging Face's own forward pass: the model loaded apart from TransformerLens
for a raw bridge; for a compatibility-mode bridge, the Hugging Face module the bridge runs,
whose weights ``enable_compatibility_mode()`` folded and centred in place. The attention-only
model has no Hugging Face form: its reference is the forward written out from its weights
(``reference.attn_only_logits``). Tolerances (see ``symtrans.verify``):

- float64: LayerNorm models 1e-10; RMSNorm models 1e-6 (Hugging Face's RMSNorm computes its
  variance in float32 even in a float64 model);
- float32, float16, bfloat16: the documented ``RTOL[dtype] · max(1, Σ|parts|)``.

The same file runs under TransformerLens 3.x (``make test-tl3``) and 4.x (``make test``).
"""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

import symtrans as st
from symtrans.adapter import as_adapter
from symtrans.adapter.common import refuse_nonlinear_logits
from symtrans.adapter.protocol import Hook, HookKey
from symtrans.norm import NormKind
from symtrans.verify import RTOL

from . import arch_models as am
from . import reference
from .conftest import PROMPT

TL_MAJOR = int(importlib.metadata.version("transformer_lens").split(".")[0])
DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
DIRECTIONS = {"answer": (" Ireland", None), "answer-vs": (" Ireland", " France")}
# How far a TransformerLens-processed float64 model may be from the unprocessed Hugging Face
# model: TransformerLens folds and centres the weights in float32 (ProcessWeights upcasts
# "reduced precision" to float32, which rounds float64 weights), relative to Σ|parts|.
TL_PROCESSING_RTOL = 1e-6


def _bridge_rows() -> list[object]:
    """Every (architecture, compatibility mode) the installed TransformerLens has. Under
    TransformerLens 3 two rows do not exist: attention-only bridges (``boot_native`` is new in
    4; TL 3's attention-only model is the HookedTransformer, tests/test_hooked_transformer.py)
    and GPT-J in compatibility mode (TL 3.9's enable_compatibility_mode() itself fails on it:
    "self and mat2 must have the same dtype"; TL 4.3 works)."""
    rows = []
    for arch in am.ARCHITECTURES:
        for compat in (False, True):
            if TL_MAJOR < 4 and (arch == am.ATTN_ONLY or (arch == "gptj" and compat)):
                continue
            rows.append(pytest.param(arch, compat, id=f"{arch}-{'compat' if compat else 'raw'}"))
    return rows


BRIDGE_ROWS = _bridge_rows()


def _ids(tokenizer: object, answer: str, vs: str | None) -> tuple[int, int | None]:
    a = tokenizer.encode(answer, add_special_tokens=False)  # type: ignore[attr-defined]
    b = None if vs is None else tokenizer.encode(vs, add_special_tokens=False)  # type: ignore[attr-defined]
    assert len(a) == 1 and (b is None or len(b) == 1), (answer, a, vs, b)
    return a[0], None if b is None else b[0]


def _direction(logits: torch.Tensor, a: int, b: int | None) -> float:
    logits = logits.to(torch.float64)
    return float(logits[a] - (logits[b] if b is not None else 0.0))


def tolerance(arch: str, dtype: str, magnitude: float) -> float:
    """The test's tolerance against the reference (the issue's numbers; see module doc)."""
    if dtype == "float64":
        return 1e-6 if arch in am.RMS_ARCHITECTURES else 1e-10
    norm = NormKind.RMS if arch in am.RMS_ARCHITECTURES else NormKind.LAYER
    return RTOL[(dtype, norm)] * max(1.0, magnitude)


def bridge_reference(model: object, arch: str, compat: bool, hf: object, tokens: list[int]):
    """Logits ``[pos, vocab]`` of the independent forward pass for a bridge row."""
    if arch == am.ATTN_ONLY:
        return reference.attn_only_logits(am.attn_only_weights(model), tokens)
    module = model.original_model if compat else hf  # type: ignore[attr-defined]
    return reference.forward(module, tokens)["logits"]


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("split", st.SPLITS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("arch,compat", BRIDGE_ROWS)
def test_bridge_adds_up_to_reference(arch_bridge, arch_hf, arch, compat, dtype, split, direction):
    model = arch_bridge(arch, DTYPES[dtype], compat)
    answer, vs = DIRECTIONS[direction]
    d = st.decompose(model, PROMPT, answer=answer, vs=vs, split=split)
    a, b = _ids(model.tokenizer, answer, vs)  # type: ignore[attr-defined]
    hf = None if arch == am.ATTN_ONLY or compat else arch_hf(arch, DTYPES[dtype])
    logits = bridge_reference(model, arch, compat, hf, list(d.tokens))
    expected = _direction(logits[d.position], a, b)
    assert abs(d.total - expected) <= tolerance(arch, dtype, d.magnitude), (d.total, expected)
    assert d.model.dtype == dtype
    d.verify()  # against the bridge's own logit, at the default tolerance of dtype and norm


@pytest.mark.parametrize(
    "arch", [a for a in am.HF_ARCHITECTURES if not (a == "gptj" and TL_MAJOR < 4)]
)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_compatibility_mode_is_the_unprocessed_model_up_to_tl_rounding(
    arch_bridge, arch_hf, arch, direction
):
    """Against the model as saved (not the folded module): enable_compatibility_mode() centres
    the unembedding, so a single logit becomes logit − mean over the vocabulary; a logit
    difference is unchanged. TransformerLens processes the weights in float32."""
    model = arch_bridge(arch, torch.float64, True)
    answer, vs = DIRECTIONS[direction]
    d = st.decompose(model, PROMPT, answer=answer, vs=vs, split="heads")
    logits = reference.forward(arch_hf(arch, torch.float64), list(d.tokens))["logits"][d.position]
    logits = logits - logits.mean()
    expected = _direction(logits, *_ids(model.tokenizer, answer, vs))  # type: ignore[attr-defined]
    assert abs(d.total - expected) <= TL_PROCESSING_RTOL * max(1.0, d.magnitude)


@pytest.mark.parametrize("arch,compat", BRIDGE_ROWS)
def test_final_norm_is_read_as_the_forward_applies_it(arch_bridge, arch, compat):
    """``norm.apply(x^L) W_U + b_U`` is the bridge's whole row of logits, every token."""
    model = arch_bridge(arch, torch.float64, compat)
    adapter = as_adapter(model)
    tokens = torch.tensor([adapter.tokenize(PROMPT)])
    last = torch.tensor([tokens.shape[1] - 1])
    resid = HookKey(Hook.RESID_FINAL)
    run = adapter.run(tokens, last, frozenset({resid}))
    normed = adapter.spec.norm.to(torch.float64).apply(run.activations[resid].to(torch.float64))
    W_U, b_U = adapter.unembed(torch.arange(model.cfg.d_vocab))  # type: ignore[attr-defined]
    rebuilt = normed @ W_U.T.to(torch.float64) + b_U.to(torch.float64)
    tol = 1e-6 if arch in am.RMS_ARCHITECTURES else 1e-12
    torch.testing.assert_close(rebuilt, run.logits.to(torch.float64), rtol=0, atol=tol)


@pytest.mark.parametrize("arch,compat", [r for r in BRIDGE_ROWS if r.values[0] == "llama"])
def test_grouped_query_heads_share_values_by_source_position(arch_bridge, arch, compat):
    """GQA: 4 query heads read 2 value heads; each head's source terms add up to its own z·W_O."""
    model = arch_bridge(arch, torch.float64, compat)
    assert model.cfg.n_key_value_heads < model.cfg.n_heads  # type: ignore[attr-defined]
    heads = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    sources = st.decompose(model, PROMPT, answer=" Ireland", split="positions")
    from symtrans import labels as lb

    for label, value in zip(heads.labels, heads.values, strict=True):
        if isinstance(label, lb.HeadOut):
            parts = [
                v
                for lab, v in zip(sources.labels, sources.values, strict=True)
                if isinstance(lab, lb.HeadSource)
                and (lab.layer, lab.head) == (label.layer, label.head)
            ]
            assert len(parts) == heads.position + 1
            assert sum(parts) == pytest.approx(value, abs=1e-12)


# -- what symtrans refuses ----------------------------------------------------------------


# Soft-capped logits (Gemma 2/3), logit scales (Cohere, Granite) and block layouts beyond
# these architectures are decomposed or refused per family: tests/test_families.py.


# boot_native is new in TransformerLens 4; under TL 3 the same toy is refused as a
# HookedTransformer (tests/test_hooked_transformer.py).
if TL_MAJOR >= 4:

    def test_model_without_final_norm_is_refused(arch_dirs):
        """Seed 002's toy as it is: attention only, and no norm before the unembedding."""
        import transformer_lens.model_bridge.sources  # noqa: F401
        from transformer_lens.config import TransformerBridgeConfig
        from transformer_lens.model_bridge import TransformerBridge
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(arch_dirs[am.ATTN_ONLY])
        cfg = TransformerBridgeConfig(
            d_model=12,
            n_layers=1,
            n_heads=3,
            d_head=4,
            n_ctx=16,
            d_vocab=len(tok),
            attn_only=True,
            normalization_type=None,
            act_fn=None,
            seed=0,
        )
        model = TransformerBridge.boot_native(cfg, tokenizer=tok)  # type: ignore[attr-defined]
        with pytest.raises(st.UnsupportedModelError, match="no final norm"):
            st.decompose(model, PROMPT, answer=" Ireland")


def test_scaled_logits_are_refused():
    with pytest.raises(st.UnsupportedModelError, match=r"CohereForCausalLM.*logit_scale=0.0625"):
        refuse_nonlinear_logits(
            "CohereForCausalLM", softcap=None, logit_scale=0.0625, has_final_norm=True
        )


def test_not_a_model_is_a_clear_error():
    with pytest.raises(st.InvalidArgumentError, match="TransformerBridge or HookedTransformer"):
        as_adapter(torch.nn.Linear(2, 2))
