"""The expression layer: seed 004's notation, immutability, symbolic sums that stay small."""

from __future__ import annotations

import dataclasses

import pytest
import sympy
import torch
from hypothesis import given
from hypothesis import strategies as hs

import symtrans as st
from symtrans import expression as ex
from symtrans import labels as lb

from .conftest import PROMPT


@pytest.fixture(scope="module")
def layers(bridge):  # type: ignore[no-untyped-def]
    return st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", split="layers")


def test_latex_uses_seed_004_notation(layers):
    text = sympy.latex(layers.expression)
    for piece in (
        r"\underline{\text{of}}",
        r"\overline{\text{Ireland}}",
        r"\Delta x^{0}_{6}",
        r"\sqrt{N} \lambda",
        r"\gamma \odot",
        r"\left\langle \beta, \overline{\text{Ireland}} \right\rangle",
        r"b_U\left[\text{Ireland}\right]",
    ):
        assert piece in text, piece
    assert r"N \epsilon" in sympy.latex(layers.scale_expression)
    assert sympy.latex(layers.residual_expression).startswith(
        r"x^{3}_{6} = \underline{\text{of}} + P_{6}"
    )


def test_terms_keep_model_order_in_print(layers):
    text = sympy.latex(layers.residual_expression)
    positions = [
        text.index(p)
        for p in (r"\underline", "P_{6}", r"\Delta x^{0}", r"\Delta x^{1}", r"\Delta x^{2}")
    ]
    assert positions == sorted(positions)


def test_logit_difference_prints_in_order(bridge):
    d = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", vs=" France")
    text = sympy.latex(d.expression)
    assert text.startswith(
        r"\mathrm{logit}_{6}\left(\text{Ireland}\right) - "
        r"\mathrm{logit}_{6}\left(\text{France}\right) ="
    )
    assert r"\gamma \odot \left(\overline{\text{Ireland}} - \overline{\text{France}}\right)" in text


def test_neurons_stay_a_symbolic_sum(bridge):
    d = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", split="neurons")
    sums = list(d.residual_expression.rhs.atoms(sympy.Sum))
    assert len(sums) == d.model.n_layers
    assert all(s.limits[0][2] == d.model.d_mlp - 1 for s in sums)
    assert len(d.residual_expression.rhs.args) < 4 * d.model.n_layers + 2  # not 64 per layer
    assert r"\sum_{n=0}^{63} a^{0}_{6,n} W_{\mathrm{out}}^{0}[n]" in sympy.latex(
        d.residual_expression
    )
    # and the labels stay per neuron for the numbers
    assert sum(isinstance(lab, lb.Neuron) for lab in d.labels) == d.model.n_layers * d.model.d_mlp


def test_term_labels_print_transformer_lens_style():
    assert [
        str(x)
        for x in (
            lb.Embed(),
            lb.PosEmbed(),
            lb.HeadOut(3, 2),
            lb.MlpOut(3),
            lb.Neuron(3, 17),
            lb.Constant(),
            lb.AttnOut(0),
            lb.BlockOut(1),
        )
    ] == ["embed", "pos_embed", "L3H2", "3_mlp_out", "L3N17", "bias", "0_attn_out", "1_block_out"]


def test_labels_and_nodes_are_immutable(layers):
    with pytest.raises(dataclasses.FrozenInstanceError):
        lb.HeadOut(1, 2).layer = 3  # type: ignore[misc]
    node = ex.HeadOutput(1, 2, 5)
    assert node == ex.HeadOutput(1, 2, 5) and hash(node) == hash(ex.HeadOutput(1, 2, 5))
    with pytest.raises(AttributeError):
        node.args = ()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        layers.prompt = "x"  # type: ignore[misc]


def test_term_latex(layers):
    assert [t.latex for t in layers.terms][:3] == [
        r"\underline{\text{of}}",
        "P_{6}",
        r"\Delta x^{0}_{6}",
    ]


@given(hs.text(max_size=20))
def test_token_text_cannot_become_latex_markup(text):
    node = ex.Unembedding(text)
    body = sympy.latex(node)
    assert body.startswith(r"\overline{\text{") and body.endswith("}}")
    inner = body[len(r"\overline{\text{") : -2]
    # every brace in the body is escaped or part of an escape macro's empty group
    stripped = inner.replace(r"\{", "").replace(r"\}", "").replace("{}", "")
    assert "{" not in stripped and "}" not in stripped
    assert "$" not in inner.replace(r"\$", "")
    assert all(ch.isascii() for ch in inner)


def test_direction_and_scale_symbols_evaluate(layers):
    """The symbolic identity, with numbers put in for the symbols, gives the total."""
    d = layers
    lam = 1 / (d.model.d_model**0.5 * d.scale)
    inner = sum(d.values) * d.scale
    assert float(sympy.sqrt(d.model.d_model) * lam * inner) + d.constant == pytest.approx(
        d.total, abs=1e-12
    )
    assert d.model.dtype == "float64" and isinstance(d.values[0].item(), float)
    assert torch.get_default_dtype() == torch.float32  # symtrans leaves global state alone
