"""Path expansion and attention-score decomposition on every architecture: GPT-2, GPT-NeoX
(rotary, parallel), Llama (RMSNorm, gated MLP, grouped-query attention), GPT-J (rotary,
parallel) and attention-only, through TransformerBridge raw and after
``enable_compatibility_mode()`` and, under TransformerLens 3.x, through HookedTransformer
with no weight processing and with all of it (``fold_ln``, ``center_writing_weights``,
``center_unembed``, ``fold_value_biases``). Float64 throughout.

Each number is checked against the model's own forward pass:

- ``st.attention_scores`` adds up to ``blocks.{l}.attn.hook_attn_scores`` on every layer, head
  and causal (query, key) pair, and the softmax of each row of sums is ``hook_pattern``;
- ``expand_head`` at depth 1 and 2 adds up to the head's term of ``split="heads"``;
- one path of each kind of source, taken out of the head's values with a hook on
  ``hook_v`` (the pattern does not depend on values), changes the head's term by exactly
  minus the path's value;
- the block-input terms add up to ``hook_resid_pre``.

Tolerances: 1e-10 for LayerNorm models and for HookedTransformer's Llama (its RMSNorm runs in
the model's dtype; measured ≤ 2e-15). TransformerBridge's Llama runs Hugging Face's RMSNorm,
which normalises in float32 even in a float64 model, so the frozen first-norm scale reproduces
its queries, keys and values to float32 precision: the documented float64 RMSNorm tolerance
``RTOL[("float64", RMS)] · max(1, Σ|parts|)`` = 1e-6 relative (``symtrans.verify``); measured
1.0e-8 on scores, 4.6e-9 on paths. Its pattern comes out of a float32 softmax (2.7e-8 from
the softmax of the float64 scores).

Refused, each with an ``UnsupportedModelError`` that says why: attention scores of GPT-J
(rotate-every-two rotary, and TransformerBridge's GPT-J ``hook_attn_scores`` is the pattern)
and of TransformerBridge's attention-only ``boot_native`` models (their ``hook_attn_scores``
is the softmaxed pattern, so there is no model score to check against).

HookedTransformer is gone in TransformerLens 4.x: its rows exist only where it imports; run
this file in the TransformerLens 3.x environment as ``make test-tl3`` runs its files (with
``SYMTRANS_REQUIRE_HOOKED=1`` a missing HookedTransformer fails the module).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from typing import Any

import pytest
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.adapter import attention_adapter
from symtrans.analyses.attention import attention_scores
from symtrans.analyses.paths import expand_head
from symtrans.labels import Ln1Bias, ValueBias
from symtrans.norm import NormKind
from symtrans.trace.blocks import block_input_terms
from symtrans.trace.blocks import block_inputs as trace
from symtrans.verify import RTOL

from . import arch_models as am
from .conftest import PROMPT
from .test_architectures import BRIDGE_ROWS
from .test_paths import z_without_value

HOOKED = am.hooked_available()
if not HOOKED and os.environ.get("SYMTRANS_REQUIRE_HOOKED"):
    _version = importlib.metadata.version("transformer_lens")
    raise ImportError(f"HookedTransformer is not importable from TransformerLens {_version}")

# A version-dependent test shows as skipped, with the reason, under TransformerLens 4.
NEEDS_HOOKED = pytest.mark.skipif(
    not HOOKED,
    reason="HookedTransformer is not in TransformerLens 4; `make test-tl3` runs this under 3.9",
)
HOOKED_ARCHS = ("gpt2", "neox", "llama", am.ATTN_ONLY)
HOOKED_OPTIONS = ("raw", "all")
# Architectures whose hook_attn_scores the bridge fires with the pattern, or whose rotary
# symtrans does not read (see the module docstring).
NO_BRIDGE_SCORES = {"gptj": "softmaxed pattern", am.ATTN_ONLY: "softmaxed"}

Row = tuple[str, str, str]  # (api, arch, variant): ("bridge", arch, "raw" | "compat") or
# ("hooked", arch, weight-processing option of tests/arch_models.FOLD_OPTIONS)


def _rows() -> list[Any]:
    rows = []
    for param in BRIDGE_ROWS:
        arch, compat = param.values  # type: ignore[attr-defined]
        variant = "compat" if compat else "raw"
        rows.append(pytest.param(("bridge", arch, variant), id=f"bridge-{arch}-{variant}"))
    for arch in HOOKED_ARCHS:
        for option in HOOKED_OPTIONS:
            rows.append(
                pytest.param(
                    ("hooked", arch, option), id=f"hooked-{arch}-{option}", marks=NEEDS_HOOKED
                )
            )
    return rows


ROWS = _rows()
SCORE_ROWS = [
    r for r in ROWS if not (r.values[0][0] == "bridge" and r.values[0][1] in NO_BRIDGE_SCORES)
]
REFUSED_SCORE_ROWS = [r for r in ROWS if r not in SCORE_ROWS]


@pytest.fixture(scope="module")
def analysed(arch_bridge, arch_dirs, arch_hf) -> Callable[[Row], Any]:
    """``analysed(row)``: the float64 model of a row, cached."""
    cache: dict[Row, Any] = {}

    def get(row: Row) -> Any:
        api, arch, variant = row
        if row not in cache:
            if api == "bridge":
                cache[row] = arch_bridge(arch, torch.float64, variant == "compat")
            else:
                hf = None if arch == am.ATTN_ONLY else arch_hf(arch, torch.float64)
                cache[row] = am.load_hooked(
                    arch_dirs[arch], arch, torch.float64, variant, hf_model=hf
                )
        return cache[row]

    return get


def tolerance(row: Row, magnitude: float) -> float:
    """See the module docstring: float32 RMSNorm inside the bridge's Llama, else 1e-10."""
    api, arch, _ = row
    if api == "bridge" and arch in am.RMS_ARCHITECTURES:
        return RTOL[("float64", NormKind.RMS)] * max(1.0, magnitude)
    return 1e-10


