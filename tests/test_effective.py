"""The effective embedding is exact: ``st.effective_embedding`` equals block 0 of the Hugging
Face model applied to each token alone (positional embedding zeroed), and
``d.effective_embedding(model)`` rewrites a decomposition into terms that still add up to
the model's logit, whose ``W_EE`` and block-0 remainders equal numbers taken from Hugging
Face's own modules (forward hooks on block 0's output projections), not from symtrans."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

import symtrans as st
from symtrans import labels as lb

from . import reference
from .conftest import PROMPT

MODELS = ["tiny-capitals", "tiny-capitals-neox", "random-gpt2", "random-neox"]
SPLITS = ["layers", "components", "heads", "neurons"]
ATOL = 1e-10  # float64 LayerNorm models
ROOT = Path(__file__).resolve().parent.parent


# -- Hugging Face's own block 0 -----------------------------------------------------------------


def _block0(hf: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    """(block 0, its attention output projection, its MLP output projection)."""
    if hasattr(hf, "transformer"):  # GPT-2: Conv1D, weight [in, out]
        block = hf.transformer.h[0]
        return block, block.attn.c_proj, block.mlp.c_proj
    block = hf.gpt_neox.layers[0]  # GPT-NeoX: Linear, weight [out, in]
    return block, block.attention.dense, block.mlp.dense_4h_to_h


def _weight_in_out(proj: torch.nn.Module) -> torch.Tensor:
    """The projection's weight as ``[in, out]``."""
    w = proj.weight
    return w if type(proj).__name__ == "Conv1D" else w.T


def _isolated_model(hf: torch.nn.Module, attention: bool) -> torch.nn.Module:
    """A copy with no positional embedding (and block 0's attention output zeroed)."""
    iso = copy.deepcopy(hf)
    if hasattr(iso, "transformer"):
        iso.transformer.wpe.weight.zero_()
    if not attention:
        proj = _block0(iso)[1]
        proj.weight.zero_()
        proj.bias.zero_()
    return iso


def _reference_rows(hf: torch.nn.Module, ids: torch.Tensor, attention: bool) -> torch.Tensor:
    """``[k, d_model]``: the residual after block 0 for each token alone, from HF's forward."""
    iso = _isolated_model(hf, attention)
    out = iso(ids[:, None], output_hidden_states=True)
    return out.hidden_states[1][:, 0]


def _block0_parts(hf: torch.nn.Module, tokens: list[int], p: int) -> dict[str, torch.Tensor]:
    """At position ``p``: the inputs and outputs of block 0's two output projections
    (``z`` heads concatenated, attention output, MLP activations, MLP output)."""
    _, attn_proj, mlp_proj = _block0(hf)
    seen: dict[str, torch.Tensor] = {}

    def keep(name: str):  # type: ignore[no-untyped-def]
        def hook(module, args, out):  # type: ignore[no-untyped-def]
            seen[name + "_in"] = args[0][0, p].detach()
            seen[name + "_out"] = out[0, p].detach()

        return hook

    handles = [
        attn_proj.register_forward_hook(keep("attn")),
        mlp_proj.register_forward_hook(keep("mlp")),
    ]
    try:
        hf(torch.tensor([tokens]))
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _read_vector(hf: torch.nn.Module, tokens: list[int], p: int, a: int, b: int) -> torch.Tensor:
    """``c(γ ⊙ u) / σ`` for ``u = W_U[a] - W_U[b]``, from HF's weights and the input of its
    final norm at ``p``: ``<t, r>`` is a term's contribution to the logit difference."""
    W_U = hf.get_output_embeddings().weight  # [vocab, d_model]
    norm = reference.final_norm(hf)
    w = norm.weight * (W_U[a] - W_U[b])
    x = reference.forward(hf, tokens)["resid_final"][p]
    c = x - x.mean()
    return (w - w.mean()) / torch.sqrt(c @ c / x.shape[0] + norm.eps)


def _ids(model: object) -> tuple[int, int]:
    """The ids of `` Ireland`` and `` France``."""
    encode = model.tokenizer.encode  # type: ignore[attr-defined]
    return encode(" Ireland", add_special_tokens=False)[0], encode(
        " France", add_special_tokens=False
    )[0]


