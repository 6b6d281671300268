"""Every family of symtrans.adapter.families (issue 12): each split exact against Hugging
Face's own forward pass in float64 (LayerNorm families ≤ 1e-12 absolute; families whose norms
Hugging Face computes in float32 ≤ 1e-6 relative), loaded through ``st.load_model`` (which
probes the original model before TransformerLens wraps it); every configuration a family
cannot compute exactly refused at load with one ``UnsupportedModelError`` naming it; the
load-time probe and the run-time self-checks catch a wrapper that computes something else.

The reference is Hugging Face's model loaded apart from TransformerLens, under each attention
implementation it offers (eager runs the softmax in float32 for some families, sdpa stays in
float64; the bridge follows one or the other): the closer one is the model's own number.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans.adapter import as_adapter
from symtrans.adapter.families import FAMILIES

from . import families as fm
from . import reference_patching as ref

DIRECTIONS = {"answer": (" Ireland", None), "answer-vs": (" Ireland", " France")}
SUPPORTED = [pytest.param(v, id=v.name) for v in fm.SUPPORTED]
REFUSED = [pytest.param(v, id=v.name) for v in fm.REFUSED]


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {v.name: fm.build(root / v.name, v) for v in (*fm.VARIANTS, fm.UNLISTED)}


@pytest.fixture(scope="session")
def family_model(family_dirs: dict[str, Path]) -> Any:
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = st.load_model(str(family_dirs[name]), dtype=torch.float64)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def family_hf(family_dirs: dict[str, Path]) -> Any:
    """``family_hf(name)``: Hugging Face's own model ``{attention implementation: module}``,
    loaded apart from TransformerLens (eager, and sdpa where the family has it), cached."""
    from transformers import AutoModelForCausalLM

    models: dict[str, dict[str, torch.nn.Module]] = {}

    def get(name: str) -> dict[str, torch.nn.Module]:
        if name not in models:
            moe = "moe" in name or "mixtral" in name
            extra = {"experts_implementation": "eager"} if moe else {}
            models[name] = {}
            for impl in ("eager", "sdpa"):
                try:
                    models[name][impl] = AutoModelForCausalLM.from_pretrained(
                        family_dirs[name], dtype=torch.float64, attn_implementation=impl, **extra
                    ).eval()
                except ValueError:  # this family has no sdpa in Hugging Face
                    continue
        return models[name]

    return get


@pytest.fixture(scope="session")
def family_reference(family_hf: Any) -> Any:
    """``reference(name, tokens)``: Hugging Face's last-position logits ``{impl: [vocab]}``,
    before any soft-cap (``capped=True``: what the model outputs)."""

    def get(name: str, tokens: tuple[int, ...], capped: bool = False) -> dict[str, torch.Tensor]:
        out = {}
        for impl, hf in family_hf(name).items():
            logits = hf(torch.tensor([list(tokens)])).logits[0, -1].to(torch.float64)
            cap = getattr(hf.config, "final_logit_softcapping", None)
            if cap and not capped:  # the cap is invertible: the linear logit it capped
                logits = cap * torch.atanh(logits / cap)
            out[impl] = logits
        return out

    return get


def _ids(model: Any, answer: str, vs: str | None) -> tuple[int, int | None]:
    tok = model.tokenizer
    a = tok.encode(answer, add_special_tokens=False)
    b = None if vs is None else tok.encode(vs, add_special_tokens=False)
    assert len(a) == 1 and (b is None or len(b) == 1)
    return a[0], None if b is None else b[0]


def tolerance(variant: fm.Variant, logit: float) -> float:
    family = next(f for f in FAMILIES if f.name == variant.family)
    return 1e-6 * max(1.0, abs(logit)) if family.norms_in_float32 else 1e-12


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("split", st.SPLITS)
@pytest.mark.parametrize("variant", SUPPORTED)
def test_every_split_matches_hugging_face(
    family_model, family_reference, variant, split, direction
):
    model = family_model(variant.name)
    answer, vs = DIRECTIONS[direction]
    try:
        d = st.decompose(model, fm.PROMPT, answer=answer, vs=vs, split=split)
    except st.UnsupportedModelError as exc:  # only a split the family documents as missing
        assert split not in model_splits(model) and "not available" in str(exc), exc
        return
    d.verify()
    a, b = _ids(model, answer, vs)
    errors = []
    for logits in family_reference(variant.name, d.tokens).values():
        reference = float(logits[a] - (logits[b] if b is not None else 0.0))
        errors.append(abs(d.total - reference))
    assert min(errors) <= tolerance(variant, d.total), (variant.name, split, errors)
    if d.softcap is not None and vs is None:  # what the model outputs: the capped sum
        capped = family_reference(variant.name, d.tokens, capped=True)
        best = min(abs(d.capped_total - float(logits[a])) for logits in capped.values())
        assert best <= tolerance(variant, d.total), best


def model_splits(model: Any) -> tuple[str, ...]:
    from symtrans.adapter import resolve

    return resolve(model).spec.splits


def test_every_family_has_every_split(family_model):
    """Every listed family has every split, mixtures of experts included."""
    for variant in fm.SUPPORTED:
        missing = set(st.SPLITS) - set(model_splits(family_model(variant.name)))
        assert not missing, (variant.name, missing)


@pytest.mark.parametrize("variant", REFUSED)
def test_refused_configurations_say_why(family_dirs, variant):
    with pytest.raises(
        st.UnsupportedModelError, match="TransformerLens|stream|Hugging Face"
    ) as exc:
        st.load_model(str(family_dirs[variant.name]), dtype=torch.float64)
    assert variant.refused in str(exc.value) and "\n" not in str(exc.value)


def test_every_family_has_a_model_here():
    tested = {v.family for v in fm.VARIANTS}
    assert {f.name for f in FAMILIES} <= tested


def test_an_unlisted_architecture_gets_the_layers_split(family_dirs, family_reference):
    """Starcoder2 boots in TransformerLens but is not in symtrans's table: the layers split,
    from the residual stream before and after each block, is exact; the others are refused."""
    model = st.load_model(str(family_dirs["starcoder2"]), dtype=torch.float64)
    d = st.decompose(model, fm.PROMPT, answer=" Ireland", split="layers").verify()
    a, _ = _ids(model, " Ireland", None)
    best = min(
        abs(d.total - float(x[a])) for x in family_reference("starcoder2", d.tokens).values()
    )
    assert best <= 1e-12
    with pytest.raises(st.UnsupportedModelError, match="not available.*'layers'"):
        st.decompose(model, fm.PROMPT, answer=" Ireland", split="heads")


# -- the wrapper is checked against the model ------------------------------------------------


def test_the_probe_refuses_a_wrapper_that_computes_another_model(family_dirs, monkeypatch):
    """GPT-2 with scale_attn_weights=False, its family refusal switched off: the load-time
    probe against Hugging Face's own forward catches the bridge's different scores and names
    the configuration entry."""
    from symtrans.adapter import loading

    monkeypatch.setattr("symtrans.adapter.families.refuse_configuration", lambda *a: None)
    with pytest.raises(
        st.UnsupportedModelError, match=r"differ from Hugging Face.*scale_attn_weights=False"
    ):
        loading.load_model(str(family_dirs["gpt2-unscaled"]), dtype=torch.float64)


def test_the_self_check_catches_a_hook_that_means_something_else(family_model):
    """Gemma 2 writes its attention through a norm: an adapter that forgot it would split the
    heads of a vector that is not what the block adds. The run-time check refuses it."""
    from dataclasses import replace

    from symtrans.adapter import resolve
    from symtrans.adapter.protocol import Writers

    adapter = resolve(family_model("gemma2"))  # a fresh adapter of its own
    wrong = replace(adapter.spec, writers=tuple(Writers() for _ in adapter.spec.writers))
    object.__setattr__(adapter, "_spec", wrong)
    with pytest.raises(st.UnsupportedModelError, match="does not mean what"):
        st.decompose(adapter, fm.PROMPT, answer=" Ireland", split="heads")
    st.decompose(adapter, fm.PROMPT, answer=" Ireland", split="layers").verify()  # still exact


# -- the analyses, family by family -----------------------------------------------------------


def _final_norm(hf: torch.nn.Module) -> torch.nn.Module:
    """The final norm of a Hugging Face causal LM, found by the names the families use."""
    base = hf.base_model
    for name in ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f"):
        module = getattr(base, name, None) or getattr(getattr(base, "decoder", None), name, None)
        if module is not None:
            return module
    raise LookupError(type(hf).__name__)


def _logit_factor(hf: torch.nn.Module) -> float:
    if hasattr(hf, "logit_scale"):  # Cohere
        return float(hf.logit_scale)
    return 1.0 / float(getattr(hf.config, "logits_scaling", 1.0) or 1.0)  # Granite


@pytest.mark.parametrize("variant", SUPPORTED)
def test_logit_lens_matches_hugging_faces_hidden_states(family_model, family_hf, variant):
    """Entry l of the lens is Hugging Face's own residual before block l (its hidden state),
    through its own final norm and unembedding (logit scale included, before any cap)."""
    model = family_model(variant.name)
    ll = st.logit_lens(model, fm.PROMPT, " Ireland", vs=" France").verify()
    a, b = _ids(model, " Ireland", " France")
    best = None
    for hf in family_hf(variant.name).values():
        tokens = torch.tensor([list(model.to_tokens(fm.PROMPT)[0].tolist())])
        hidden = hf(tokens, output_hidden_states=True).hidden_states
        head = hf.get_output_embeddings()
        values = []
        for h in hidden[: len(ll.values) - 1]:
            logits = _logit_factor(hf) * head(_final_norm(hf)(h))[0, -1]
            values.append(float(logits[a] - logits[b]))
        error = max(abs(x - float(y)) for x, y in zip(values, ll.values[:-1], strict=True))
        best = error if best is None else min(best, error)
    assert best is not None and best <= tolerance(variant, float(abs(ll.values).max())), best


@pytest.mark.parametrize("variant", SUPPORTED)
def test_ablating_a_block_matches_hugging_face(family_model, family_hf, variant):
    """Block 0's output removed from the final norm's input, the scale recomputed: symtrans's
    ablation equals Hugging Face's own forward with that vector (its hidden states' difference)
    subtracted before its final norm."""
    model = family_model(variant.name)
    d = st.decompose(model, fm.PROMPT, answer=" Ireland", vs=" France", split="layers")
    ablated = d.ablate(["0_block_out"], renormalize=True, model=model)
    a, b = _ids(model, " Ireland", " France")
    errors = []
    for hf in family_hf(variant.name).values():
        tokens = torch.tensor([list(d.tokens)])
        hidden = hf(tokens, output_hidden_states=True).hidden_states
        removed = hidden[1] - hidden[0]

        def remove(module: Any, args: tuple[Any, ...], removed: torch.Tensor = removed) -> Any:
            return (args[0] - removed,)

        handle = _final_norm(hf).register_forward_pre_hook(remove)
        try:
            logits = hf(tokens).logits[0, -1].to(torch.float64)
        finally:
            handle.remove()
        cap = getattr(hf.config, "final_logit_softcapping", None)
        if cap:
            logits = cap * torch.atanh(logits / cap)
        errors.append(abs(ablated - float(logits[a] - logits[b])))
    assert min(errors) <= tolerance(variant, d.total), errors


ANALYSES = ("paths", "scores", "effective", "projection", "ablation")
# What each family refuses, and why (a piece of the message): everything else must verify.
REFUSALS: dict[tuple[str, str], str] = {
    **{(v, "scores"): "masks that key" for v in ("mistral", "qwen2", "phi3")},
    **{
        (v, "scores"): "own norms"
        for v in ("qwen3", "qwen3-moe", "gemma3", "olmo2", "stablelm", "cohere")
    },
    **{(v, "scores"): "softmaxed pattern" for v in ("opt", "gpt-neo")},
    ("gptj", "scores"): "softmaxed pattern",
    ("bloom", "scores"): "ALiBi",
    ("mpt", "scores"): "ALiBi",
    ("olmo", "scores"): "clip_qkv",
    ("olmo", "paths"): "clip_qkv",
    ("mpt", "paths"): "clip_qkv",
}


@pytest.mark.parametrize("analysis", ANALYSES)
@pytest.mark.parametrize("variant", SUPPORTED)
def test_every_analysis_verifies_or_says_why(family_model, variant, analysis):
    """Each analysis's numbers add up to what the model computed (its own claims, checked by
    verify()), or it is refused with the reason listed in REFUSALS — and only then."""
    model = family_model(variant.name)
    d = st.decompose(model, fm.PROMPT, answer=" Ireland", vs=" France", split="heads")
    last = d.model.n_layers - 1
    run = {
        "paths": lambda: d.expand_head(model, f"L{last}H1", depth=2),
        "scores": lambda: st.attention_scores(model, fm.PROMPT, last, 1, -1, 3),
        "effective": lambda: d.effective_embedding(model),
        "projection": lambda: d.project(model, f"L{last}H1"),
        "ablation": lambda: d.ablate([f"L{last}H1", "0_attn_bias"], renormalize=True, model=model),
    }[analysis]
    expected = REFUSALS.get((variant.name, analysis))
    if expected is None:
        result = run()
        if hasattr(result, "verify"):
            result.verify()
        else:  # ablation: the recomputed scale against the terms left, frozen
            assert abs(result) < 1e6
    else:
        with pytest.raises((st.UnsupportedModelError, st.InvalidArgumentError), match=expected):
            run()


def test_a_passed_in_bridge_is_checked_against_the_original(family_dirs, monkeypatch):
    """The issue's case: GPT-2 with scale_attn_weights=False booted by the user. With the
    family's refusal switched off, the terms add up to the bridge's logit (d.verify() passes:
    the bridge is self-consistent), but d.verify(reference="hf") compares with Hugging Face's
    own forward pass of the same checkpoint and fails."""
    from transformer_lens.model_bridge import TransformerBridge

    monkeypatch.setattr("symtrans.adapter.bridge.refuse_configuration", lambda *a: None)
    bridge = TransformerBridge.boot_transformers(
        str(family_dirs["gpt2-unscaled"]), dtype=torch.float64
    )
    d = st.decompose(bridge, fm.PROMPT, answer=" Ireland", split="heads")
    d.verify()
    with pytest.raises(st.IdentityError, match="Hugging Face's own forward pass"):
        d.verify(reference="hf")


def test_reference_check_passes_for_a_faithful_bridge(family_dirs):
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(str(family_dirs["gemma2"]), dtype=torch.float64)
    d = st.decompose(bridge, fm.PROMPT, answer=" Ireland", vs=" France", split="neurons")
    assert d.model.probe_error is None  # not loaded by symtrans: only the explicit check
    d.verify(reference="hf")
    with pytest.raises(st.InvalidArgumentError, match="reference='hf'"):
        d.verify(reference="tl")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_low_precision_tolerance_catches_a_term_the_size_of_the_rounding(dtype):
    """In every dtype the tolerance comes from the rounding the model performs (a
    random-walk error model over what it stored), not from Σ|parts|: it holds for the model's
    own rounding, is several times tighter than Σ|parts| would give, and dropping any term
    larger than it (plus the actual difference) fails the check."""
    from dataclasses import replace

    import numpy as np

    from symtrans.verify import default_tolerance

    model = st.load_model("tiny-capitals", dtype=dtype)
    d = st.decompose(model, "Dublin is the capital city of", " Ireland", split="neurons").verify()
    claim = d.claims()[0]
    loose = default_tolerance(claim.dtype, claim.norm, claim.magnitude)
    assert d.tolerance < loose / 2.5, (d.tolerance, loose)
    slack = d.tolerance + abs(d.total - d.model_logit)
    caught = 0
    for i in np.flatnonzero(np.abs(d.values) > slack):
        dropped = replace(d, values=np.delete(d.values, i), labels=d.labels[:i] + d.labels[i + 1 :])
        with pytest.raises(st.IdentityError):
            dropped.verify()
        caught += 1
    assert caught >= 5


# -- activation patching, family by family ----------------------------------------------------

PATCH_CLEAN = ["Dublin is the capital city of", "Paris is the capital city of"]
PATCH_CORRUPTED = ["Paris is the capital city of", "Dublin is the capital city of"]


@pytest.mark.parametrize("site", ["resid_pre", "attn_out", "mlp_out", "z"])
@pytest.mark.parametrize("variant", SUPPORTED)
def test_patching_matches_hugging_faces_own_patching(family_model, family_hf, variant, site):
    """Every cell of ``st.patch`` against the same patch written with torch hooks on Hugging
    Face's own modules (tests/reference_patching.py), each attention implementation the family
    has, the closer one taken: whether or not the fast path starts the pass at a block."""
    model = family_model(variant.name)
    adapter = as_adapter(model)
    p = st.patch(
        model,
        PATCH_CLEAN,
        PATCH_CORRUPTED,
        [" Ireland", " France"],
        [" France", " Ireland"],
        site=site,
        explain=0,
    ).verify()
    clean = torch.tensor([adapter.tokenize(x) for x in PATCH_CLEAN])
    corrupted = torch.tensor([adapter.tokenize(x) for x in PATCH_CORRUPTED])
    answer = torch.tensor([adapter.single_token(a, "answer") for a in (" Ireland", " France")])
    vs = answer.flip(0)
    errors = []
    for hf in family_hf(variant.name).values():
        base = ref.metric(hf, corrupted, answer, vs)
        effects = np.array(
            [
                [
                    ref.patched_metric(hf, clean, corrupted, answer, vs, site, layer, i) - base
                    for i in p.columns
                ]
                for layer in range(p.effects.shape[0])
            ]
        )
        assert np.abs(effects).max() > 1e-4  # the patches move the metric
        errors.append(
            max(
                abs(p.clean_metric - ref.metric(hf, clean, answer, vs)),
                abs(p.corrupted_metric - base),
                float(np.abs(p.effects - effects).max()),
            )
        )
    size = max(abs(p.clean_metric), abs(p.corrupted_metric))
    assert min(errors) <= tolerance(variant, size), errors
    # The largest cell, written as the patched term + every later term + the scale's change.
    layer, index, _, effect = p.top(1)[0]
    e = p.explain(layer, index, model, split="heads").verify()
    assert abs(e.total - effect) <= tolerance(variant, size)


@pytest.mark.parametrize(
    "variant", [v for v in SUPPORTED if (v.values[0].name, "scores") not in REFUSALS]
)
def test_scores_give_hugging_faces_attention_pattern(family_model, family_hf, variant):
    """The score decomposition of the last layer's head 1 from the last query to every key,
    each score the sum of its pieces (through the soft-cap where the model caps), softmaxed
    over the keys: Hugging Face's own attention weights (eager, ``output_attentions``)."""
    model = family_model(variant.name)
    prompt = "Dublin is the capital city of"
    tokens = model.to_tokens(prompt)
    n = tokens.shape[1]
    last = model.cfg.n_layers - 1
    scores = [
        st.attention_scores(model, prompt, last, 1, -1, key).verify().capped_total
        for key in range(n)
    ]
    ours = torch.softmax(torch.tensor(scores, dtype=torch.float64), dim=0)
    hf = family_hf(variant.name)["eager"]
    pattern = hf(tokens, output_attentions=True).attentions[last][0, 1, -1].to(torch.float64)
    error = float((ours - pattern).abs().max())
    assert error <= 1e-6, error


@pytest.mark.parametrize("variant", SUPPORTED)
def test_effective_embedding_is_hugging_faces_block_zero(family_model, family_hf, variant):
    """``W_EE`` rows: Hugging Face's own residual after block 0 for each token alone at
    position 0, learned position embeddings zeroed (every family's embedding scale, post-norms,
    multipliers and embedding norm as the model computes them)."""
    model = family_model(variant.name)
    ids = torch.tensor([5, 17, 40, 99])
    ours = st.effective_embedding(model, ids.tolist(), attention=True)
    hf = copy.deepcopy(family_hf(variant.name)["eager"])
    for name, module in hf.named_modules():
        if name.endswith(("wpe", "embed_positions")):
            module.weight.data.zero_()
    ref = hf(ids[:, None], output_hidden_states=True).hidden_states[1][:, 0].to(torch.float64)
    assert float((ours - ref).abs().max()) <= tolerance(variant, float(ref.abs().max()))
    assert float((ours - hf.get_input_embeddings().weight[ids]).abs().max()) > 1e-3