# -- (1) attention scores ---------------------------------------------------------------------


@pytest.mark.parametrize("row", SCORE_ROWS)
def test_score_pieces_add_up_to_the_models_scores(analysed, row):
    model = analysed(row)
    tokens = model.to_tokens(PROMPT)
    _, cache = model.run_with_cache(tokens)
    n_layers, n_heads, n = model.cfg.n_layers, model.cfg.n_heads, tokens.shape[1]
    softmax_atol = 1e-6 if tolerance(row, 0.0) > 1e-10 else 1e-12  # float32 softmax: Llama
    worst = worst_relative = 0.0
    for layer in range(n_layers):
        scores = cache[f"blocks.{layer}.attn.hook_attn_scores"][0]
        pattern = cache[f"blocks.{layer}.attn.hook_pattern"][0]
        for head in range(n_heads):
            for p in range(n):
                row_of_sums = []
                for s in range(p + 1):
                    sd = attention_scores(model, PROMPT, layer, head, p, s)
                    expected = float(scores[head, p, s])
                    magnitude = float(abs(sd.values).sum())
                    error = abs(sd.total - expected)
                    worst = max(worst, error)
                    worst_relative = max(worst_relative, error / max(1.0, magnitude))
                    assert error <= tolerance(row, magnitude), (layer, head, p, s, sd.total)
                    assert sd.model_score == expected
                    row_of_sums.append(sd.total)
                soft = torch.softmax(torch.tensor(row_of_sums, dtype=torch.float64), dim=0)
                torch.testing.assert_close(
                    soft, pattern[head, p, : p + 1].to(torch.float64), rtol=0, atol=softmax_atol
                )
    print(f"{row}: max |Σ pieces - hook_attn_scores| = {worst:.2e} ({worst_relative:.2e} rel)")


@pytest.mark.parametrize("row", [r for r in SCORE_ROWS if r.values[0][1] == "llama"])
def test_grouped_query_heads_share_their_key_pieces(analysed, row):
    """Llama: 4 query heads read 2 key/value heads (h // 2); heads of one group get the same
    key pieces, heads of different groups do not."""
    model = analysed(row)
    assert model.cfg.n_key_value_heads == 2 and model.cfg.n_heads == 4
    sds = [attention_scores(model, PROMPT, 1, h, -1, 2) for h in range(4)]
    assert (sds[0].key_pieces == sds[1].key_pieces).all()
    assert (sds[2].key_pieces == sds[3].key_pieces).all()
    assert abs(sds[0].key_pieces - sds[2].key_pieces).max() > 1e-3
    assert abs(sds[0].query_pieces - sds[1].query_pieces).max() > 1e-3


def test_grouped_query_weights_match_hugging_faces_key_projection(analysed, arch_hf):
    """The bridge's per-query-head ``W_K``/``W_V`` are Hugging Face's ``k_proj``/``v_proj``
    rows of key/value head ``h // 2`` (HF's ``repeat_kv`` order), read from HF itself."""
    adapter = attention_adapter(analysed(("bridge", "llama", "raw")))
    hf_attn = arch_hf("llama", torch.float64).model.layers[1].self_attn
    d_head = adapter.spec.d_head
    for name, proj in (("W_K", hf_attn.k_proj), ("W_V", hf_attn.v_proj)):
        W = getattr(adapter, name)(1)
        assert W.shape == (4, 32, d_head)
        for h in range(4):
            g = h // 2
            expected = proj.weight[g * d_head : (g + 1) * d_head].T
            torch.testing.assert_close(W[h], expected, rtol=0, atol=0)