# -- the rows -----------------------------------------------------------------------------------


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("name", MODELS)
def test_rows_equal_hugging_face_forward(bridge, hf_model, name, attention):
    model, hf = bridge(name), hf_model(name)
    ours = st.effective_embedding(model, attention=attention)
    n = hf.get_input_embeddings().weight.shape[0]
    assert ours.shape == (n, hf.config.hidden_size) and ours.dtype == torch.float64
    ref = _reference_rows(hf, torch.arange(n), attention)
    err = float((ours - ref).abs().max())
    print(f"{name} attention={attention}: W_EE rows vs HF forward max err {err:.2e}")
    assert err <= ATOL
    W_E = hf.get_input_embeddings().weight
    assert float((ours - W_E).abs().max()) > 1e-3  # block 0 changes the rows: not vacuous


@pytest.mark.parametrize("name", MODELS)
def test_rows_equal_hugging_face_block_modules(bridge, hf_model, name):
    """The seed's form: block 0 called on ``W_E[t]`` alone; without attention,
    ``x + MLP(ln2(x))``."""
    model, hf = bridge(name), hf_model(name)
    x = hf.get_input_embeddings().weight[:, None, :]  # [vocab, 1, d_model]
    block = _block0(hf)[0]
    if hasattr(hf, "transformer"):
        full = block(x)
        without = x + block.mlp(block.ln_2(x))
    else:
        rotary = hf.gpt_neox.rotary_emb(x, torch.zeros(x.shape[0], 1, dtype=torch.long))
        full = block(x, position_embeddings=rotary)
        without = x + block.mlp(block.post_attention_layernorm(x))
    full = full[0] if isinstance(full, tuple) else full
    for attention, ref in ((True, full[:, 0]), (False, without[:, 0])):
        err = float((st.effective_embedding(model, attention=attention) - ref).abs().max())
        print(f"{name} attention={attention}: W_EE rows vs HF block modules max err {err:.2e}")
        assert err <= ATOL
    difference = st.effective_embedding(model) - st.effective_embedding(model, attention=False)
    assert float(difference.abs().max()) > 1e-3  # attention matters: not vacuous


def test_token_subsets_and_strings(bridge):
    model = bridge("tiny-capitals")
    every = st.effective_embedding(model)
    ireland = model.tokenizer.encode(" Ireland", add_special_tokens=False)[0]
    some = st.effective_embedding(model, [3, " Ireland", 0])
    # Batch size changes the rounding of the forward's matrix products, nothing else.
    assert float((some - every[[3, ireland, 0]]).abs().max()) <= 1e-12
    tensor = st.effective_embedding(model, torch.tensor([5, 7]))
    assert float((tensor - every[[5, 7]]).abs().max()) <= 1e-12


@pytest.mark.parametrize(
    "tokens,match",
    [
        ([-1], "outside the vocabulary"),
        ([10**6], "outside the vocabulary"),
        ([], "empty"),
        (torch.zeros(2, 2, dtype=torch.long), "1-D tensor"),
        (torch.tensor([1.0]), "1-D tensor"),
        ("Dublin", "list of token ids"),
        ([1.5], "int id"),
    ],
)
def test_bad_tokens_raise(bridge, tokens, match):
    with pytest.raises(st.InvalidArgumentError, match=match):
        st.effective_embedding(bridge("tiny-capitals"), tokens)


def test_multi_token_string_raises(bridge):
    with pytest.raises(st.TokenizationError, match="not a single token"):
        st.effective_embedding(bridge("tiny-capitals"), ["Dublin is"])


# -- the decomposition --------------------------------------------------------------------------


