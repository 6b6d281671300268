"""The identity holds: every split adds up to the logit of Hugging Face's own forward pass.

For the embedded models and for random GPT-2 / GPT-NeoX models (random γ, β, biases,
ε = 1e-2): within 1e-10 in float64, within the documented tolerance in float32; for one
token's logit and for a logit difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans.verify import RTOL, default_tolerance

from . import reference
from .conftest import PROMPT

MODELS = ["tiny-capitals", "tiny-capitals-neox", "random-gpt2", "random-neox"]
DIRECTIONS = [(" Ireland", None), (" Ireland", " France")]


def _ids(model: object, answer: str, vs: str | None) -> tuple[int, int | None]:
    tok = model.tokenizer  # type: ignore[attr-defined]
    a = tok.encode(answer, add_special_tokens=False)
    b = None if vs is None else tok.encode(vs, add_special_tokens=False)
    if len(a) != 1 or (b is not None and len(b) != 1):
        pytest.fail(f"test tokens must be single tokens: {answer!r} -> {a}, {vs!r} -> {b}")
    return a[0], None if b is None else b[0]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("split", st.SPLITS)
@pytest.mark.parametrize("answer,vs", DIRECTIONS)
def test_float64_adds_up_to_hugging_face_logit(bridge, hf_model, name, split, answer, vs):
    model = bridge(name, torch.float64)
    d = st.decompose(model, PROMPT, answer=answer, vs=vs, split=split)
    a, b = _ids(model, answer, vs)
    expected = reference.logit(hf_model(name, torch.float64), list(d.tokens), d.position, a, b)
    assert abs(d.total - expected) <= 1e-10, (d.total, expected)
    assert abs(d.model_logit - expected) <= 1e-12
    assert d.total == pytest.approx(sum(t.value for t in d.terms) + d.constant, abs=1e-12)
    d.verify()


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("split", st.SPLITS)
def test_float32_within_documented_tolerance(bridge, hf_model, name, split):
    model = bridge(name, torch.float32)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split=split)
    a, b = _ids(model, " Ireland", " France")
    expected = reference.logit(hf_model(name, torch.float32), list(d.tokens), d.position, a, b)
    tol = default_tolerance("float32", d.model.norm, d.magnitude)
    assert tol == RTOL[("float32", d.model.norm)] * max(1.0, d.magnitude)
    assert abs(d.total - expected) <= tol
    d.verify()


@pytest.mark.parametrize("name", MODELS)
def test_layer_terms_match_hugging_face_hidden_states(bridge, hf_model, name):
    """Each term's value, not only the total, against the residual of HF's own forward."""
    model = bridge(name, torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split="layers")
    a, b = _ids(model, " Ireland", " France")
    parts, constant, logit = reference.layer_contributions(
        hf_model(name, torch.float64), list(d.tokens), d.position, a, b
    )
    values = list(d.values)
    if d.model.architecture == "gpt2":  # HF's first hidden state is embed + pos_embed
        values = [values[0] + values[1]] + values[2:]
    np.testing.assert_allclose(values, parts, rtol=0, atol=1e-11)
    assert d.constant == pytest.approx(constant, abs=1e-12)
    assert sum(parts) + constant == pytest.approx(logit, abs=1e-10)


@pytest.mark.parametrize("name", MODELS)
def test_finer_splits_refine_coarser_ones(bridge, name):
    """heads (+b_O) sum to each attention output; neurons (+b_out) to each MLP output;
    source positions to each head."""
    model = bridge(name, torch.float64)
    by = {s: st.decompose(model, PROMPT, answer=" Ireland", split=s) for s in st.SPLITS}

    def total(split: str, pred) -> float:  # type: ignore[no-untyped-def]
        d = by[split]
        return float(sum(v for lab, v in zip(d.labels, d.values, strict=True) if pred(lab)))

    from symtrans import labels as lb

    for layer in range(by["layers"].model.n_layers):
        attn = total("components", lambda x, layer=layer: x == lb.AttnOut(layer))
        mlp = total("components", lambda x, layer=layer: x == lb.MlpOut(layer))
        assert total("layers", lambda x, layer=layer: x == lb.BlockOut(layer)) == pytest.approx(
            attn + mlp, abs=1e-12
        )
        heads = total(
            "heads",
            lambda x, layer=layer: (
                getattr(x, "layer", None) == layer and isinstance(x, (lb.HeadOut, lb.AttnBias))
            ),
        )
        assert heads == pytest.approx(attn, abs=1e-12)
        sources = total(
            "positions",
            lambda x, layer=layer: (
                getattr(x, "layer", None) == layer and isinstance(x, (lb.HeadSource, lb.AttnBias))
            ),
        )
        assert sources == pytest.approx(attn, abs=1e-12)
        neurons = total(
            "neurons",
            lambda x, layer=layer: (
                getattr(x, "layer", None) == layer and isinstance(x, (lb.Neuron, lb.MlpBias))
            ),
        )
        assert neurons == pytest.approx(mlp, abs=1e-12)


@pytest.mark.parametrize("name", ["tiny-capitals", "random-neox"])
def test_every_position(bridge, hf_model, name):
    model = bridge(name, torch.float64)
    n = len(model.to_tokens(PROMPT)[0])  # type: ignore[attr-defined]
    a, b = _ids(model, " Ireland", None)
    for position in range(-n, n):
        d = st.decompose(model, PROMPT, answer=" Ireland", split="heads", position=position)
        expected = reference.logit(hf_model(name), list(d.tokens), d.position, a, b)
        assert d.position == position % n
        assert abs(d.total - expected) <= 1e-10


def test_batch_matches_single_prompts(bridge):
    model = bridge("tiny-capitals", torch.float64)
    prompts = [PROMPT, "Paris is the capital city of", "The capital city of Ireland is"]
    answers = [" Ireland", " France", " Dublin"]
    b = st.decompose(model, prompts, answer=answers, split="neurons")
    assert len(b) == 3 and b.values.shape == (3, len(b.labels))
    assert b.totals.shape == b.model_logits.shape == (3,)
    for i, (p, a) in enumerate(zip(prompts, answers, strict=True)):
        single = st.decompose(model, p, answer=a, split="neurons")
        np.testing.assert_allclose(b.values[i], single.values, rtol=0, atol=1e-12)
        assert b.model_logits[i] == pytest.approx(single.model_logit, abs=1e-12)
    b.verify()
    assert np.all(np.abs(b.totals - b.model_logits) <= 1e-10)


def test_neuron_split_never_builds_neuron_by_d_model(bridge, monkeypatch):
    """Project first: no [d_mlp, d_model]-per-position tensor (or larger) is created."""
    model = bridge("random-gpt2", torch.float64)
    spec = st.decompose(model, PROMPT, answer=" Ireland").model
    created: list[tuple[int, ...]] = []
    real_einsum = torch.einsum

    def spy(eq, *ops):  # type: ignore[no-untyped-def]
        out = real_einsum(eq, *ops)
        created.append(tuple(out.shape))
        return out

    monkeypatch.setattr(torch, "einsum", spy)
    st.decompose(model, [PROMPT, PROMPT], answer=" Ireland", split="neurons")
    assert created, "the evaluation is expected to go through einsum"
    biggest = max(int(np.prod(s)) for s in created)
    assert biggest < 2 * spec.d_mlp * spec.d_model  # never [batch, d_mlp, d_model]