@pytest.mark.parametrize("row", REFUSED_SCORE_ROWS)
def test_unsupported_attention_scores_are_refused(analysed, row):
    model = analysed(row)
    arch = row[1]
    if arch == am.ATTN_ONLY:  # why: the hook really is the pattern (TransformerLens 4.3)
        _, cache = model.run_with_cache(model.to_tokens(PROMPT))
        scores = cache["blocks.1.attn.hook_attn_scores"]
        assert torch.equal(scores, cache["blocks.1.attn.hook_pattern"])
    with pytest.raises(st.UnsupportedModelError, match=NO_BRIDGE_SCORES[arch]):
        attention_scores(model, PROMPT, 1, 0, -1, 0)


# -- (2) paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("depth", [1, 2])
def test_paths_add_up_to_the_heads_term(analysed, row, depth):
    model = analysed(row)
    d = st.decompose(model, PROMPT, answer=" Ireland", vs=" France", split="heads")
    last = d.model.n_layers - 1
    worst = 0.0
    for h in range(d.model.n_heads):
        e = expand_head(model, d, lb.HeadOut(last, h), depth=depth)
        expected = d.values[d.labels.index(lb.HeadOut(last, h))]
        magnitude = sum(abs(p.value) for p in e.paths)
        worst = max(worst, abs(e.total - expected))
        assert abs(e.total - expected) <= tolerance(row, magnitude), (h, e.total, expected)
        assert e.verify(atol=tolerance(row, magnitude)) is e
        assert max(len(p.nodes) for p in e.paths) == depth + 1  # source + one node per head
        assert all(p.positions[-1] == d.position and p.nodes[-1] == e.head for p in e.paths)
        assert all(list(p.positions) == sorted(p.positions) for p in e.paths)  # causal
    print(f"{row} depth={depth}: max |Σ paths - heads-split term| = {worst:.2e}")


@pytest.mark.parametrize("row", ROWS)
def test_block_input_terms_add_up_to_resid_pre(analysed, row):
    model = analysed(row)
    adapter = attention_adapter(model)
    tokens = adapter.tokenize(PROMPT)
    last = adapter.spec.n_layers - 1
    total = sum(v for _, v in block_input_terms(trace(adapter, tokens, last), last))
    _, cache = model.run_with_cache(torch.tensor([tokens]))
    expected = cache[f"blocks.{last}.hook_resid_pre"][0]
    torch.testing.assert_close(total, expected, rtol=0, atol=1e-12)


def _norm_param(module: Any, name: str) -> torch.Tensor | None:
    """γ (``"weight"``) or β (``"bias"``) of a norm as its forward applies it, by the API's
    own names (``None`` for LayerNormPre / RMSNormPre, and for RMSNorm's β)."""
    inner = getattr(module, "original_component", None)
    if inner is not None:  # bridge: the wrapped torch module
        return getattr(inner, name, None)
    return getattr(module, {"weight": "w", "bias": "b"}[name], None)


def _source_vector(model: Any, cache: Any, node: Any, s: int) -> torch.Tensor | None:
    """What the path's source adds to the residual entering the block at ``s`` (``None``
    for the first norm's bias and ``b_V``, which enter after the norm)."""
    if isinstance(node, lb.Embed):
        return cache["hook_embed"][0, s]
    if isinstance(node, lb.PosEmbed):
        return cache["hook_pos_embed"][0, s]
    if isinstance(node, lb.MlpOut):
        return cache[f"blocks.{node.layer}.hook_mlp_out"][0, s]
    if isinstance(node, lb.HeadOut):
        z = cache[f"blocks.{node.layer}.attn.hook_z"][0, s, node.head]
        return z @ model.blocks[node.layer].attn.W_O[node.head]
    if isinstance(node, lb.AttnBias):  # Llama's o_proj has none
        b_O = model.blocks[node.layer].attn.b_O
        return torch.zeros(model.cfg.d_model, dtype=torch.float64) if b_O is None else b_O
    assert isinstance(node, Ln1Bias | ValueBias), node
    return None