@pytest.mark.parametrize("attention", [True, False])
@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", MODELS)
def test_decomposition_is_exact_and_matches_hugging_face(bridge, hf_model, name, split, attention):
    model, hf = bridge(name), hf_model(name)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split=split)
    e = d.effective_embedding(model, attention=attention)
    tokens, p = list(d.tokens), d.position
    a, b = _ids(model)
    hf_logit = reference.logit(hf, tokens, p, a, b)
    e.verify()
    errors = {
        "total vs d.total": abs(e.total - d.total),
        "total vs HF logit": abs(e.total - hf_logit),
    }

    r = _read_vector(hf, tokens, p, a, b)
    t = tokens[p]
    row = _reference_rows(hf, torch.tensor([t]), attention)[0]
    value = dict(zip(e.labels, e.values, strict=True))
    assert e.labels[0] == lb.EffectiveEmbed(attention)
    errors["W_EE term"] = abs(value[lb.EffectiveEmbed(attention)] - float(row @ r))

    # Block 0's parts in the prompt and for the token alone, from HF's forward hooks.
    actual = _block0_parts(hf, tokens, p)
    alone = _block0_parts(_isolated_model(hf, attention), [t], 0)
    attn_rem = float((actual["attn_out"] - alone["attn_out"]) @ r)
    mlp_rem = float((actual["mlp_out"] - alone["mlp_out"]) @ r)
    attn_actual = float(actual["attn_out"] @ r)
    expected: dict[lb.Label, float] = {}
    if split == "layers":
        expected[lb.Remainder(lb.BlockOut(0))] = (attn_rem if attention else attn_actual) + mlp_rem
    else:
        if split in ("components", "neurons"):
            key = lb.Remainder(lb.AttnOut(0)) if attention else lb.AttnOut(0)
            expected[key] = attn_rem if attention else attn_actual
        if split in ("components", "heads"):
            expected[lb.Remainder(lb.MlpOut(0))] = mlp_rem
    _, attn_proj, mlp_proj = _block0(hf)
    if split == "heads" and attention:
        W = _weight_in_out(attn_proj)  # [n_heads * d_head, d_model]
        d_head = W.shape[0] // d.model.n_heads
        z = actual["attn_in"] - alone["attn_in"]
        for h in range(d.model.n_heads):
            part = slice(h * d_head, (h + 1) * d_head)
            expected[lb.Remainder(lb.HeadOut(0, h))] = float(z[part] @ W[part] @ r)
    if split == "neurons":
        read = _weight_in_out(mlp_proj) @ r  # [d_mlp]
        post = actual["mlp_in"] - alone["mlp_in"]
        for n in range(d.model.d_mlp):
            expected[lb.Remainder(lb.Neuron(0, n))] = float(post[n] * read[n])
    block0 = [x for x in e.labels if getattr(lb.base(x), "layer", None) == 0]
    assert set(expected) <= set(block0), (set(expected) - set(block0), block0)
    errors["block-0 terms"] = max(abs(value[k] - v) for k, v in expected.items())
    # Block 0's terms add up to what block 0 adds beyond what W_EE took from it.
    errors["block-0 sum"] = abs(
        sum(value[x] for x in block0) - ((attn_rem if attention else attn_actual) + mlp_rem)
    )
    # Later terms are untouched.
    later = [x for x in d.labels if getattr(x, "layer", -1) >= 1]
    errors["later terms"] = max(abs(value[x] - d.values[d.labels.index(x)]) for x in later)
    print(
        f"{name} {split} attention={attention}: "
        + ", ".join(f"{k} {v:.2e}" for k, v in errors.items())
    )
    assert errors["total vs d.total"] <= 1e-12
    assert max(errors.values()) <= ATOL, errors
    assert abs(value[e.labels[0]] - d.values[0]) > 1e-3  # W_EE is not W_E: not vacuous
    assert abs(mlp_rem - float(actual["mlp_out"] @ r)) > 1e-6  # something was subtracted


def test_labels_and_names(bridge):
    model = bridge("tiny-capitals")
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    e = d.effective_embedding(model)
    names = [str(x) for x in e.labels]
    assert names[:3] == ["W_EE", "pos_embed", "L0H0-self"]
    assert "0_attn_bias" not in names and "0_mlp_out-self" in names and "1_mlp_out" in names
    assert str(d.effective_embedding(model, attention=False).labels[0]) == "W_EE0"
    assert e.ablate(["W_EE"]) == pytest.approx(e.total - e.values[0], abs=1e-12)


def test_bad_requests_raise(bridge):
    model = bridge("tiny-capitals")
    d = st.decompose(model, PROMPT, answer=" Ireland", split="positions")
    with pytest.raises(st.InvalidArgumentError, match="split='heads'"):
        d.effective_embedding(model)
    e = st.decompose(model, PROMPT, answer=" Ireland", split="heads").effective_embedding(model)
    with pytest.raises(st.InvalidArgumentError, match="straight from st.decompose"):
        e.effective_embedding(model)
    other = st.decompose(bridge("random-gpt2"), PROMPT, answer=" Ireland", split="heads")
    with pytest.raises(st.InvalidArgumentError, match="model"):
        other.effective_embedding(model)


# -- rendering ----------------------------------------------------------------------------------


def test_renders_in_every_format(bridge, tmp_path):
    from .test_report import assert_renders_everywhere

    model = bridge("tiny-capitals")
    cases = [
        st.decompose(
            model, PROMPT, answer=" Ireland", vs=" France", split=split
        ).effective_embedding(model, attention=attention)
        for split, attention in (("heads", True), ("neurons", True), ("layers", False))
    ]
    for md in assert_renders_everywhere(cases, tmp_path, top_k=12):
        assert "W_EE" in md and "-self" in md and "\\mathrm{EE" in md
    neurons = cases[1].to_markdown()
    # remainders of neurons stay one sum
    assert r"\sum_{n=0}^{255} \mathop{\left[a_{6,n}^{(0)}" in neurons
