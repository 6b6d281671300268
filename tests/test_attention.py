"""Attention scores as exact sums: every (query term, key term) piece adds up to the model's
own pre-softmax score (``blocks.{l}.attn.hook_attn_scores``, already divided by sqrt(d_head))
within 1e-10 in float64, for every head and every causal (query, key) pair, rotary included;
the softmax of the sums is the model's pattern; the cosine helper matches a direct computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.analyses.attention import attention_scores, rotate_half
from symtrans.labels import KeyBias, Ln1Bias, QueryBias
from symtrans.results.scores import cosine

from .conftest import PROMPT

MODELS = ["tiny-capitals", "tiny-capitals-neox", "random-gpt2", "random-neox"]


@pytest.mark.parametrize("name", MODELS)
def test_score_pieces_add_up_to_the_models_scores(bridge, name):
    model = bridge(name, torch.float64)
    tokens = model.to_tokens(PROMPT)  # type: ignore[attr-defined]
    _, cache = model.run_with_cache(tokens)  # type: ignore[attr-defined]
    cfg = model.cfg  # type: ignore[attr-defined]
    n = tokens.shape[1]
    worst = 0.0
    for layer in range(cfg.n_layers):
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"][0]
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]
        for head in range(cfg.n_heads):
            for p in range(n):
                row = []
                for s in range(p + 1):
                    sd = attention_scores(model, PROMPT, layer, head, p, s)
                    worst = max(worst, abs(sd.total - float(scores[head, p, s])))
                    assert abs(sd.total - float(scores[head, p, s])) <= 1e-10
                    row.append(sd.total)
                soft = torch.softmax(torch.tensor(row, dtype=torch.float64), dim=0)
                assert torch.allclose(soft, pattern[head, p, : p + 1], rtol=0, atol=1e-12)
    print(f"{name}: max |Σ pieces - hook_attn_scores| = {worst:.2e}")


def test_labels_and_shapes(bridge):
    model = bridge("tiny-capitals", torch.float64)
    sd = attention_scores(model, PROMPT, 1, 3, query_pos=-1, key_pos=0)
    assert sd.query_labels[0] == lb.Embed() and sd.query_labels[1] == lb.PosEmbed()
    assert sd.query_labels[-2:] == (Ln1Bias(1), QueryBias(1, 3))
    assert sd.key_labels[-2:] == (Ln1Bias(1), KeyBias(1, 3))
    assert sd.values.shape == (len(sd.query_labels), len(sd.key_labels))
    assert sd.query_pieces.shape == (len(sd.query_labels), model.cfg.d_head)  # type: ignore[attr-defined]
    top = sd.top(5)
    assert [abs(v) for _, _, v in top] == sorted((abs(v) for _, _, v in top), reverse=True)
    assert sd.value(lb.Embed(), "L1H3_b_K") == sd.values[0, -1]
    assert sd.verify() is sd
    with pytest.raises(st.InvalidArgumentError, match="not a query term"):
        sd.value(lb.HeadOut(1, 0), lb.Embed())  # a block-1 head is not in block 1's input


def test_bos_key_against_query_bias_cosine(bridge):
    """Seed 000's "BOS key against the query bias", by hand from the model's weights."""
    model = bridge("tiny-capitals", torch.float64)
    tokens = model.to_tokens(PROMPT)  # type: ignore[attr-defined]
    _, cache = model.run_with_cache(tokens)  # type: ignore[attr-defined]
    layer, head = 1, 0
    ln = model.blocks[layer].ln1.original_component  # type: ignore[attr-defined]
    e = cache["hook_embed"][0, 0]
    key = (ln.weight * (e - e.mean()) / cache[f"blocks.{layer}.ln1.hook_scale"][0, 0, 0]) @ (
        model.blocks[layer].attn.W_K[head]  # type: ignore[attr-defined]
    )
    b_Q = model.blocks[layer].attn.b_Q[head]  # type: ignore[attr-defined]
    expected = float(torch.nn.functional.cosine_similarity(key, b_Q, dim=0))
    sd = attention_scores(model, PROMPT, layer, head, query_pos=-1, key_pos=0)
    got = sd.cosine(QueryBias(layer, head), lb.Embed())
    print(f"cos(b_Q, BOS embed key) L{layer}H{head} = {got:.6f} (by hand {expected:.6f})")
    assert got == pytest.approx(expected, abs=1e-12)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == 0.0


def test_rotation_matters_on_rotary_models(bridge):
    """Without the rotary rotation the pieces would not add up (so the check can fail)."""
    model = bridge("tiny-capitals-neox", torch.float64)
    sd = attention_scores(model, PROMPT, 1, 2, query_pos=-1, key_pos=1)
    cache = model.run_with_cache(model.to_tokens(PROMPT))[1]  # type: ignore[attr-defined]
    cos = cache["blocks.1.attn.hook_cos"][0]
    sin = cache["blocks.1.attn.hook_sin"][0]
    p = sd.query_pos
    # undo the rotation of each side: R^T = rotation by -θ
    q = rotate_half(torch.tensor(sd.query_pieces), cos[p], -sin[p])
    k = rotate_half(torch.tensor(sd.key_pieces), cos[1], -sin[1])
    unrotated = float((q @ k.T).sum()) / sd.attn_scale
    assert abs(sd.error) <= 1e-10
    assert abs(unrotated - sd.model_score) > 1e-3


def test_bad_positions(bridge):
    model = bridge("tiny-capitals", torch.float64)
    with pytest.raises(st.InvalidArgumentError, match="causal"):
        attention_scores(model, PROMPT, 0, 0, query_pos=1, key_pos=3)
    with pytest.raises(st.InvalidArgumentError, match="not a head"):
        attention_scores(model, PROMPT, 5, 0)
