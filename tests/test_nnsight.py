"""nnsight models (issue 15): every split of every family exact against Hugging Face's own
forward (loaded separately), the remote path's read-out projections (nnsight's own local
simulation of a remote request: serialized, symtrans hidden, deserialized, run) equal to what
a local trace saves, and the size of what comes back."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import symtrans as st
from symtrans.adapter import as_adapter
from symtrans.adapter.protocol import Hook, HookKey
from symtrans.trace.splits import required_hooks, term_labels

from . import arch_models as am
from . import reference

nnsight = pytest.importorskip("nnsight", reason="the symtrans[nnsight] extra is not installed")

PROMPTS = ["Dublin is the capital city of", "Paris is the capital city of"]
ANSWER, VS = " Ireland", " France"
SPLITS = ("layers", "components", "heads", "neurons", "positions")


def _tolerance(arch: str, reference_value: float) -> float:
    """LayerNorm models: float64 rounding. RMSNorm (Llama): Hugging Face computes the
    variance in float32 even for a float64 model, so relative 1e-6."""
    return 1e-6 * max(1.0, abs(reference_value)) if arch in am.RMS_ARCHITECTURES else 1e-12


@pytest.fixture(scope="module")
def language_model(arch_dirs: dict[str, Path]) -> Any:
    """``language_model(arch, attn)``: a cached nnsight LanguageModel in float64."""
    from nnsight import LanguageModel

    cache: dict[tuple[str, str], Any] = {}

    def get(arch: str, attn: str = "sdpa") -> Any:
        if (arch, attn) not in cache:
            cache[(arch, attn)] = LanguageModel(
                str(arch_dirs[arch]), dispatch=True, dtype=torch.float64, attn_implementation=attn
            )
        return cache[(arch, attn)]

    return get


@pytest.fixture(scope="module")
def eager_hf(arch_dirs: dict[str, Path]) -> Any:
    """Hugging Face with eager attention (what split='positions' needs nnsight to load)."""
    from transformers import AutoModelForCausalLM

    cache: dict[str, torch.nn.Module] = {}

    def get(arch: str) -> torch.nn.Module:
        if arch not in cache:
            cache[arch] = AutoModelForCausalLM.from_pretrained(
                arch_dirs[arch], dtype=torch.float64, attn_implementation="eager"
            ).eval()
        return cache[arch]

    return get


def _ids(lm: Any) -> tuple[int, int]:
    enc = lm.tokenizer.encode
    return enc(ANSWER, add_special_tokens=False)[0], enc(VS, add_special_tokens=False)[0]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("arch", am.HF_ARCHITECTURES)
def test_every_split_is_exact_against_hugging_face(
    arch: str, split: str, language_model: Any, arch_hf: Any, eager_hf: Any
) -> None:
    attn = "eager" if split == "positions" else "sdpa"
    lm = language_model(arch, attn)
    hf = eager_hf(arch) if attn == "eager" else arch_hf(arch, torch.float64)
    b = st.decompose(lm, PROMPTS, answer=ANSWER, vs=VS, split=split).verify()
    a, v = _ids(lm)
    for d in b:
        ref = reference.logit(hf, list(d.tokens), d.position, a, v)
        assert abs(d.model_logit - ref) <= _tolerance(arch, ref), (d.model_logit, ref)
        assert abs(d.total - ref) <= _tolerance(arch, ref), (d.total, ref)
    if split == "layers":  # each term against the residual Hugging Face's own modules give
        d = b[0]
        parts, constant, _ = reference.layer_contributions(hf, list(d.tokens), d.position, a, v)
        ours = list(d.values)
        if arch == "gpt2":  # embed and pos_embed together are Hugging Face's first residual
            ours = [ours[0] + ours[1], *ours[2:]]
        np.testing.assert_allclose(ours, parts, atol=_tolerance(arch, 1.0), rtol=0)
        assert d.constant == pytest.approx(constant, abs=1e-12)


def test_dropping_a_term_breaks_the_check(language_model: Any) -> None:
    """The comparison above can fail: without its largest head the sum misses the logit."""
    d = st.decompose(language_model("gpt2"), PROMPTS[0], answer=ANSWER, vs=VS, split="heads")
    i = int(np.argmax(np.abs(d.values)))
    assert abs((d.total - d.values[i]) - d.model_logit) > 1e3 * d.tolerance


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_other_analyses_take_an_nnsight_model(arch: str, language_model: Any, arch_hf: Any) -> None:
    lm = language_model(arch, "eager")
    a, v = _ids(lm)
    lens = st.logit_lens(lm, PROMPTS[0], ANSWER, vs=VS).verify()
    ref = reference.logit(
        arch_hf(arch, torch.float64), lm.tokenizer(PROMPTS[0])["input_ids"], -1, a, v
    )
    assert lens.values[-1] == pytest.approx(ref, abs=_tolerance(arch, ref))
    d = st.decompose(lm, PROMPTS[0], ANSWER, vs=VS, split="heads")
    assert d.effective_embedding(lm).verify().total == pytest.approx(d.total, abs=1e-12)
    st.project(lm, d, "L1H0").verify()
    ds = st.decompose_dataset(lm, PROMPTS * 3, ANSWER, vs=VS, split="neurons", progress=False)
    assert ds.count == 6 and ds.max_error <= _tolerance(arch, 1.0)
    i = [str(label) for label in d.labels].index("L1H0")
    assert d.ablate(["L1H0"]) == pytest.approx(d.total - d.values[i], abs=1e-12)
    assert np.isfinite(d.ablate(["L1H0"], renormalize=True, model=lm))
    with pytest.raises(st.UnsupportedModelError, match="attention weights"):
        d.expand_head(lm, "L1H0")


def test_the_pattern_needs_eager_attention(language_model: Any) -> None:
    with pytest.raises(st.UnsupportedModelError, match="attn_implementation='eager'"):
        st.decompose(language_model("gpt2", "sdpa"), PROMPTS[0], ANSWER, split="positions")


# -- remote: the read-out projections computed inside the trace ---------------------------


def _returned(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record what the outermost trace hands back to the caller's frame: the values a
    remote request returns (its saved variables)."""
    import nnsight.tracing.tracer as tracer

    seen: list[dict[str, Any]] = []
    push = tracer.push

    def record(frame: Any, variables: dict[str, Any]) -> None:
        seen.append(dict(variables))
        push(frame, variables)

    monkeypatch.setattr(tracer, "push", record)
    return seen


