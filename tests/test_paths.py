"""Path expansion adds up: the paths into a head sum to that head's term in
``st.decompose(..., split="heads")`` (float64, 1e-10), at depth 1, 2 and 3; one path's value
equals the change of the model's own head output when that term is taken out of the head's
values (a hook on ``hook_v``); the block-input terms add up to ``hook_resid_pre``."""

from __future__ import annotations

import pytest
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.adapter import attention_adapter
from symtrans.analyses.paths import expand_head
from symtrans.labels import Ln1Bias, ValueBias
from symtrans.trace.blocks import block_input_terms
from symtrans.trace.blocks import block_inputs as trace

from .conftest import PROMPT

MODELS = ["tiny-capitals", "tiny-capitals-neox", "random-gpt2", "random-neox"]


def z_without_value(
    model: object, tokens: object, layer: int, s: int, kv: int, dv: torch.Tensor, p: int, head: int
) -> torch.Tensor:
    """``z`` of ``head`` at ``p`` when ``dv`` is taken out of value head ``kv`` at source ``s``
    (a hook on ``hook_v``): the model's own answer to "what does this source carry"."""

    def remove(v: torch.Tensor, hook: object) -> torch.Tensor:
        v = v.clone()
        v[0, s, kv] -= dv
        return v

    captured: dict[str, torch.Tensor] = {}

    def grab(z: torch.Tensor, hook: object) -> None:
        captured["z"] = z[0, p, head].clone()

    model.run_with_hooks(  # type: ignore[attr-defined]
        tokens,
        fwd_hooks=[
            (f"blocks.{layer}.attn.hook_v", remove),
            (f"blocks.{layer}.attn.hook_z", grab),
        ],
    )
    return captured["z"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_paths_add_up_to_the_heads_term(bridge, name, depth):
    model = bridge(name, torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split="heads")
    last = d.model.n_layers - 1
    worst = 0.0
    for h in range(d.model.n_heads):
        e = expand_head(model, d, lb.HeadOut(last, h), depth=depth)
        expected = d.values[d.labels.index(lb.HeadOut(last, h))]
        worst = max(worst, abs(e.total - expected))
        assert abs(e.total - expected) <= 1e-10, (e.total, expected)
        assert e.verify() is e
        assert all(abs(a.value) >= abs(b.value) for a, b in zip(e.paths, e.paths[1:], strict=False))
        longest = max(len(p.nodes) for p in e.paths)
        assert longest == min(depth, last + 1) + 1  # source + one node per head hop
        assert all(p.positions[-1] == d.position and p.nodes[-1] == e.head for p in e.paths)
        assert all(list(p.positions) == sorted(p.positions) for p in e.paths)  # causal
    print(f"{name} depth={depth}: max |Σ paths - heads-split term| = {worst:.2e}")


def test_depth_two_paths_exist_and_named(bridge):
    model = bridge("tiny-capitals", torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    e = expand_head(model, d, "L1H2", depth=2)
    kinds = {tuple(type(n) for n in p.nodes) for p in e.paths}
    assert (lb.Embed, lb.HeadOut, lb.HeadOut) in kinds  # embed → L0Hh → L1H2
    assert (Ln1Bias, lb.HeadOut, lb.HeadOut) in kinds
    assert (ValueBias, lb.HeadOut) in kinds
    text = str(next(p for p in e.paths if len(p.nodes) == 3))
    assert "→ L1H2@" in text and "→ logit" in text


@pytest.mark.parametrize("name", MODELS)
def test_block_input_terms_add_up_to_resid_pre(bridge, name):
    model = bridge(name, torch.float64)
    adapter = attention_adapter(model)
    tokens = adapter.tokenize(PROMPT)
    last = adapter.spec.n_layers - 1
    tr = trace(adapter, tokens, last)
    total = sum(v for _, v in block_input_terms(tr, last))
    _, cache = model.run_with_cache(torch.tensor([tokens]))  # type: ignore[attr-defined]
    expected = cache[f"blocks.{last}.hook_resid_pre"][0]
    assert torch.allclose(total, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["tiny-capitals", "tiny-capitals-neox", "random-neox"])
def test_one_path_equals_the_models_head_with_that_value_input_removed(bridge, name):
    """Take the path's source term (at its source position) out of the head's value via a
    hook on ``hook_v`` (the pattern does not depend on values); the head's term changes by
    exactly minus the path's value."""
    model = bridge(name, torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    layer, head, p = d.model.n_layers - 1, 1, d.position
    e = expand_head(model, d, lb.HeadOut(layer, head), depth=1)
    tokens = torch.tensor([list(d.tokens)])
    _, cache = model.run_with_cache(tokens)  # type: ignore[attr-defined]
    blocks = model.blocks  # type: ignore[attr-defined]
    ln = blocks[layer].ln1.original_component
    W_V, W_O = blocks[layer].attn.W_V[head], blocks[layer].attn.W_O[head]
    tok = model.tokenizer  # type: ignore[attr-defined]
    u = model.W_U[:, tok.encode(" Ireland", add_special_tokens=False)[0]]  # type: ignore[attr-defined]
    sigma = cache["ln_final.hook_scale"][0, p, 0]
    checked = 0
    for path in e.paths:
        source, s = path.nodes[0], path.positions[0]
        if isinstance(source, lb.Embed):
            t = cache["hook_embed"][0, s]
        elif isinstance(source, lb.MlpOut):
            t = cache[f"blocks.{source.layer}.hook_mlp_out"][0, s]
        elif isinstance(source, lb.HeadOut):
            z = cache[f"blocks.{source.layer}.attn.hook_z"][0, s, source.head]
            t = z @ blocks[source.layer].attn.W_O[source.head]
        else:
            continue
        scale1 = cache[f"blocks.{layer}.ln1.hook_scale"][0, s, 0]
        dv = (ln.weight * (t - t.mean()) / scale1) @ W_V

        z_after = z_without_value(model, tokens, layer, s, head, dv, p, head)
        z_before = cache[f"blocks.{layer}.attn.hook_z"][0, p, head]
        read = ln_final_read(model, u)
        change = float(((z_after - z_before) @ W_O) @ read / sigma)
        print(f"{name} {path}: model change {change:+.12f}")
        assert abs(change + path.value) <= 1e-10
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def ln_final_read(model: object, u: torch.Tensor) -> torch.Tensor:
    """``c(γ⊙u)`` from the final norm's own weight."""
    gamma = model.ln_final.original_component.weight  # type: ignore[attr-defined]
    w = gamma * u
    return w - w.mean()


def test_bad_head_and_depth(bridge):
    model = bridge("tiny-capitals", torch.float64)
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    with pytest.raises(st.InvalidArgumentError, match="not a head"):
        expand_head(model, d, "L7H0")
    with pytest.raises(st.InvalidArgumentError, match="depth"):
        expand_head(model, d, "L1H0", depth=0)
