"""HookedTransformer (TransformerLens 3.9) on every family of tests/families.py (issue 12,
item 4): each random model either decomposes exactly — every split, answer and answer − vs,
with no weight processing and with each of TransformerLens's four options — against Hugging
Face's own forward pass, or is refused with one ``UnsupportedModelError`` saying why, or
TransformerLens 3.9 cannot build its HookedTransformer from a local folder at all (asserted
with TransformerLens's own error, so the day it can, this test says so).

How a folder becomes a HookedTransformer: ``get_pretrained_model_config(folder)`` +
``get_pretrained_state_dict(folder, hf_model=...)`` + ``load_and_process_state_dict`` (as
``tests/arch_models.load_hooked``). Where tests/families.py's model has a size TransformerLens
3.9's conversion cannot read (an MLP width other than 4·d_model for GPT-2, GPT-Neo and GPT-J,
Llama's head_dim), or a configuration symtrans refuses, a second model of the family here
(``HOOKED_VARIANTS``) has the sizes it reads, so the family is still checked.

The reference is Hugging Face's model loaded apart from TransformerLens, eager and sdpa where
it has both, the closer one taken. Tolerances, unprocessed models:

- ≤ 1e-12 absolute where Hugging Face's forward is float64 throughout (GPT-2, OPT);
- ≤ 1e-6 relative where Hugging Face computes part of a float64 model in float32 and
  HookedTransformer does not (``FLOAT32_IN_HF`` says what, per model): RMSNorm variances,
  rotary angles, GPT-Neo's and GPT-J's query·key products, BLOOM's softmax and ALiBi slopes.
  The differences are Hugging Face's own rounding (measured 1e-11 – 1e-7).

Weight processing runs in float32 inside TransformerLens 3.9 (``ProcessWeights`` casts float64
weights to float32 and back), so a processed model is a rounded copy of the original: within
``TL_PROCESSING_RTOL`` of Hugging Face, while symtrans's terms still add up to the processed
model's own logit to ~1e-15 (``d.verify()``, every row).

``python -m tests.test_hooked_families`` prints the table of worst errors per model and option.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch

import symtrans as st

from . import arch_models as am

if not am.hooked_available():
    _version = importlib.metadata.version("transformer_lens")
    if os.environ.get("SYMTRANS_REQUIRE_HOOKED"):
        raise ImportError(f"HookedTransformer is not importable from TransformerLens {_version}")
    pytest.skip(
        f"HookedTransformer is not in TransformerLens {_version} (removed in 4.0); "
        "`make test-tl3` runs these tests under TransformerLens 3.9",
        allow_module_level=True,
    )

from symtrans.adapter import as_adapter  # noqa: E402
from symtrans.adapter.hooked import HOOKED_REFUSALS  # noqa: E402

from . import families as fm  # noqa: E402
from .test_architectures import TL_PROCESSING_RTOL  # noqa: E402

_GPT2 = dict(n_layer=2, n_head=4, n_embd=32, n_positions=64, layer_norm_epsilon=1e-2)
_4X = "TransformerLens 3.9's conversion assumes an MLP of 4·d_model"

# Models of a family with the sizes TransformerLens 3.9's conversion reads (see module doc).
HOOKED_VARIANTS: tuple[fm.Variant, ...] = (
    fm.Variant(
        "gpt2-hooked",
        "gpt2",
        "GPT2LMHeadModel",
        "GPT2Config",
        dict(_GPT2, scale_attn_by_inverse_layer_idx=True, tie_word_embeddings=False),
        note=_4X,
    ),
    fm.Variant(
        "gpt2-unscaled-hooked",
        "gpt2",
        "GPT2LMHeadModel",
        "GPT2Config",
        dict(_GPT2, scale_attn_weights=False),
        note="HookedTransformer reads scale_attn_weights (TransformerBridge 4.3 does not)",
    ),
    fm.Variant(
        "llama-hooked",
        "llama",
        "LlamaForCausalLM",
        "LlamaConfig",
        dict(fm._LLAMA),
        note="TransformerLens 3.9 sets d_head = d_model / n_heads whatever head_dim says",
    ),
    fm.Variant(
        "llama-biases",
        "llama",
        "LlamaForCausalLM",
        "LlamaConfig",
        dict(fm._LLAMA, attention_bias=True, mlp_bias=True),
    ),
    fm.Variant("qwen2-hooked", "qwen2", "Qwen2ForCausalLM", "Qwen2Config", dict(fm._LLAMA)),
    fm.Variant(
        "qwen3-hooked", "qwen3", "Qwen3ForCausalLM", "Qwen3Config", dict(fm._LLAMA, head_dim=8)
    ),
    fm.Variant(
        "phi3-hooked",
        "phi3",
        "Phi3ForCausalLM",
        "Phi3Config",
        dict(fm._LLAMA, sliding_window=4),
    ),
    fm.Variant(
        "gpt-neo-hooked",
        "gpt_neo",
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        dict(
            hidden_size=32,
            num_layers=2,
            num_heads=4,
            max_position_embeddings=64,
            layer_norm_epsilon=1e-2,
            attention_types=[[["global", "local"], 1]],
            window_size=4,
        ),
        note=_4X,
    ),
    fm.Variant(
        "gptj-hooked",
        "gptj",
        "GPTJForCausalLM",
        "GPTJConfig",
        dict(n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64, layer_norm_epsilon=1e-5),
        note=_4X + "; and ε = 1e-5, the one it writes",
    ),
    fm.Variant(
        "gptj-eps",
        "gptj",
        "GPTJForCausalLM",
        "GPTJConfig",
        dict(n_embd=32, n_layer=2, n_head=4, rotary_dim=4, n_positions=64, layer_norm_epsilon=1e-2),
    ),
)
ALL = {v.name: v for v in (*fm.VARIANTS, fm.UNLISTED, *HOOKED_VARIANTS)}

_RMS = "Hugging Face's RMSNorm computes its variance in float32"
# Supported: the model -> what Hugging Face computes in float32 ("": nothing; ≤ 1e-12).
SUPPORTED: dict[str, str] = {
    "gpt2-hooked": "",
    "gpt2-unscaled-hooked": "",
    "opt": "",
    "neox": "the rotary angles",
    "neox-sequential": "the rotary angles",
    "gpt-neo-hooked": "query·key (eager, its only attention)",
    "gptj-hooked": "the rotary sinusoids and query·key",
    "bloom": "the softmax and the ALiBi slopes (eager, its only attention)",
    "llama-hooked": _RMS,
    "mistral": _RMS,
    "qwen2-hooked": _RMS,
    "qwen3-hooked": _RMS,
    "phi3-hooked": _RMS,
}
FLOAT32_IN_HF = {name: why for name, why in SUPPORTED.items() if why}

# Refused by symtrans: the model -> a piece of the message. Each, but the mixture of experts,
# is a HookedTransformer that computes other logits than Hugging Face's (asserted below).
REFUSED: dict[str, str] = {
    "llama-biases": "attention_bias=True or mlp_bias=True",
    "qwen2": "use_sliding_window=True",
    "qwen3": "attention_bias=True",
    "phi3": "partial_rotary_factor < 1",
    "gptj-eps": "layer_norm_epsilon != 1e-5",
    "bloom-post-ln-residual": "apply_residual_connection_post_layernorm=True",
    "mixtral": "mixtures of experts",
}
# TransformerLens 3.9 cannot build the HookedTransformer from the folder: its own error.
_NOT_SUPPORTED_BY_TL = "is not currently supported"
NOT_BUILT: dict[str, str] = {
    "gpt2": "has no attribute 'n_ctx'",  # transformers 5 no longer writes n_ctx
    "gpt2-unscaled": "has no attribute 'n_ctx'",
    "neox-no-bias": "Tensor type unknown to einops",
    "llama": "size mismatch",  # head_dim 16 ≠ d_model / n_heads
    "qwen2-moe": _NOT_SUPPORTED_BY_TL,
    "qwen3-moe": _NOT_SUPPORTED_BY_TL,
    "gemma": _NOT_SUPPORTED_BY_TL,  # Gemma: official hub names only
    "gemma2": _NOT_SUPPORTED_BY_TL,
    "gemma3": _NOT_SUPPORTED_BY_TL,
    "gemma3-attn-cap": _NOT_SUPPORTED_BY_TL,
    "phi": "has no attribute 'partial_rotary_factor'",  # moved into rope_parameters
    "phi-qk-norm": "has no attribute 'partial_rotary_factor'",
    "olmo": _NOT_SUPPORTED_BY_TL,
    "olmo2": _NOT_SUPPORTED_BY_TL,
    "opt-post-norm": "has no attribute 'weight'",
    "opt-project": "size mismatch",
    "gpt-neo": "size mismatch",  # intermediate_size 64 ≠ 4·d_model
    "gptj": "size mismatch",  # n_inner 64 ≠ 4·d_model
    "codegen": _NOT_SUPPORTED_BY_TL,
    "stablelm": _NOT_SUPPORTED_BY_TL,
    "stablelm-parallel": _NOT_SUPPORTED_BY_TL,
    "falcon": _NOT_SUPPORTED_BY_TL,
    "falcon-alibi": _NOT_SUPPORTED_BY_TL,
    "falcon-new": _NOT_SUPPORTED_BY_TL,
    "falcon-new-gqa": _NOT_SUPPORTED_BY_TL,
    "mpt": _NOT_SUPPORTED_BY_TL,
    "gpt-bigcode": _NOT_SUPPORTED_BY_TL,
    "gpt-bigcode-mha": _NOT_SUPPORTED_BY_TL,
    "granite": _NOT_SUPPORTED_BY_TL,
    "cohere": _NOT_SUPPORTED_BY_TL,
    "starcoder2": _NOT_SUPPORTED_BY_TL,
}

DIRECTIONS = {"answer": (" Ireland", None), "answer-vs": (" Ireland", " France")}


def _param(names: Any) -> list[Any]:
    return [pytest.param(name, id=name) for name in names]


def _folder_name(name: str) -> str:
    # TransformerLens 3.9 takes a path containing "llama" or "gemma" for a hub name and
    # never reads its config.json.
    return name.replace("llama", "rms").replace("gemma", "gm")


def build(root: Path, name: str) -> Path:
    variant = ALL[name]
    folder = fm.build(root / _folder_name(name), variant)
    if name.endswith("-hooked") and variant.family == "gpt2":
        # TransformerLens 3.9's GPT-2 conversion reads n_ctx, which transformers 5 no
        # longer writes (tests/arch_models.build_hf does the same).
        config = json.loads((folder / "config.json").read_text())
        config["n_ctx"] = config["n_positions"]
        (folder / "config.json").write_text(json.dumps(config, indent=1))
    return folder


def load_hf(folder: Path, impl: str) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    arch = _architecture(folder)
    moe = {"experts_implementation": "eager"} if "Mixtral" in arch or "Moe" in arch else {}
    return AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float64, attn_implementation=impl, **moe
    ).eval()


def _architecture(folder: Path) -> str:
    return str(json.loads((folder / "config.json").read_text())["architectures"][0])


def load_hooked(folder: Path, option: str, hf: torch.nn.Module) -> Any:
    """The HookedTransformer of ``folder`` with ``am.FOLD_OPTIONS[option]``, the way a user
    builds one from a local folder under TransformerLens 3.9."""
    import transformer_lens.loading_from_pretrained as loading
    from transformer_lens import HookedTransformer
    from transformers import AutoTokenizer

    flags = {
        "fold_ln": False,
        "center_writing_weights": False,
        "center_unembed": False,
        "fold_value_biases": False,
        **am.FOLD_OPTIONS[option],
    }
    cfg = loading.get_pretrained_model_config(
        str(folder), dtype=torch.float64, device="cpu", fold_ln=flags["fold_ln"]
    )
    state = loading.get_pretrained_state_dict(str(folder), cfg, hf_model=hf, dtype=torch.float64)
    model = HookedTransformer(
        cfg, tokenizer=AutoTokenizer.from_pretrained(folder), move_to_device=False
    )
    model.load_and_process_state_dict(state, **flags)
    return model.eval()


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("hooked-families")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = build(root, name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def hf_models(folders: Any) -> Any:
    """``hf_models(name)``: Hugging Face's own model ``{attention implementation: module}``."""
    cache: dict[str, dict[str, torch.nn.Module]] = {}

    def get(name: str) -> dict[str, torch.nn.Module]:
        if name not in cache:
            cache[name] = {}
            for impl in ("eager", "sdpa"):
                try:
                    cache[name][impl] = load_hf(folders(name), impl)
                except ValueError:  # this family has no sdpa in Hugging Face
                    continue
        return cache[name]

    return get


