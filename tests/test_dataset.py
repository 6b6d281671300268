"""A dataset decomposition: mean and std of every term over many prompts, against the same
statistics computed here from Hugging Face's own forward pass (per-layer terms written out from
the definition of LayerNorm in tests/reference.py), streaming and in batches alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.models.facts import CAPITALS

from . import reference

CASES = CAPITALS[:11]
PROMPTS = [f"{city} is the capital city of" for city, _ in CASES] + [
    f"The capital city of {country} is" for _, country in CASES[:4]
]
ANSWERS = [f" {country}" for _, country in CASES] + [f" {city}" for city, _ in CASES[:4]]
VS = [f" {CASES[(i + 1) % len(CASES)][1]}" for i in range(len(CASES))] + [
    f" {CASES[(i + 1) % len(CASES)][0]}" for i in range(4)
]


@pytest.fixture(scope="module")
def model():  # type: ignore[no-untyped-def]
    return st.load_model("tiny-capitals", dtype=torch.float64)


@pytest.fixture(scope="module")
def hf():  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM

    from symtrans.models import EMBEDDED_MODELS

    path = EMBEDDED_MODELS["tiny-capitals"].path
    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64).eval()


def test_mean_and_std_match_hugging_face(model, hf):
    ds = st.decompose_dataset(
        model, PROMPTS, ANSWERS, VS, split="layers", batch_size=4, progress=False
    )
    rows, logits = [], []
    for prompt, a, b in zip(PROMPTS, ANSWERS, VS, strict=True):
        tokens = model.to_tokens(prompt)[0].tolist()
        terms, constant, logit = reference.layer_contributions(
            hf, tokens, len(tokens) - 1, model.to_single_token(a), model.to_single_token(b)
        )
        rows.append(terms + [constant])
        logits.append(logit)
    expected = np.array(rows)  # [prompts, embedding + blocks + constant]
    index = {label: i for i, label in enumerate(ds.labels)}
    embedding = [index[lb.Embed()]] + ([index[lb.PosEmbed()]] if lb.PosEmbed() in index else [])
    values = ds.values
    assert values is not None and values.shape == (len(PROMPTS), len(ds.labels))
    got = np.column_stack(
        [values[:, embedding].sum(axis=1)]
        + [values[:, index[lb.BlockOut(layer)]] for layer in range(ds.model.n_layers)]
    )
    np.testing.assert_allclose(got, expected[:, :-1], rtol=0, atol=1e-10)
    for layer in range(ds.model.n_layers):
        i = index[lb.BlockOut(layer)]
        assert ds.mean[i] == pytest.approx(expected[:, 1 + layer].mean(), abs=1e-10)
        assert ds.std[i] == pytest.approx(expected[:, 1 + layer].std(ddof=1), abs=1e-10)
    assert ds.constant_mean == pytest.approx(expected[:, -1].mean(), abs=1e-10)
    np.testing.assert_allclose(ds.model_logits, logits, rtol=0, atol=1e-10)
    assert ds.total_mean == pytest.approx(np.mean(logits), abs=1e-10)
    assert ds.max_error <= 1e-10
    assert ds.verify() is ds


def test_streaming_equals_kept_values_and_batching_does_not_matter(model):
    kept = st.decompose_dataset(
        model, PROMPTS, ANSWERS, VS, split="heads", batch_size=16, progress=False
    )
    streamed = st.decompose_dataset(
        model,
        (p for p in PROMPTS),  # a generator: length unknown, read once
        iter(ANSWERS),
        iter(VS),
        split="heads",
        batch_size=3,
        progress=False,
        keep_values=False,
    )
    assert streamed.values is None and streamed.count == kept.count == len(PROMPTS)
    assert kept.values is not None
    np.testing.assert_allclose(kept.mean, kept.values.mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(kept.std, kept.values.std(axis=0, ddof=1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed.mean, kept.mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed.std, kept.std, rtol=0, atol=1e-12)
    np.testing.assert_allclose(streamed.totals, kept.totals, rtol=0, atol=1e-12)


def test_one_prompt_matches_decompose(model):
    ds = st.decompose_dataset(model, PROMPTS[:1], ANSWERS[0], split="neurons", progress=False)
    d = st.decompose(model, PROMPTS[0], ANSWERS[0], split="neurons")
    np.testing.assert_array_equal(ds.mean, d.values)
    assert ds.count == 1 and np.all(ds.std == 0)


def test_heads_report_has_the_heatmap_and_adds_up(model, tmp_path):
    ds = st.decompose_dataset(model, PROMPTS, ANSWERS, VS, split="heads", progress=False)
    md = ds.to_markdown()
    assert "Mean contribution of each head" in md and "**Pass**" in md
    path = ds.save(tmp_path / "dataset.md")
    assert (tmp_path / "dataset.dataset-2.svg").read_text().startswith("<?xml")
    assert "dataset.dataset-2.svg" in open(path).read()
    top = ds.top(3)
    assert abs(top[0][1]) >= abs(top[1][1]) >= abs(top[2][1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompts": "Dublin is the capital city of"}, "got one string"),
        ({"prompts": []}, "no prompts"),
        ({"answer": [" Ireland"]}, "more prompts than answers"),
        ({"batch_size": 0}, "batch_size"),
        ({"split": "rows"}, "unknown split"),
    ],
)
def test_bad_input_is_a_clear_error(model, kwargs, message):
    args = {"prompts": PROMPTS[:3], "answer": ANSWERS[:3], **kwargs}
    with pytest.raises(st.SymtransError, match=message):
        st.decompose_dataset(model, args.pop("prompts"), args.pop("answer"), progress=False, **args)