@pytest.mark.parametrize("row", ROWS)
def test_one_path_of_each_kind_equals_the_model_with_that_value_input_removed(analysed, row):
    """For the largest path of each kind of source (embedding, positions, an earlier head,
    ``b_O``, an MLP, the first norm's bias, ``b_V``), subtract what that source adds to the
    head's value at the source position (a hook on ``hook_v``; grouped-query attention: the
    key/value head the query head reads); the model's head term changes by minus the path."""
    arch = row[1]
    model = analysed(row)
    d = st.decompose(model, PROMPT, answer=" Ireland", split="heads")
    layer, head, p = d.model.n_layers - 1, 1, d.position
    e = expand_head(model, d, lb.HeadOut(layer, head), depth=1)
    tokens = torch.tensor([list(d.tokens)])
    _, cache = model.run_with_cache(tokens)
    attn = model.blocks[layer].attn
    rms = arch in am.RMS_ARCHITECTURES
    gamma1 = _norm_param(model.blocks[layer].ln1, "weight")
    n_heads, n_kv = model.cfg.n_heads, cache[f"blocks.{layer}.attn.hook_v"].shape[2]
    kv = head // (n_heads // n_kv)
    W_V = attn.W_V[head if attn.W_V.shape[0] == n_heads else kv]
    b_V = attn.b_V
    W_O = attn.W_O[head]
    gamma_f = _norm_param(model.ln_final, "weight")
    w = model.W_U[:, model.tokenizer.encode(" Ireland", add_special_tokens=False)[0]]
    w = w * gamma_f if gamma_f is not None else w
    read = w if rms else w - w.mean()  # c(γ ⊙ u)
    sigma = cache["ln_final.hook_scale"][0, p, 0]
    z_before = cache[f"blocks.{layer}.attn.hook_z"][0, p, head]

    largest: dict[type, Any] = {}
    for path in e.paths:  # largest |value| first
        largest.setdefault(type(path.nodes[0]), path)
    expected_kinds = {lb.Embed, lb.HeadOut, ValueBias}
    expected_kinds |= {lb.PosEmbed} if arch in ("gpt2", am.ATTN_ONLY) else set()  # learned
    expected_kinds |= {lb.MlpOut} if arch != am.ATTN_ONLY else set()
    expected_kinds |= {Ln1Bias} if not rms and gamma1 is not None else set()
    assert expected_kinds <= set(largest), (expected_kinds, set(largest))

    for kind, path in largest.items():
        source, s = path.nodes[0], path.positions[0]
        t = _source_vector(model, cache, source, s)
        if t is not None:
            scale1 = cache[f"blocks.{layer}.ln1.hook_scale"][0, s, 0]
            normed = (t if rms else t - t.mean()) / scale1
            dv = (normed * gamma1 if gamma1 is not None else normed) @ W_V
        elif isinstance(source, Ln1Bias):
            beta1 = _norm_param(model.blocks[layer].ln1, "bias")
            assert beta1 is not None
            dv = beta1 @ W_V
        elif b_V is None:  # Llama's v_proj has no bias: b_V paths are 0
            dv = torch.zeros_like(W_V[0])
        else:
            dv = b_V[head if b_V.shape[0] == n_heads else kv]

        z_after = z_without_value(model, tokens, layer, s, kv, dv, p, head)
        change = float(((z_after - z_before) @ W_O) @ read / sigma)
        print(
            f"{row} {kind.__name__}: {path}; |model change + path| = {abs(change + path.value):.1e}"
        )
        assert abs(change + path.value) <= 1e-10 * max(1.0, abs(path.value)), (path, change)
        assert abs(path.value) > 0 or t is None or kind is lb.AttnBias  # not a 0 = 0 check


# -- HookedTransformer refusals -----------------------------------------------------------------
@NEEDS_HOOKED
def test_hooked_rotary_of_adjacent_pairs_is_refused():
    """A HookedTransformer whose rotary rotates adjacent pairs (GPT-J style): its buffers are
    not the rotate-half tables symtrans reads, so attention scores are refused."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    cfg = HookedTransformerConfig(
        d_model=16,
        n_layers=1,
        n_heads=2,
        d_head=8,
        n_ctx=16,
        d_vocab=50,
        attn_only=True,
        normalization_type="LN",
        act_fn=None,
        seed=0,
        positional_embedding_type="rotary",
        rotary_dim=4,
        rotary_adjacent_pairs=True,
        original_architecture="GPTNeoXForCausalLM",
    )
    model = HookedTransformer(cfg, move_to_device=False)
    with pytest.raises(st.UnsupportedModelError, match="adjacent pairs"):
        attention_scores(model, [0, 3, 5], 0, 0, -1, 0)
