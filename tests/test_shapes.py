"""The shapes in the signatures hold at run time: every adapter method of the protocol
(:class:`~symtrans.adapter.protocol.AttentionAdapter`) and the evaluation of every split,
checked with jaxtyping against their annotations, dimension names shared across all the calls
of one model — so grouped-query models (Llama with 2 key/value heads for 4 query heads)
present keys, values and their activations per query head."""

from __future__ import annotations

import inspect
import typing

import pytest
import torch
from beartype import beartype
from jaxtyping import Float, TypeCheckError, jaxtyped

import symtrans as st
from symtrans.adapter import attention_adapter
from symtrans.adapter.protocol import AttentionAdapter, Hook, HookKey
from symtrans.trace.evaluate import Evaluation, evaluate
from symtrans.trace.run import forward
from symtrans.trace.splits import required_hooks, term_inner_products

from . import arch_models as am
from .conftest import PROMPT

METHODS = ("W_Q", "W_K", "W_V", "b_Q", "b_K", "b_V", "W_O", "b_O", "W_out", "b_out")


def checker() -> typing.Callable[..., None]:
    """A function whose parameters are the protocol methods' return annotations: called with
    every method's result, jaxtyping checks each shape and that the dimension names agree."""
    params = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=typing.get_type_hints(getattr(AttentionAdapter, name))["return"],
        )
        for name in METHODS
    ]
    params.append(
        inspect.Parameter(
            "v",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Float[torch.Tensor, "batch pos n_heads d_head"],
        )
    )

    def check(**kwargs: object) -> None:
        return None

    check.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    check.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    return jaxtyped(typechecker=beartype)(check)


@pytest.mark.parametrize("arch", am.HF_ARCHITECTURES)
def test_adapters_present_the_protocols_shapes(arch_bridge, arch):
    model = arch_bridge(arch, torch.float64, False)
    adapter = attention_adapter(model)
    spec = adapter.spec
    tokens = adapter.tokenize(PROMPT)
    run = forward(adapter, [tokens], [len(tokens) - 1], {HookKey(Hook.V, 1)})
    for layer in range(spec.n_layers):
        results = {name: getattr(adapter, name)(layer) for name in METHODS}
        checker()(**results, v=run.activations[HookKey(Hook.V, 1)])
        assert results["W_K"].shape[0] == spec.n_heads and results["W_O"].shape[0] == spec.n_heads
        assert results["W_out"].shape == (spec.d_mlp, spec.d_model)


def test_a_wrong_shape_is_caught(arch_bridge):
    """The check can fail: keys per key/value head (Llama: 2 for 4 query heads) are refused."""
    adapter = attention_adapter(arch_bridge("llama", torch.float64, False))
    results = {name: getattr(adapter, name)(0) for name in METHODS}
    v = torch.zeros(1, 3, adapter.spec.n_heads, adapter.spec.d_head, dtype=torch.float64)
    results["W_K"] = results["W_K"][::2]  # one per key/value head
    with pytest.raises(TypeCheckError):
        checker()(**results, v=v)


@pytest.mark.parametrize("split", st.SPLITS)
def test_evaluation_shapes(arch_bridge, split):
    """``evaluate`` (and ``term_inner_products`` inside it) checked against their
    annotations on a grouped-query model."""
    adapter = attention_adapter(arch_bridge("llama", torch.float64, False))
    tokens = adapter.tokenize(PROMPT)
    position = len(tokens) - 1
    run = forward(adapter, [tokens, tokens], [position] * 2, required_hooks(adapter.spec, split))
    ids = torch.tensor([adapter.single_token(" Ireland", "answer")] * 2)
    ev = jaxtyped(typechecker=beartype)(evaluate)(adapter, run, split, ids, None, position)
    fields = typing.get_type_hints(Evaluation)
    check = jaxtyped(typechecker=beartype)(signature_of(fields))
    check(**{name: getattr(ev, name) for name in fields})
    w = torch.zeros(2, adapter.spec.d_model, dtype=torch.float64)
    inner = jaxtyped(typechecker=beartype)(term_inner_products)
    assert inner(adapter, run, split, w, position).shape == ev.values.shape
    wrong = {name: getattr(ev, name) for name in fields} | {"scale": ev.scale[:1]}
    with pytest.raises(TypeCheckError):  # one scale for a batch of two is caught
        check(**wrong)


def signature_of(annotations: dict[str, object]) -> typing.Callable[..., None]:
    params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=a)
        for name, a in annotations.items()
    ]

    def check(**kwargs: object) -> None:
        return None

    check.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    check.__annotations__ = dict(annotations) | {"return": None}
    return check