@pytest.fixture(scope="module")
def hooked(folders: Any, hf_models: Any) -> Any:
    cache: dict[tuple[str, str], Any] = {}

    def get(name: str, option: str) -> Any:
        if (name, option) not in cache:
            hf = next(iter(hf_models(name).values()))
            cache[(name, option)] = load_hooked(folders(name), option, hf)
        return cache[(name, option)]

    return get


def _ids(model: Any, answer: str, vs: str | None) -> tuple[int, int | None]:
    tok = model.tokenizer
    a = tok.encode(answer, add_special_tokens=False)
    b = None if vs is None else tok.encode(vs, add_special_tokens=False)
    assert len(a) == 1 and (b is None or len(b) == 1)
    return a[0], None if b is None else b[0]


def reference_error(hf_models: Any, name: str, option: str, d: Any, model: Any) -> float:
    """|d.total − Hugging Face's logit (difference)|, the closer attention implementation;
    centred over the vocabulary where ``center_unembed`` shifts every logit alike."""
    a, b = _ids(model, d.answer, d.vs)
    errors = []
    for hf in hf_models(name).values():
        row = hf(torch.tensor([list(d.tokens)])).logits[0, d.position].to(torch.float64)
        if am.FOLD_OPTIONS[option].get("center_unembed"):
            row = row - row.mean()
        errors.append(abs(d.total - float(row[a] - (row[b] if b is not None else 0.0))))
    return min(errors)


