"""The legacy HookedTransformer (TransformerLens 2.x/3.x): every architecture, every weight
processing option on and off, every dtype, every split, answer and answer − vs.

The reference is Hugging Face's own forward pass of the model as saved (centred over the
vocabulary where ``center_unembed`` shifts every logit by the same amount); for the
attention-only model, the forward written out from the HookedTransformer's own weights. Any
weight processing happens in float32 inside TransformerLens (``ProcessWeights`` rounds float64
weights through float32), so a processed float64 model is within ``TL_PROCESSING_RTOL`` of
the saved one, not 1e-10; symtrans's sum still matches the model's own logit to 1e-15
(``d.verify()``, every row).

HookedTransformer is gone in TransformerLens 4.x: ``make test-tl3`` runs this file in a
TransformerLens 3.x environment, where ``SYMTRANS_REQUIRE_HOOKED=1`` turns the skip below
into a failure.
"""

from __future__ import annotations

import importlib.metadata
import os

import pytest
import torch

import symtrans as st

from . import arch_models as am

if not am.hooked_available():
    _version = importlib.metadata.version("transformer_lens")
    if os.environ.get("SYMTRANS_REQUIRE_HOOKED"):
        raise ImportError(f"HookedTransformer is not importable from TransformerLens {_version}")
    pytest.skip(
        f"HookedTransformer is not in TransformerLens {_version} (removed in 4.0); "
        "`make test-tl3` runs these tests under TransformerLens 3.9",
        allow_module_level=True,
    )

from symtrans.adapter import as_adapter  # noqa: E402
from symtrans.adapter.protocol import Hook, HookKey  # noqa: E402

from . import reference  # noqa: E402
from .conftest import PROMPT  # noqa: E402
from .test_architectures import (  # noqa: E402
    DIRECTIONS,
    DTYPES,
    TL_PROCESSING_RTOL,
    _direction,
    _ids,
    tolerance,
)

ARCHS = ("gpt2", "neox", "llama", am.ATTN_ONLY)


def _rows() -> list[object]:
    """Every option in float64; no processing and all of it in every dtype."""
    rows = []
    for option in am.FOLD_OPTIONS:
        for dtype in DTYPES if option in ("raw", "all") else ("float64",):
            rows.append(pytest.param(option, dtype, id=f"{option}-{dtype}"))
    return rows


@pytest.fixture(scope="module")
def hooked(arch_dirs, arch_hf):
    cache: dict[tuple[str, str, str], object] = {}

    def get(arch: str, dtype: str, option: str) -> object:
        if (arch, dtype, option) not in cache:
            hf = None if arch == am.ATTN_ONLY else arch_hf(arch, DTYPES[dtype])
            cache[(arch, dtype, option)] = am.load_hooked(
                arch_dirs[arch], arch, DTYPES[dtype], option, hf_model=hf
            )
        return cache[(arch, dtype, option)]

    return get


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("split", st.SPLITS)
@pytest.mark.parametrize("option,dtype", _rows())
@pytest.mark.parametrize("arch", ARCHS)
def test_hooked_adds_up_to_reference(hooked, arch_hf, arch, option, dtype, split, direction):
    model = hooked(arch, dtype, option)
    answer, vs = DIRECTIONS[direction]
    d = st.decompose(model, PROMPT, answer=answer, vs=vs, split=split)
    a, b = _ids(model.tokenizer, answer, vs)  # type: ignore[attr-defined]
    tol = tolerance(arch, dtype, d.magnitude)
    if arch == am.ATTN_ONLY:
        logits = reference.attn_only_logits(am.attn_only_weights(model), list(d.tokens))
    else:
        logits = reference.forward(arch_hf(arch, DTYPES[dtype]), list(d.tokens))["logits"]
        if option != "raw":
            tol = max(tol, TL_PROCESSING_RTOL * max(1.0, d.magnitude))
    row = logits[d.position].to(torch.float64)
    if am.FOLD_OPTIONS[option].get("center_unembed") and arch != am.ATTN_ONLY:
        row = row - row.mean()
    expected = _direction(row, a, b)
    assert abs(d.total - expected) <= tol, (d.total, expected, tol)
    assert d.model.dtype == dtype
    d.verify()


@pytest.mark.parametrize("option", am.FOLD_OPTIONS)
@pytest.mark.parametrize("arch", ARCHS)
def test_final_norm_is_read_as_the_forward_applies_it(hooked, arch, option):
    """LayerNormPre / RMSNormPre after fold_ln (γ, β gone into W_U, b_U): ``norm.apply(x^L)
    W_U + b_U`` is still the model's whole row of logits."""
    model = hooked(arch, "float64", option)
    adapter = as_adapter(model)
    assert (adapter.spec.norm.gamma is None) == bool(am.FOLD_OPTIONS[option].get("fold_ln"))
    tokens = torch.tensor([adapter.tokenize(PROMPT)])
    last = torch.tensor([tokens.shape[1] - 1])
    key = HookKey(Hook.RESID_FINAL)
    run = adapter.run(tokens, last, frozenset({key}))
    normed = adapter.spec.norm.apply(run.activations[key].to(torch.float64))
    W_U, b_U = adapter.unembed(torch.arange(model.cfg.d_vocab))  # type: ignore[attr-defined]
    rebuilt = normed @ W_U.T.to(torch.float64) + b_U.to(torch.float64)
    torch.testing.assert_close(rebuilt, run.logits.to(torch.float64), rtol=0, atol=1e-12)


def _config(**overrides: object) -> object:
    from transformer_lens import HookedTransformerConfig

    base: dict[str, object] = dict(
        d_model=12,
        n_layers=1,
        n_heads=3,
        d_head=4,
        n_ctx=16,
        d_vocab=50,
        attn_only=True,
        normalization_type="LN",
        act_fn=None,
        seed=0,
    )
    return HookedTransformerConfig(**{**base, **overrides})


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"normalization_type": None}, "no final norm"),  # seed 002's toy as it is
        ({"output_logits_soft_cap": 30.0}, "soft-capped"),
        (
            {
                "attn_only": False,
                "d_mlp": 8,
                "act_fn": "gelu",
                "normalization_type": "RMS",
                "use_normalization_before_and_after": True,
            },
            "post-norms",
        ),
        ({"original_architecture": "BloomForCausalLM"}, r"BloomForCausalLM.*block layout"),
    ],
    ids=["no-final-norm", "softcap", "post-norm", "unknown-architecture"],
)
def test_unsupported_hooked_models_are_refused(overrides, message):
    from transformer_lens import HookedTransformer

    model = HookedTransformer(_config(**overrides), move_to_device=False)
    with pytest.raises(st.UnsupportedModelError, match=message):
        as_adapter(model)
