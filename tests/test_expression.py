"""The expression layer: seed 004's notation, immutability, symbolic sums that stay small."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

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
        r"\Delta x_{6}^{(0)}",  # layer indices in parentheses: never read as a power
        r"\sqrt{N} \lambda",
        r"\gamma \odot",
        r"\left\langle \beta, \overline{\text{Ireland}} \right\rangle",
        r"b_{U}\left[\text{Ireland}\right]",
    ):
        assert piece in text, piece
    assert r"N \epsilon" in sympy.latex(layers.scale_expression)
    assert sympy.latex(layers.residual_expression).startswith(
        r"x_{6}^{(3)} = \underline{\text{of}} + P_{6}"
    )


def test_terms_keep_model_order_in_print(layers):
    text = sympy.latex(layers.residual_expression)
    positions = [
        text.index(p)
        for p in (r"\underline", "P_{6}", r"x_{6}^{(0)}", r"x_{6}^{(1)}", r"x_{6}^{(2)}")
    ]
    assert positions == sorted(positions)


def test_logit_difference_prints_in_order(bridge):
    d = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", vs=" France")
    text = sympy.latex(d.expression)
    assert text.startswith(
        r"\mathop{\mathrm{logit}}\nolimits_{6}\left(\text{Ireland}\right) - "
        r"\mathop{\mathrm{logit}}\nolimits_{6}\left(\text{France}\right) ="
    )
    assert r"\gamma \odot \left(\overline{\text{Ireland}} - \overline{\text{France}}\right)" in text


def test_neurons_stay_a_symbolic_sum(bridge):
    d = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", split="neurons")
    sums = list(d.residual_expression.rhs.atoms(sympy.Sum))
    assert len(sums) == d.model.n_layers
    assert all(s.limits[0][2] == d.model.d_mlp - 1 for s in sums)
    assert len(d.residual_expression.rhs.args) < 4 * d.model.n_layers + 2  # not 64 per layer
    assert r"\sum_{n=0}^{63} a_{6,n}^{(0)} W_{\mathrm{out}}^{(0)}[n]" in sympy.latex(
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
        r"\Delta x_{6}^{(0)}",
    ]


@given(hs.text(max_size=20))
def test_token_text_cannot_become_latex_markup(text):
    """Plain LaTeX (KaTeX, MathJax, amsmath) of a token: its characters in \\text or as the
    math commands that draw them, nothing that could be markup (no $ % & # ^ _ ~ of its own,
    balanced braces, no other command)."""
    body = sympy.latex(ex.Unembedding(text))
    assert body.startswith(r"\overline{") and body.endswith("}")
    allowed = {
        "overline",
        "text",
        "backslash",
        "lbrace",
        "rbrace",
        "lbrack",
        "rbrack",
        "vert",
        "mathord",
        "ast",
        "sim",
        "underline",
        "hat",
        "grave",
    }
    assert set(re.findall(r"\\([A-Za-z]+)", body)) <= allowed
    assert not any(c in body for c in "$%&#^_~")
    depth = 0
    for i, ch in enumerate(body):
        if ch in "{}" and (i == 0 or body[i - 1] != "\\"):
            depth += 1 if ch == "{" else -1
            assert depth >= 0
    assert depth == 0


def evaluate(expr: sympy.Basic, leaf: Callable[[sympy.Basic], float | None]) -> float:
    """The number ``expr`` stands for: ``leaf(node)`` gives the leaves' numbers (None: not a
    leaf), sums over an index are expanded term by term, and the symtrans nodes combine as
    their names say (OrderedSum adds, Product multiplies, Difference subtracts)."""
    value = leaf(expr)
    if value is not None:
        return value
    if isinstance(expr, sympy.Equality):
        return evaluate(expr.rhs, leaf)
    if isinstance(expr, (ex.OrderedSum, sympy.Add)):
        return sum(evaluate(a, leaf) for a in expr.args)
    if isinstance(expr, (ex.Product, sympy.Mul)):
        return math.prod(evaluate(a, leaf) for a in expr.args)
    if isinstance(expr, ex.Difference):
        return evaluate(expr.args[0], leaf) - evaluate(expr.args[1], leaf)
    if isinstance(expr, sympy.Pow):
        return evaluate(expr.base, leaf) ** evaluate(expr.exp, leaf)
    if isinstance(expr, sympy.Sum):
        (index, low, high), *rest = expr.limits
        inner = sympy.Sum(expr.function, *rest) if rest else expr.function
        return sum(evaluate(inner.subs(index, k), leaf) for k in range(int(low), int(high) + 1))
    if expr.is_number:
        return float(expr)
    raise AssertionError(f"no number for {expr!r}")


def hf_numbers(hf, d):  # type: ignore[no-untyped-def]
    """From Hugging Face's GPT-2 alone: the final norm's input ``x``, each block's output,
    the embedding rows, the read-out ``γ ⊙ u``, ``β``, and the model's logit."""
    ids = torch.tensor([list(d.tokens)])
    seen = {}
    handle = hf.transformer.ln_f.register_forward_pre_hook(lambda m, a: seen.update(x=a[0]))
    out = hf(ids, output_hidden_states=True)
    handle.remove()
    p = d.position
    x = seen["x"][0, p]
    hidden = [h[0, p] for h in out.hidden_states[:-1]] + [x]  # entering each block, and x
    W_U = hf.lm_head.weight
    answer = W_U[hf_token(hf, d.answer)]
    u = answer - (W_U[hf_token(hf, d.vs)] if d.vs is not None else 0)
    logits = out.logits[0, p]
    logit = logits[hf_token(hf, d.answer)] - (logits[hf_token(hf, d.vs)] if d.vs is not None else 0)
    ln = hf.transformer.ln_f
    return {
        "x": x,
        "blocks": [hidden[i + 1] - hidden[i] for i in range(len(hidden) - 1)],
        "embed": hf.transformer.wte.weight[d.tokens[p]],
        "pos": hf.transformer.wpe.weight[p],
        "read": ln.weight * u,
        "beta": ln.bias,
        "u": u,
        "eps": ln.eps,
        "logit": float(logit),
    }