def tolerance(name: str, option: str, d: Any) -> float:
    if option != "raw":  # TransformerLens rounded the weights through float32
        return TL_PROCESSING_RTOL * max(1.0, d.magnitude)
    return 1e-6 * max(1.0, abs(d.total)) if name in FLOAT32_IN_HF else 1e-12


# -- which model is which ------------------------------------------------------------------


def test_every_family_model_has_one_outcome():
    """No family model is silently left out: each is supported, refused or not buildable."""
    outcomes = [set(SUPPORTED), set(REFUSED), set(NOT_BUILT)]
    assert set().union(*outcomes) == set(ALL)
    assert sum(len(o) for o in outcomes) == len(ALL)


def test_the_supported_architectures_are_the_checked_ones():
    from symtrans.adapter.hooked import SUPPORTED_ARCHITECTURES

    checked = {ALL[name].model for name in SUPPORTED}
    assert set(SUPPORTED_ARCHITECTURES) - {None} == checked


@pytest.mark.parametrize("name", _param(NOT_BUILT))
def test_transformer_lens_cannot_build_it(folders, name):
    """TransformerLens 3.9 itself fails on the folder (its error, not symtrans's)."""
    folder = folders(name)
    with pytest.raises(Exception) as exc:  # noqa: PT011 (TransformerLens's own types)
        load_hooked(folder, "raw", load_hf(folder, "eager"))
    assert NOT_BUILT[name] in f"{type(exc.value).__name__}: {exc.value}"


