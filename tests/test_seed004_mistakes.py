"""Seed 004 writes the identity with three mistakes. Each test here pins the right formula
and shows, by putting the seed's version into the code, that the identity check catches it.

1. ``λ = 1/sqrt(|c(x)|² + ε)``: the norm's ε enters as ``N·ε`` (σ = sqrt(|c|²/N + ε)).
2. ``center(v) = v + mean(v)``: centring subtracts the mean.
3. ``LN(x) = c(x)/sqrt(Var(x) - ε)``: the variance gets ``+ ε``.
"""

from __future__ import annotations

import pytest
import sympy
import torch

import symtrans as st
from symtrans.norm import FinalNorm, NormKind

from . import reference
from .conftest import PROMPT

# ε = 1e-2 in the random models makes every mistake large enough to see.
MODEL = "random-gpt2"


def _residual(hf_model, bridge) -> tuple[torch.Tensor, torch.nn.Module]:  # type: ignore[no-untyped-def]
    model = bridge(MODEL)
    tokens = model.to_tokens(PROMPT)[0].tolist()
    hf = hf_model(MODEL)
    return reference.forward(hf, tokens)["resid_final"], reference.final_norm(hf)


def _norm(module: torch.nn.Module, d_model: int) -> FinalNorm:
    return FinalNorm(NormKind.LAYER, float(module.eps), d_model, module.weight, module.bias)


def _hf_logit(bridge, hf_model) -> float:  # type: ignore[no-untyped-def]
    model = bridge(MODEL)
    tokens = model.to_tokens(PROMPT)[0].tolist()
    a = model.tokenizer.encode(" Ireland", add_special_tokens=False)[0]
    return reference.logit(hf_model(MODEL), tokens, len(tokens) - 1, a, None)


def test_norm_matches_torch_layer_norm(bridge, hf_model):
    x, module = _residual(hf_model, bridge)
    norm = _norm(module, x.shape[-1])
    expected = module(x)
    assert torch.allclose(norm.apply(x), expected, atol=1e-13, rtol=0)


def test_scale_uses_N_epsilon(bridge, hf_model):
    x, module = _residual(hf_model, bridge)
    n = x.shape[-1]
    norm = _norm(module, n)
    c = x - x.mean(-1, keepdim=True)
    lam = 1 / torch.sqrt((c * c).sum(-1) + n * module.eps)
    assert torch.allclose(1 / (n**0.5 * norm.scale(x)), lam, atol=0, rtol=1e-14)
    seed_lam = 1 / torch.sqrt((c * c).sum(-1) + module.eps)
    assert not torch.allclose(lam, seed_lam, rtol=1e-6, atol=0)  # the mistake is visible


def test_center_subtracts_the_mean(bridge, hf_model):
    x, module = _residual(hf_model, bridge)
    norm = _norm(module, x.shape[-1])
    c = norm.center(x)
    assert float(c.mean(-1).abs().max()) < 1e-12
    assert torch.allclose(c, x - x.mean(-1, keepdim=True), atol=0, rtol=0)
    assert x.mean(-1).abs().max() > 1e-3  # so adding it instead would show


def test_expression_writes_N_epsilon():
    from symtrans.expression import EPSILON, LAMBDA, N, Residual, scale_equation

    eq = scale_equation(NormKind.LAYER, 3, 5)
    assert eq.lhs == LAMBDA
    assert N in eq.rhs.free_symbols and EPSILON in eq.rhs.free_symbols
    assert "N \\epsilon" in sympy.latex(eq)
    assert Residual(3, 5) in eq.rhs.atoms(Residual)


def _seed_scale_eps(self: FinalNorm, x: torch.Tensor) -> torch.Tensor:
    c = self.center(x)  # seed 004: sqrt(|c|² + ε) where sqrt(|c|² + N ε) belongs
    return torch.sqrt(c.pow(2).sum(-1) + self.eps) / self.d_model**0.5


def _seed_center(self: FinalNorm, x: torch.Tensor) -> torch.Tensor:
    return x + x.mean(dim=-1, keepdim=True)  # seed 004's center() adds the mean


def _seed_var_minus_eps(self: FinalNorm, x: torch.Tensor) -> torch.Tensor:
    c = x - x.mean(dim=-1, keepdim=True)  # seed 004's LN: sqrt(Var(x) - ε)
    return torch.sqrt(c.pow(2).mean(-1) - self.eps)


@pytest.mark.parametrize(
    "attribute,mistake",
    [("scale", _seed_scale_eps), ("center", _seed_center), ("scale", _seed_var_minus_eps)],
    ids=["epsilon-instead-of-N-epsilon", "center-adds-the-mean", "var-minus-epsilon"],
)
def test_each_seed_mistake_breaks_the_identity(bridge, hf_model, monkeypatch, attribute, mistake):
    expected = _hf_logit(bridge, hf_model)
    right = st.decompose(bridge(MODEL), PROMPT, answer=" Ireland", split="heads")
    assert abs(right.total - expected) <= 1e-10
    monkeypatch.setattr(FinalNorm, attribute, mistake)
    wrong = st.decompose(bridge(MODEL), PROMPT, answer=" Ireland", split="heads")
    assert abs(wrong.total - expected) > 1e-4
    with pytest.raises(st.IdentityError, match="do not add up"):
        wrong.verify()
