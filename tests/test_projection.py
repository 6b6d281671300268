"""A head's projection is exact: its parallel and perpendicular parts add up to the head's
term, and the logits and losses of "projection only", "perpendicular only" and "ablated"
equal the model's own output when the head's output at ``p`` is replaced that way in the
input of its final norm (a hook on ``ln_final.hook_in``; the scale pinned by a hook on
``ln_final.hook_scale`` for the frozen numbers). The parts are rebuilt here from the model's
cache (pattern, v, W_O, W_U), not by symtrans."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import symtrans as st
from symtrans import labels as lb

from .conftest import PROMPT

MODELS = ["tiny-capitals", "tiny-capitals-neox", "random-gpt2", "random-neox"]
ATOL = 1e-10  # float64 LayerNorm models
ROOT = Path(__file__).resolve().parent.parent


def _reference(
    model: object, d: st.Decomposition, layer: int, h: int, onto: object, only_negative: bool
) -> dict[str, object]:
    """Per source: ``r_s`` and its parallel part from the cache; then the model's logits and
    losses with the head's output at ``p`` replaced in ``ln_final.hook_in``."""
    p = d.position
    tokens = torch.tensor([list(d.tokens)])
    _, cache = model.run_with_cache(tokens)  # type: ignore[attr-defined]
    pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0, h, p, : p + 1]  # [S]
    v = cache[f"blocks.{layer}.attn.hook_v"][0, : p + 1, h]  # [S, d_head]
    W_O = model.blocks[layer].attn.W_O[h]  # type: ignore[attr-defined]
    W_U = model.W_U  # type: ignore[attr-defined]  # [d_model, vocab]
    r = pattern[:, None] * (v @ W_O)  # [S, d_model]
    if onto == "source":
        e = W_U[:, tokens[0, : p + 1]].T
    elif isinstance(onto, str):
        e = W_U[:, model.tokenizer.encode(onto, add_special_tokens=False)[0]].expand(p + 1, -1)  # type: ignore[attr-defined]
    else:
        e = onto.expand(p + 1, -1)  # type: ignore[attr-defined]
    coef = (r * e).sum(-1) / (e * e).sum(-1)
    par = coef[:, None] * e
    if only_negative:
        par = par * (coef < 0)[:, None]
    perp = r - par
    H = r.sum(0)
    z = cache[f"blocks.{layer}.attn.hook_z"][0, p, h]
    sigma = cache["ln_final.hook_scale"][0, p].clone()
    tok = model.tokenizer  # type: ignore[attr-defined]
    a = tok.encode(d.answer, add_special_tokens=False)[0]
    b = tok.encode(d.vs, add_special_tokens=False)[0] if d.vs is not None else None

    def outcome(delta: torch.Tensor, frozen: bool) -> tuple[float, float]:
        def add(x: torch.Tensor, hook: object) -> torch.Tensor:
            x = x.clone()
            x[0, p] += delta
            return x

        def pin(s: torch.Tensor, hook: object) -> torch.Tensor:
            s = s.clone()
            s[0, p] = sigma
            return s

        hooks = [("ln_final.hook_in", add)] + ([("ln_final.hook_scale", pin)] if frozen else [])
        logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[0, p]  # type: ignore[attr-defined]
        logit = logits[a] - (logits[b] if b is not None else 0.0)
        loss = torch.nn.functional.cross_entropy(logits[None], torch.tensor([a]))
        return float(logit), float(loss)

    deltas = {
        "full": torch.zeros_like(H),
        "projection_only": par.sum(0) - H,
        "perpendicular_only": perp.sum(0) - H,
        "ablated": -H,
    }
    return {
        "coef": coef,
        "par": par,
        "perp": perp,
        "e": e,
        "head_from_z": z @ W_O,
        "H": H,
        "effects": {
            name: {frozen: outcome(delta, frozen) for frozen in (True, False)}
            for name, delta in deltas.items()
        },
    }


def _ids(model: object, *texts: str) -> list[int]:
    tok = model.tokenizer  # type: ignore[attr-defined]
    return [tok.encode(t, add_special_tokens=False)[0] for t in texts]