@pytest.mark.parametrize("name", _param(REFUSED))
def test_refused_models_say_why(hooked, hf_models, name):
    """One ``UnsupportedModelError`` naming the configuration entry; and the refusal is
    needed: the HookedTransformer's own logits are not Hugging Face's."""
    model = hooked(name, "raw")
    with pytest.raises(st.UnsupportedModelError) as exc:
        as_adapter(model)
    message = str(exc.value)
    assert REFUSED[name] in message and "\n" not in message, message
    tokens = model.to_tokens(fm.PROMPT)
    if name == "mixtral":  # TransformerLens 3.9's mixture of experts fails in float64
        with pytest.raises(RuntimeError, match="same dtype"):
            model(tokens)
        return
    ours = model(tokens)[0, -1].to(torch.float64)
    theirs = [hf(tokens).logits[0, -1] for hf in hf_models(name).values()]
    assert min(float((ours - t).abs().max()) for t in theirs) > 1e-3


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("split", st.SPLITS)
@pytest.mark.parametrize("option", am.FOLD_OPTIONS)
@pytest.mark.parametrize("name", _param(SUPPORTED))
def test_every_split_matches_hugging_face(hooked, hf_models, name, option, split, direction):
    model = hooked(name, option)
    answer, vs = DIRECTIONS[direction]
    d = st.decompose(model, fm.PROMPT, answer=answer, vs=vs, split=split).verify()
    error = reference_error(hf_models, name, option, d, model)
    assert error <= tolerance(name, option, d), (name, option, split, error)


# -- the original configuration ------------------------------------------------------------


def test_a_model_whose_original_configuration_is_unreadable_is_refused(folders, hf_models):
    """Qwen2's conversion ignores use_sliding_window: without the original configuration
    symtrans cannot tell whether this HookedTransformer is the original model."""
    folder = folders("qwen2-hooked")
    model = load_hooked(folder, "raw", next(iter(hf_models("qwen2-hooked").values())))
    as_adapter(model)  # readable: supported
    model.cfg.tokenizer_name = str(folder.parent / "elsewhere")
    with pytest.raises(st.UnsupportedModelError, match="use_sliding_window.*not readable"):
        as_adapter(model)