def hf_token(hf, text: str) -> int:  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(hf.name_or_path)
    (token,) = tokenizer.encode(text, add_special_tokens=False)
    return int(token)


@pytest.mark.parametrize("vs", [None, " France"])
def test_the_expression_evaluates_to_hugging_faces_logit(bridge, hf_model, vs):
    """The symbolic identity, its every symbol given a number from Hugging Face's own GPT-2
    (the block outputs from its hidden states, γ, β and u from its weights, λ evaluated from
    ``scale_expression`` on its final-norm input), adds up to Hugging Face's logit. No
    symtrans number enters: a missing term, a wrong factor (√N, λ) or a constant left out
    would all miss."""
    d = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", vs=vs, split="layers")
    hf = hf_model("random-gpt2")
    n = hf_numbers(hf, d)
    N = d.model.d_model

    def centre(v: torch.Tensor) -> torch.Tensor:
        return v - v.mean()

    vectors = {ex.TokenEmbedding(d.token_strings[d.position]): n["embed"]}
    vectors[ex.PositionalEmbedding(d.position)] = n["pos"]
    for layer, block in enumerate(n["blocks"]):
        vectors[ex.BlockOutput(layer, d.position)] = block
    x = n["x"]

    def leaf(node: sympy.Basic) -> float | None:
        if node == ex.N:
            return float(N)
        if node == ex.EPSILON:
            return float(n["eps"])
        if isinstance(node, ex.SquaredNorm) and node.args[0] == ex.Center(ex.Residual(3, 6)):
            return float(centre(x) @ centre(x))
        if node == ex.LAMBDA:
            return evaluate(d.scale_expression, leaf)
        if isinstance(node, ex.Inner):
            read, term = node.args
            if read == ex.BETA or term == ex.BETA:
                return float(n["beta"] @ n["u"])
            assert isinstance(term, ex.Center), term
            return float(n["read"] @ centre(vectors[term.args[0]]))
        if isinstance(node, ex.UnembeddingBias):
            return 0.0  # GPT-2's unembedding has no bias
        return None

    assert evaluate(d.expression, leaf) == pytest.approx(n["logit"], abs=1e-10)
    # and it misses when a block's term is dropped from the expression
    rhs = d.expression.rhs
    body = rhs.args[0]
    inners = body.args[2]
    shorter = ex.Product(*body.args[:2], ex.OrderedSum(*inners.args[:-1]))
    dropped = sympy.Eq(d.expression.lhs, ex.OrderedSum(shorter, *rhs.args[1:]), evaluate=False)
    assert abs(evaluate(dropped, leaf) - n["logit"]) > 1e-3


@pytest.mark.parametrize("split", ["neurons", "positions", "heads"])
def test_folded_sums_cover_every_term(bridge, split):
    """Neurons and source positions stay symbolic sums over an index: expanded with each
    term's number, they give every term once (the same total as the values)."""
    d = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", split=split)
    numbers = {
        ex.term_node(label, d.position, d.token_strings[d.position]): float(value)
        for label, value in zip(d.labels, d.values, strict=True)
    }
    seen: list[sympy.Basic] = []

    def leaf(node: sympy.Basic) -> float | None:
        if isinstance(node, ex.Inner) and isinstance(node.args[1], ex.Center):
            term = node.args[1].args[0]
            seen.append(term)
            return numbers[term]
        return None

    body = d.expression.rhs.args[0].args[2]  # Σ_i <γ⊙u, c(t_i)>
    assert evaluate(body, leaf) == pytest.approx(float(d.values.sum()), abs=1e-10)
    assert sorted(map(str, seen)) == sorted(map(str, numbers)) and len(d.term_groups) < len(
        d.labels
    ) + (split == "heads")


def test_decomposing_leaves_global_state_alone(layers):
    assert layers.model.dtype == "float64" and isinstance(layers.values[0].item(), float)
    assert torch.get_default_dtype() == torch.float32