CASES = [
    pytest.param(name, split, head, onto, neg, id=f"{name}-{split}-{head}-{onto}-neg{neg}")
    for name in MODELS
    for split, head, onto, neg in [
        ("heads", "L1H0", "source", False),
        ("heads", "L1H2", "source", True),
        ("positions", "L0H3", "source", False),
        ("heads", "L1H1", " France", False),
        ("heads", "L1H3", "vector", True),
    ]
]


@pytest.mark.parametrize("name,split,head,onto,only_negative", CASES)
def test_projection_equals_model_with_head_output_replaced(
    bridge, name, split, head, onto, only_negative
):
    model = bridge(name)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split=split)
    layer, h = int(head[1]), int(head[3])
    if onto == "vector":  # a fixed direction: the answer's unembedding plus noise
        gen = torch.Generator().manual_seed(layer * 10 + h)
        W_U = model.W_U
        onto_arg: object = W_U[:, _ids(model, " Ireland")[0]] + 0.3 * torch.randn(
            W_U.shape[0], generator=gen, dtype=W_U.dtype
        )
    else:
        onto_arg = onto
    pr = st.project(model, d, head, onto=onto_arg, only_negative=only_negative)
    ref = _reference(model, d, layer, h, onto_arg, only_negative)
    pr.verify()

    errors: dict[str, float] = {}
    # The reference's parts are what they say: parallel to e_s, the rest orthogonal to it.
    par, perp, e = ref["par"], ref["perp"], ref["e"]  # type: ignore[misc]
    cos = (par * e).sum(-1).abs() / (par.norm(dim=-1) * e.norm(dim=-1))
    nonzero = par.norm(dim=-1) > 0
    errors["ref |cos(par, e)| - 1"] = float((cos[nonzero] - 1).abs().max())
    if not only_negative:
        errors["ref <perp, e>/|e|"] = float(((perp * e).sum(-1) / e.norm(dim=-1)).abs().max())
    errors["ref H vs z W_O"] = float((ref["H"] - ref["head_from_z"]).abs().max())  # type: ignore[operator]

    # symtrans's per-source numbers against the reference's vectors.
    w = _read(model, d)  # <t, w> is a term's contribution (frozen scale)
    errors["coefficients"] = max(
        abs(s.coefficient - float(c))
        for s, c in zip(pr.sources, ref["coef"], strict=True)  # type: ignore[call-overload]
    )
    errors["parallel per source"] = max(
        abs(s.parallel - float(v @ w)) for s, v in zip(pr.sources, par, strict=True)
    )
    errors["perpendicular per source"] = max(
        abs(s.perpendicular - float(v @ w)) for s, v in zip(pr.sources, perp, strict=True)
    )
    errors["parallel + perpendicular vs head term"] = abs(pr.error)
    for name_, effect in ref["effects"].items():  # type: ignore[attr-defined]
        ours = getattr(pr, name_)
        errors[f"{name_} logit"] = abs(ours.logit - effect[True][0])
        errors[f"{name_} loss"] = abs(ours.loss - effect[True][1])
        errors[f"{name_} logit renormalized"] = abs(ours.logit_renormalized - effect[False][0])
        errors[f"{name_} loss renormalized"] = abs(ours.loss_renormalized - effect[False][1])
    errors["full logit vs d.model_logit"] = abs(pr.full.logit_renormalized - d.model_logit)
    new = pr.decomposition
    new.verify()
    errors["decomposition total vs d.total"] = abs(new.total - d.total)
    print(
        f"{name} {split} {head} onto={onto} neg={only_negative}: "
        + "; ".join(f"{k} {v:.2e}" for k, v in errors.items())
    )
    assert errors["decomposition total vs d.total"] <= 1e-12
    assert errors["parallel + perpendicular vs head term"] <= 1e-12
    assert max(errors.values()) <= ATOL, errors

    kept = [s for s in pr.sources if s.kept]
    if only_negative:
        assert all(s.coefficient < 0 for s in kept)
        assert all(s.parallel == 0.0 for s in pr.sources if not s.kept)
    else:
        assert len(kept) == d.position + 1
    labels = [str(x) for x in new.labels]
    assert f"{head}_par" in labels and f"{head}_perp" in labels and head not in labels
    # Replacing the head changes the output: not vacuous.
    assert abs(pr.ablated.logit - pr.full.logit) > 1e-6
    assert abs(pr.projection_only.loss_renormalized - pr.ablated.loss_renormalized) > 1e-9


