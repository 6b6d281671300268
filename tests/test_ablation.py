"""Ablation is exact: ``st.ablation.ablate`` equals the model's own output when the removed
terms are subtracted from the input of its final norm (a hook on ``ln_final.hook_in``), with
the scale recomputed (``renormalize=True``) or pinned to its old value by a hook on
``ln_final.hook_scale`` (``renormalize=False``). The removed vectors are rebuilt here from the
model's cache, not by symtrans."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.analyses.ablation import ablate

from .conftest import PROMPT

MODELS = ["tiny-capitals", "tiny-capitals-neox", "random-gpt2", "random-neox"]

# (split, labels) pairs; PosEmbed only where the model has one.
LABEL_SETS: list[tuple[str, list[lb.Label]]] = [
    ("heads", [lb.HeadOut(1, 2)]),
    ("heads", [lb.MlpOut(0)]),
    ("heads", [lb.Embed()]),
    ("heads", [lb.Embed(), lb.HeadOut(0, 1), lb.HeadOut(1, 3), lb.AttnBias(1), lb.MlpOut(1)]),
    ("neurons", [lb.Neuron(1, 17)]),
    ("neurons", [lb.Neuron(0, 3), lb.Neuron(1, 5), lb.MlpBias(0), lb.AttnOut(1)]),
    ("positions", [lb.HeadSource(1, 0, 0), lb.HeadSource(0, 2, 1)]),
    ("components", [lb.PosEmbed(), lb.AttnOut(0)]),
    ("layers", [lb.BlockOut(0)]),
]


def _reference_vector(model: object, cache: object, label: lb.Label, p: int) -> torch.Tensor:
    """The label's vector at position ``p`` from the model's own cache and weights."""
    c: Callable[[str], torch.Tensor] = lambda name: cache[name][0]  # type: ignore[index]  # noqa: E731
    blocks = model.blocks  # type: ignore[attr-defined]
    if isinstance(label, lb.Embed):
        return c("hook_embed")[p]
    if isinstance(label, lb.PosEmbed):
        return c("hook_pos_embed")[p]
    if isinstance(label, lb.BlockOut):
        return (
            c(f"blocks.{label.layer}.hook_attn_out")[p] + c(f"blocks.{label.layer}.hook_mlp_out")[p]
        )
    if isinstance(label, lb.AttnOut):
        return c(f"blocks.{label.layer}.hook_attn_out")[p]
    if isinstance(label, lb.MlpOut):
        return c(f"blocks.{label.layer}.hook_mlp_out")[p]
    if isinstance(label, lb.HeadOut):
        z = c(f"blocks.{label.layer}.attn.hook_z")[p, label.head]
        return z @ blocks[label.layer].attn.W_O[label.head]
    if isinstance(label, lb.HeadSource):
        a = c(f"blocks.{label.layer}.attn.hook_pattern")[label.head, p, label.source]
        v = c(f"blocks.{label.layer}.attn.hook_v")[label.source, label.head]
        return a * (v @ blocks[label.layer].attn.W_O[label.head])
    if isinstance(label, lb.AttnBias):
        return blocks[label.layer].attn.b_O
    if isinstance(label, lb.Neuron):
        a = c(f"blocks.{label.layer}.mlp.hook_post")[p, label.neuron]
        return a * blocks[label.layer].mlp.W_out[label.neuron]
    if isinstance(label, lb.MlpBias):
        return blocks[label.layer].mlp.b_out
    raise AssertionError(label)


def _model_ablated(
    model: object, d: st.Decomposition, labels: list[lb.Label], renormalize: bool
) -> float:
    """The model's own logit difference with the labels' vectors subtracted from ``x^L_p``."""
    p = d.position
    tokens = torch.tensor([list(d.tokens)])
    _, cache = model.run_with_cache(tokens)  # type: ignore[attr-defined]
    r = sum(_reference_vector(model, cache, label, p) for label in labels)
    sigma = cache["ln_final.hook_scale"][0, p].clone()

    def subtract(x: torch.Tensor, hook: object) -> torch.Tensor:
        x = x.clone()
        x[0, p] -= r
        return x

    def pin(s: torch.Tensor, hook: object) -> torch.Tensor:
        s = s.clone()
        s[0, p] = sigma
        return s

    hooks = [("ln_final.hook_in", subtract)]
    if not renormalize:
        hooks.append(("ln_final.hook_scale", pin))
    logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[0, p]  # type: ignore[attr-defined]
    tok = model.tokenizer  # type: ignore[attr-defined]
    a = tok.encode(d.answer, add_special_tokens=False)[0]
    b = tok.encode(d.vs, add_special_tokens=False)[0]
    return float(logits[a] - logits[b])


# Rotary models have no positional-embedding term: that label set exists only for GPT-2.
CASES = [
    pytest.param(name, split, labels, id=f"{name}-{split}-{'+'.join(map(str, labels))}")
    for name in MODELS
    for split, labels in LABEL_SETS
    if "neox" not in name or lb.PosEmbed() not in labels
]


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("name,split,labels", CASES)
def test_ablation_equals_model_with_terms_subtracted(bridge, name, renormalize, split, labels):
    model = bridge(name, torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split=split)
    got = ablate(d, labels, renormalize=renormalize, model=model)
    expected = _model_ablated(model, d, labels, renormalize)
    print(
        f"{name} {split} {[str(x) for x in labels]} renorm={renormalize}: "
        f"ablated={got:.12f} model={expected:.12f} err={abs(got - expected):.2e}"
    )
    assert abs(got - expected) <= 1e-10, (got, expected)
    assert abs(got - d.total) > 1e-6  # removing these terms changes the logit: not vacuous


def test_renormalize_differs_from_frozen_scale(bridge):
    model = bridge("tiny-capitals", torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split="heads")
    frozen = ablate(d, [lb.MlpOut(1)], renormalize=False)
    renorm = ablate(d, [lb.MlpOut(1)], renormalize=True, model=model)
    assert abs(frozen - renorm) > 1e-6
    assert frozen == pytest.approx(d.total - d.values[d.labels.index(lb.MlpOut(1))], abs=1e-12)


def test_string_labels_and_empty_set(bridge):
    model = bridge("tiny-capitals", torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    typed = ablate(d, [lb.HeadOut(1, 2), lb.Embed()], renormalize=True, model=model)
    named = ablate(d, ["L1H2", "embed"], renormalize=True, model=model)
    assert typed == named
    assert ablate(d, [], renormalize=True, model=model) == pytest.approx(d.model_logit, abs=1e-10)


def test_bad_requests_raise(bridge):
    model = bridge("tiny-capitals", torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    with pytest.raises(st.InvalidArgumentError, match="model="):
        ablate(d, [lb.MlpOut(1)], renormalize=True)
    with pytest.raises(st.InvalidArgumentError, match="not a term"):
        ablate(d, [lb.Neuron(1, 3)])  # a neuron is not a term of the heads split
    with pytest.raises(st.InvalidArgumentError, match="twice"):
        ablate(d, ["L1H2", lb.HeadOut(1, 2)])
    other = st.decompose(model, "Paris is the capital city of", answer=" France", split="heads")
    with pytest.raises(st.InvalidArgumentError, match="σ"):
        from symtrans.adapter import resolve as resolve_model
        from symtrans.analyses.ablation import removed_vector

        bad = st.Decomposition(**{**other.__dict__, "scale": other.scale * 2})
        removed_vector(resolve_model(model), bad, [lb.MlpOut(1)])
