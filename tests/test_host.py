"""A model on an accelerator: ``OnHost`` runs the forward pass on the model's device and hands
symtrans every tensor on the CPU. No accelerator here, so the wrapper is put around a CPU model
(``device`` cpu): every analysis must go through it and give the numbers it gives without it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans.adapter import as_adapter
from symtrans.adapter.host import OnHost, model_device, on_host
from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return st.load_model("tiny-capitals", dtype=torch.float64, device="cpu")


@pytest.fixture(scope="module")
def wrapped(model):  # type: ignore[no-untyped-def]
    return OnHost(as_adapter(model), torch.device("cpu"))


def test_cpu_models_are_not_wrapped(model):
    assert model_device(model).type == "cpu"
    adapter = as_adapter(model)
    assert not isinstance(adapter, OnHost) and on_host(adapter) is adapter


@pytest.mark.parametrize("split", ["layers", "heads", "neurons", "positions"])
def test_decompose_through_the_wrapper_is_unchanged(model, wrapped, split):
    a = st.decompose(model, DEMO_PROMPT, DEMO_ANSWER, vs=" France", split=split)
    b = st.decompose(wrapped, DEMO_PROMPT, DEMO_ANSWER, vs=" France", split=split).verify()
    np.testing.assert_array_equal(a.values, b.values)
    assert (a.model_logit, a.scale, a.constant) == (b.model_logit, b.scale, b.constant)


def test_every_analysis_goes_through_the_wrapper(model, wrapped):
    d = st.decompose(wrapped, DEMO_PROMPT, DEMO_ANSWER, split="heads")
    direct = st.decompose(model, DEMO_PROMPT, DEMO_ANSWER, split="heads")
    assert (
        st.logit_lens(wrapped, DEMO_PROMPT, DEMO_ANSWER).error == 0.0
        or abs(st.logit_lens(wrapped, DEMO_PROMPT, DEMO_ANSWER).error) < 1e-12
    )
    e = d.expand_head(wrapped, "L1H0", depth=2).verify()
    assert e.total == pytest.approx(direct.expand_head(model, "L1H0", depth=2).total, abs=1e-14)
    s = st.attention_scores(wrapped, DEMO_PROMPT, 1, 0).verify()
    assert s.total == pytest.approx(st.attention_scores(model, DEMO_PROMPT, 1, 0).total, abs=1e-14)
    p = st.project(wrapped, d, "L1H0").verify()
    assert p.ablated.loss_renormalized == pytest.approx(
        st.project(model, direct, "L1H0").ablated.loss_renormalized, abs=1e-14
    )
    w = d.effective_embedding(wrapped).verify()
    assert w.total == pytest.approx(direct.effective_embedding(model).total, abs=1e-14)
    assert d.ablate(["L1H0"], renormalize=True, model=wrapped) == pytest.approx(
        direct.ablate(["L1H0"], renormalize=True, model=model), abs=1e-14
    )
    ds = st.decompose_dataset(wrapped, [DEMO_PROMPT] * 3, DEMO_ANSWER, progress=False)
    np.testing.assert_allclose(ds.mean, direct.values, rtol=0, atol=1e-14)


def test_cuda_runs_there_or_is_refused_clearly(model):
    """On a machine with CUDA the model runs there and the identity holds as on the CPU;
    without it, asking for it is one clear error (no torch traceback)."""
    if torch.cuda.is_available():
        gpu = st.load_model("tiny-capitals", dtype=torch.float64, device="cuda")
        assert isinstance(as_adapter(gpu), OnHost)
        d = st.decompose(gpu, DEMO_PROMPT, DEMO_ANSWER, split="neurons").verify()
        cpu = st.decompose(model, DEMO_PROMPT, DEMO_ANSWER, split="neurons")
        np.testing.assert_allclose(d.values, cpu.values, rtol=0, atol=1e-10)
    else:
        with pytest.raises(st.InvalidArgumentError, match="cuda.*not available"):
            st.load_model("tiny-capitals", device="cuda")


@pytest.mark.parametrize("device", ["gpu", "cuda:x", ""])
def test_a_malformed_device_is_a_clear_error(device):
    with pytest.raises(st.InvalidArgumentError, match="device"):
        st.load_model("tiny-capitals", device=device)
