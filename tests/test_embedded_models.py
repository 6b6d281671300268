"""The models that ship inside symtrans: small, offline, and they know their capitals."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import symtrans as st
from symtrans.models import EMBEDDED_MODELS
from symtrans.models.facts import CAPITALS, DEMO_ANSWER, DEMO_PROMPT, fact_prompt


def test_shipped_size_under_5_mb():
    total = sum(
        f.stat().st_size
        for m in EMBEDDED_MODELS.values()
        for f in Path(m.path).rglob("*")
        if f.is_file()
    )
    assert total <= 5 * 1024 * 1024, total


@pytest.mark.parametrize("name", sorted(EMBEDDED_MODELS))
def test_every_city_and_country_is_one_token(bridge, name):
    tok = bridge(name).tokenizer
    for city, country in CAPITALS:
        for text in (" " + city, city, " " + country):
            assert len(tok.encode(text, add_special_tokens=False)) == 1, text


@pytest.mark.parametrize("name", sorted(EMBEDDED_MODELS))
def test_ranks_the_right_country_first(bridge, name):
    model = bridge(name)
    assert len(CAPITALS) >= 40
    hits = 0
    for city, country in CAPITALS:
        logits = model(model.to_tokens(fact_prompt(city)))[0, -1]
        hits += int(logits.argmax()) == model.to_single_token(" " + country)
    assert hits / len(CAPITALS) >= 0.9, f"{hits}/{len(CAPITALS)}"


@pytest.mark.parametrize("name", sorted(EMBEDDED_MODELS))
def test_demo_prompt(bridge, name):
    model = bridge(name)
    logits = model(model.to_tokens(DEMO_PROMPT))[0, -1]
    assert int(logits.argmax()) == model.to_single_token(DEMO_ANSWER)
    d = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads").verify(atol=1e-10)
    assert d.model_logit == pytest.approx(
        float(logits[model.to_single_token(DEMO_ANSWER)]), abs=1e-12
    )


def test_load_by_name_offline_in_float32():
    model = st.load_model("tiny-capitals", dtype="float32")
    assert model.W_U.dtype == torch.float32
    assert type(model).__name__ == "TransformerBridge"