def test_a_hooked_transformer_is_checked_against_the_original(hooked, monkeypatch):
    """d.verify(reference="hf") loads the original from cfg.tokenizer_name. Qwen2 with a
    sliding window, its refusal switched off: the terms add up to the HookedTransformer's
    logit (verify() passes), which is not Hugging Face's (verify(reference="hf") fails)."""
    good = st.decompose(hooked("qwen2-hooked", "raw"), fm.PROMPT, answer=" Ireland")
    good.verify(reference="hf")
    monkeypatch.setitem(HOOKED_REFUSALS, "qwen2", ())
    d = st.decompose(hooked("qwen2", "raw"), fm.PROMPT, answer=" Ireland", split="heads")
    d.verify()
    with pytest.raises(st.IdentityError, match="Hugging Face's own forward pass"):
        d.verify(reference="hf")


# -- the analyses --------------------------------------------------------------------------

ANALYSES = ("paths", "scores", "effective", "projection", "ablation")
# What each model refuses, and why (a piece of the message): everything else must verify.
ANALYSIS_REFUSALS: dict[tuple[str, str], str] = {
    **{(v, "scores"): "masks that key" for v in ("mistral", "phi3-hooked", "gpt-neo-hooked")},
    ("qwen3-hooked", "scores"): "own norms",
    ("bloom", "scores"): "ALiBi",
    ("gptj-hooked", "scores"): "adjacent pairs",
}


@pytest.mark.parametrize("analysis", ANALYSES)
@pytest.mark.parametrize("option", ("raw", "all"))
@pytest.mark.parametrize("name", _param(SUPPORTED))
def test_every_analysis_verifies_or_says_why(hooked, name, option, analysis):
    """Each analysis adds up to what the HookedTransformer computed (its claims, checked by
    verify()), or is refused with the reason in ANALYSIS_REFUSALS — and only then."""
    model = hooked(name, option)
    d = st.decompose(model, fm.PROMPT, answer=" Ireland", vs=" France", split="heads")
    last = d.model.n_layers - 1
    run = {
        "paths": lambda: d.expand_head(model, f"L{last}H1", depth=2),
        "scores": lambda: st.attention_scores(model, fm.PROMPT, last, 1, -1, 3),
        "effective": lambda: d.effective_embedding(model),
        "projection": lambda: d.project(model, f"L{last}H1"),
        "ablation": lambda: d.ablate([f"L{last}H1", "0_attn_bias"], renormalize=True, model=model),
    }[analysis]
    expected = ANALYSIS_REFUSALS.get((name, analysis))
    if expected is None:
        result = run()
        if hasattr(result, "verify"):
            result.verify()
        else:  # ablation: a number
            assert abs(result) < 1e6
    else:
        with pytest.raises((st.UnsupportedModelError, st.InvalidArgumentError), match=expected):
            run()


def _table() -> None:
    """The worst |sum − Hugging Face| over splits and directions, per model and option."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="hooked-families-"))
    options = list(am.FOLD_OPTIONS)
    print("| model | HF in float32 | " + " | ".join(options) + " |")
    print("|---" * (len(options) + 2) + "|")
    for name in SUPPORTED:
        folder = build(root, name)
        hfs = {}
        for impl in ("eager", "sdpa"):
            try:
                hfs[impl] = load_hf(folder, impl)
            except ValueError:
                continue
        cells = []
        for option in options:
            model = load_hooked(folder, option, next(iter(hfs.values())))
            worst = 0.0
            for split in st.SPLITS:
                for answer, vs in DIRECTIONS.values():
                    d = st.decompose(model, fm.PROMPT, answer=answer, vs=vs, split=split)
                    d.verify()
                    worst = max(
                        worst, reference_error(lambda _n, hfs=hfs: hfs, name, option, d, model)
                    )
            cells.append(f"{worst:.1e}")
        print(f"| {name} | {SUPPORTED[name] or '-'} | " + " | ".join(cells) + " |")
    for name, piece in REFUSED.items():
        print(f"| {name} | refused: {piece} |")
    for name, piece in NOT_BUILT.items():
        print(f"| {name} | TransformerLens 3.9 cannot build it: {piece} |")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    _table()