def _read(model: object, d: st.Decomposition) -> torch.Tensor:
    """``c(γ ⊙ u) / σ`` from the bridge's final norm and its cached scale at ``p``."""
    tokens = torch.tensor([list(d.tokens)])
    _, cache = model.run_with_cache(tokens)  # type: ignore[attr-defined]
    a, b = _ids(model, d.answer, d.vs)  # type: ignore[arg-type]
    W_U = model.W_U  # type: ignore[attr-defined]
    gamma = model.ln_final.original_component.weight  # type: ignore[attr-defined]
    w = gamma * (W_U[:, a] - W_U[:, b])
    return (w - w.mean()) / cache["ln_final.hook_scale"][0, d.position, 0]


def test_heads_and_positions_splits_agree(bridge):
    model = bridge("tiny-capitals")
    heads = st.decompose(model, PROMPT, answer=" Ireland", split="heads").project(model, "L1H0")
    positions = st.decompose(model, PROMPT, answer=" Ireland", split="positions").project(
        model, lb.HeadOut(1, 0)
    )
    assert heads.parallel == pytest.approx(positions.parallel, abs=1e-12)
    assert heads.head_value == pytest.approx(positions.head_value, abs=1e-12)
    assert heads.projection_only.loss == pytest.approx(positions.projection_only.loss, abs=1e-12)
    labels = positions.decomposition.labels
    assert not any(isinstance(x, lb.HeadSource) and (x.layer, x.head) == (1, 0) for x in labels)


def test_bad_requests_raise(bridge):
    model = bridge("tiny-capitals")
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    with pytest.raises(st.InvalidArgumentError, match="not a head of this model"):
        d.project(model, "L5H0")
    with pytest.raises(st.InvalidArgumentError, match="split='heads'"):
        st.decompose(model, PROMPT, answer=" Ireland", split="layers").project(model, "L1H0")
    with pytest.raises(st.InvalidArgumentError, match="onto must be"):
        d.project(model, "L1H0", onto=torch.ones(3, dtype=torch.float64))
    with pytest.raises(st.InvalidArgumentError, match="onto must be"):
        d.project(model, "L1H0", onto=3)
    with pytest.raises(st.InvalidArgumentError, match="zero vector"):
        d.project(model, "L1H0", onto=torch.zeros(64, dtype=torch.float64))
    with pytest.raises(st.TokenizationError, match="not a single token"):
        d.project(model, "L1H0", onto="Dublin is")
    with pytest.raises(st.InvalidArgumentError, match="only_negative"):
        d.project(model, "L1H0", only_negative="yes")
    with pytest.raises(st.InvalidArgumentError, match="σ"):
        st.Decomposition(**{**d.__dict__, "scale": d.scale * 2}).project(model, "L1H0")
    broken = dataclasses.replace(d.project(model, "L1H0"), head_value=1.0)
    with pytest.raises(st.IdentityError, match="L1H0 at position 6: the parallel"):
        broken.verify()


def test_renders_in_every_format(bridge, tmp_path):
    from .test_report import assert_renders_everywhere

    model = bridge("tiny-capitals-neox")
    cases = [
        st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split=split)
        .project(model, "L1H2")
        .decomposition
        for split in ("heads", "positions")
    ]
    for md in assert_renders_everywhere(cases, tmp_path):
        assert "L1H2_par" in md and r"\parallel" in md and r"\perp" in md
    # In the positions split the other heads of layer 1 still fold into sums over sources.
    p = cases[1].position
    assert rf"\sum_{{s=0}}^{{{p}}} A_{{{p},s}}^{{(1,0)}}" in cases[1].to_markdown()