def _nbytes(value: Any) -> int:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getbuffer().nbytes


@pytest.mark.parametrize("split", ["heads", "neurons"])
@pytest.mark.parametrize("arch", am.HF_ARCHITECTURES)
def test_remote_returns_exactly_what_a_local_trace_saves(
    arch: str, split: str, language_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lm = language_model(arch)
    local, remote = as_adapter(lm), as_adapter(lm, remote="local")
    ids = torch.tensor([local.tokenize(p) for p in PROMPTS])
    positions = torch.full((len(PROMPTS),), ids.shape[1] - 1)
    a, v = _ids(lm)
    answer, vs = torch.tensor([a, a]), torch.tensor([v, v])
    keys = required_hooks(local.spec, split)  # type: ignore[arg-type]

    returned = _returned(monkeypatch)
    here = local.readout(ids, positions, keys, answer, vs)
    there = remote.readout(ids, positions, keys, answer, vs)
    for field in ("scale", "model_logits", "beta_term", "unembed_bias"):
        assert torch.equal(getattr(here, field), getattr(there, field)), field
    assert here.projections.keys() == there.projections.keys()
    for key in here.projections:
        assert torch.equal(here.projections[key], there.projections[key]), key
    for key in here.biases:
        assert torch.equal(here.biases[key], there.biases[key]), key

    # What came back from the simulated remote request: one dict of [batch, k] numbers, as
    # many as the split has terms, plus σ, the logit, <β, u> and b_U per prompt; never a
    # [batch, seq, d_model] activation.
    back = returned[-1]
    assert set(back) == {"out"}
    n_terms = len(term_labels(local.spec, split, int(positions[0])))  # type: ignore[arg-type]
    numbers = sum(t.numel() for t in back["out"].values())
    assert numbers == len(PROMPTS) * (n_terms + 4)
    assert all(t.shape[0] == len(PROMPTS) and t.ndim <= 2 for t in back["out"].values())
    # The activations the local path moves instead: one [batch, d_model] (or [batch, d_mlp])
    # row per hook, and a [batch, seq, d_model] residual per block if nothing were projected.
    # torch.save's own framing is a few hundred bytes per tensor.
    assert _nbytes(back) < 8 * numbers + 512 * (len(back["out"]) + 1)

    # ...and st.decompose(remote=...) gives the host path's numbers.
    b = st.decompose(lm, PROMPTS, ANSWER, vs=VS, split=split, remote="local").verify()
    h = st.decompose(lm, PROMPTS, ANSWER, vs=VS, split=split)
    np.testing.assert_allclose(b.values, h.values, atol=1e-14, rtol=0)
    np.testing.assert_allclose(b.model_logits, h.model_logits, atol=0, rtol=0)


def test_remote_positions_returns_the_pattern_and_projected_values(language_model: Any) -> None:
    lm = language_model("neox", "eager")
    r = st.decompose(lm, PROMPTS, ANSWER, vs=VS, split="positions", remote="local").verify()
    h = st.decompose(lm, PROMPTS, ANSWER, vs=VS, split="positions")
    np.testing.assert_allclose(r.values, h.values, atol=1e-14, rtol=0)


def test_remote_needs_an_nnsight_model(bridge: Any) -> None:
    with pytest.raises(st.InvalidArgumentError, match="needs an nnsight LanguageModel"):
        st.decompose(bridge("tiny-capitals"), PROMPTS[0], ANSWER, remote=True)
    with pytest.raises(st.InvalidArgumentError, match="remote must be"):
        st.decompose(bridge("tiny-capitals"), PROMPTS[0], ANSWER, remote="ndif")  # type: ignore[arg-type]


def test_a_remote_model_reads_no_weights_here(arch_dirs: dict[str, Path]) -> None:
    """``LanguageModel(repo)`` without ``dispatch`` has its weights on the meta device, as
    for a model that lives on NDIF: the adapter needs only shapes, and refuses the analyses
    that would need weights or activations here."""
    from nnsight import LanguageModel
    from transformers import AutoTokenizer

    folder = str(arch_dirs["gpt2"])
    lm = LanguageModel(folder, tokenizer=AutoTokenizer.from_pretrained(folder), dtype=torch.float64)
    assert lm._module.lm_head.weight.device.type == "meta"
    adapter = as_adapter(lm, remote=True)
    assert adapter.spec.d_mlp == 128 and adapter.spec.norm.gamma is not None
    assert adapter.tokenize(PROMPTS[0]) == lm.tokenizer(PROMPTS[0])["input_ids"]
    with pytest.raises(st.UnsupportedModelError, match="on the NDIF server"):
        adapter.W_O(0)
    with pytest.raises(st.UnsupportedModelError, match="on the NDIF server"):
        st.logit_lens(adapter, PROMPTS[0], ANSWER)


def test_unsupported_family_is_refused(tmp_path: Path) -> None:
    from nnsight import LanguageModel

    from .families import BY_NAME, build

    folder = build(tmp_path / "bloom", BY_NAME["bloom"])  # a family the bridge supports
    with pytest.raises(st.UnsupportedModelError, match="BloomForCausalLM"):
        st.decompose(LanguageModel(str(folder), dispatch=True), PROMPTS[0], ANSWER)


def test_without_nnsight_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from symtrans.adapter.nnsight import require_nnsight

    monkeypatch.setitem(sys.modules, "nnsight", None)  # import nnsight -> ImportError
    with pytest.raises(st.InvalidArgumentError, match=r"symtrans\[nnsight\]"):
        require_nnsight()
    with pytest.raises(st.InvalidArgumentError, match=r"symtrans\[nnsight\]"):
        st.load_model("tiny-capitals", library="nnsight")


def test_pattern_hook_is_read_at_the_destination(language_model: Any) -> None:
    adapter = as_adapter(language_model("gpt2", "eager"))
    ids = torch.tensor([adapter.tokenize(PROMPTS[0])])
    run = adapter.run(ids, torch.tensor([3]), frozenset({HookKey(Hook.PATTERN, 1)}))
    pattern = run.activations[HookKey(Hook.PATTERN, 1)][0]  # [heads, k]
    assert torch.allclose(pattern.sum(-1), torch.ones(4, dtype=torch.float64))
    assert bool((pattern[:, 4:] == 0).all())  # causal: nothing after the destination


# The other families whose block the nnsight adapter reads (tests/families.py's random models):
# each split against Hugging Face's own forward, and the remote read-out against a local trace.
NNSIGHT_FAMILIES = (
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "stablelm",
    "stablelm-parallel",
    "gpt-neo",
)


@pytest.fixture(scope="module")
def family_lm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``family_lm(name, attn)``: (nnsight LanguageModel, Hugging Face model) in float64."""
    from nnsight import LanguageModel
    from transformers import AutoModelForCausalLM

    from .families import BY_NAME, build

    root = tmp_path_factory.mktemp("nnsight-families")
    cache: dict[tuple[str, str], Any] = {}

    def get(name: str, attn: str) -> Any:
        if (name, attn) not in cache:
            folder = root / name
            if not folder.exists():
                build(folder, BY_NAME[name])
            lm = LanguageModel(
                str(folder), dispatch=True, dtype=torch.float64, attn_implementation=attn
            )
            hf = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch.float64, attn_implementation=attn
            ).eval()
            cache[(name, attn)] = (lm, hf)
        return cache[(name, attn)]

    return get


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("name", NNSIGHT_FAMILIES)
def test_every_split_of_the_other_families(name: str, split: str, family_lm: Any) -> None:
    """The model runs as Hugging Face's own module under nnsight, so its logit is Hugging
    Face's exactly; the terms add up to it (every norm here is Hugging Face's own, so the
    sum is exact to float64 rounding whatever it computes in float32)."""
    eager = split == "positions" or name == "gpt-neo"  # GPT-Neo has no sdpa attention
    lm, hf = family_lm(name, "eager" if eager else "sdpa")
    b = st.decompose(lm, PROMPTS, answer=ANSWER, vs=VS, split=split).verify()
    a, v = _ids(lm)
    for d in b:
        ref = reference.logit(hf, list(d.tokens), d.position, a, v)
        assert d.model_logit == pytest.approx(ref, abs=1e-12)
        assert abs(d.total - ref) <= 1e-6 * max(1.0, abs(ref)), (d.total, ref)


@pytest.mark.parametrize("name", NNSIGHT_FAMILIES)
def test_remote_read_out_of_the_other_families(name: str, family_lm: Any) -> None:
    lm, _ = family_lm(name, "eager")
    for split in ("heads", "neurons", "positions"):
        local = st.decompose(lm, PROMPTS, answer=ANSWER, vs=VS, split=split)
        remote = st.decompose(lm, PROMPTS, ANSWER, vs=VS, split=split, remote="local")
        for x, y in zip(local, remote, strict=True):
            np.testing.assert_allclose(x.values, y.values, rtol=0, atol=1e-12)
