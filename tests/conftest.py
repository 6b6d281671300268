"""Shared fixtures: randomly initialised GPT-2 and GPT-NeoX models (random γ, β and biases,
ε = 1e-2) built offline, the embedded models, and an independent reference: Hugging Face's
own forward pass, loaded separately from TransformerLens."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase

# nnsight (imported by tests/test_nnsight.py at collection) adds `save` to `object` as an
# unhashable method, after which beartype (tests/test_shapes.py) can no longer be imported:
# import it first.
try:
    import beartype  # noqa: F401
except ImportError:  # the dev extra is not installed; test_shapes.py reports it
    pass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
torch.set_grad_enabled(False)

# Hypothesis: `make test` and CI draw the same examples on every run (derandomized, no example
# database), so a correct change cannot fail by chance; `make fuzz` explores with new random
# examples and keeps the failures it finds in a database outside the repository.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile(
    "fuzz",
    derandomize=False,
    database=DirectoryBasedExampleDatabase(
        str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "symtrans-hypothesis")
    ),
    print_blob=True,
)
settings.load_profile(os.environ.get("SYMTRANS_HYPOTHESIS", "ci"))

PROMPT = "Dublin is the capital city of"


CORPUS = [
    "Dublin is the capital city of Ireland.",
    "Paris is the capital city of France.",
    "The river is long and the city is old.",
] * 5


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    ).save_pretrained(folder)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Random γ (around 1), β and biases, so that nothing the identity needs is trivially 1 or 0."""
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if p.ndim == 1 and ("ln" in name or "norm" in name or "layernorm" in name):
            p.copy_((1.0 + 0.5 * noise) if name.endswith("weight") else 0.5 * noise)
        elif name.endswith("bias"):
            p.copy_(0.3 * noise)
        else:
            p.add_(0.05 * noise)


def build_random(folder: Path, arch: str, seed: int = 0) -> Path:
    """The identity tests' random GPT-2 / GPT-NeoX: 3 layers, d_mlp 64 (tests/arch_models.py
    builds every architecture)."""
    from . import arch_models as am

    return am.build_hf(folder, arch, seed, n_layers=3, d_mlp=64)


def _hf_loader(dirs: dict[str, Path]) -> Callable[..., torch.nn.Module]:
    """``get(name, dtype)``: the model in ``dirs[name]`` through plain Hugging Face, cached."""
    from transformers import AutoModelForCausalLM

    cache: dict[tuple[str, torch.dtype], torch.nn.Module] = {}

    def get(name: str, dtype: torch.dtype = torch.float64) -> torch.nn.Module:
        if (name, dtype) not in cache:
            model = AutoModelForCausalLM.from_pretrained(dirs[name], dtype=dtype)
            cache[(name, dtype)] = model.eval()
        return cache[(name, dtype)]

    return get


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every model the identity is checked on, as a Hugging Face directory."""
    from symtrans.models import EMBEDDED_MODELS

    dirs = {name: m.path for name, m in EMBEDDED_MODELS.items()}
    for arch in ("gpt2", "neox"):
        dirs[f"random-{arch}"] = build_random(tmp_path_factory.mktemp(arch), arch)
    return dirs


@pytest.fixture(scope="session")
def bridge(model_dirs: dict[str, Path]) -> Callable[[str, torch.dtype], object]:
    """``bridge(name, dtype)``: a cached TransformerBridge."""
    import symtrans as st

    cache: dict[tuple[str, torch.dtype], object] = {}

    def get(name: str, dtype: torch.dtype = torch.float64) -> object:
        if (name, dtype) not in cache:
            cache[(name, dtype)] = st.load_model(str(model_dirs[name]), dtype=dtype)
        return cache[(name, dtype)]

    return get


@pytest.fixture(scope="session")
def hf_model(model_dirs: dict[str, Path]) -> Callable[[str, torch.dtype], torch.nn.Module]:
    """``hf_model(name, dtype)``: the same weights through plain Hugging Face (the reference)."""
    return _hf_loader(model_dirs)


# -- every architecture (tests/test_architectures.py, tests/test_hooked_transformer.py) ------


@pytest.fixture(scope="session")
def arch_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A random Hugging Face directory per architecture of ``tests/arch_models.py``; the
    attention-only model (no Hugging Face form) gets a directory with its tokenizer only."""
    from . import arch_models as am

    root = tmp_path_factory.mktemp("architectures")
    dirs = {arch: am.build_hf(root / am.folder_name(arch), arch) for arch in am.HF_ARCHITECTURES}
    _tokenizer(root / am.ATTN_ONLY)
    dirs[am.ATTN_ONLY] = root / am.ATTN_ONLY
    return dirs


@pytest.fixture(scope="session")
def arch_hf(arch_dirs: dict[str, Path]) -> Callable[[str, torch.dtype], torch.nn.Module]:
    """``arch_hf(arch, dtype)``: the reference, plain Hugging Face, loaded apart from TL."""
    return _hf_loader(arch_dirs)


@pytest.fixture(scope="session")
def arch_bridge(arch_dirs: dict[str, Path]) -> Callable[[str, torch.dtype, bool], object]:
    """``arch_bridge(arch, dtype, compat)``: a cached TransformerBridge."""
    from . import arch_models as am

    cache: dict[tuple[str, torch.dtype, bool], object] = {}

    def get(arch: str, dtype: torch.dtype, compat: bool) -> object:
        if (arch, dtype, compat) not in cache:
            cache[(arch, dtype, compat)] = am.boot_bridge(arch_dirs[arch], arch, dtype, compat)
        return cache[(arch, dtype, compat)]

    return get


# -- reports (tests/test_papers.py, test_markdown_math.py, test_html.py, ...) ----------------


@pytest.fixture(scope="session")
def report_results(bridge: Callable[..., object]) -> dict[str, object]:
    """One result of every type a report is written for, on the embedded GPT-2 model; and
    ``long``: a decomposition listing 100 neurons (a table longer than a page column)."""
    import symtrans as st
    from symtrans.models.facts import CAPITALS, DEMO_ANSWER, DEMO_PROMPT

    model = bridge("tiny-capitals")
    d = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")
    prompts = [f"{city} is the capital city of" for city, _ in CAPITALS[:12]]
    answers = [f" {country}" for _, country in CAPITALS[:12]]
    vs = [f" {CAPITALS[(i + 1) % 12][1]}" for i in range(12)]
    return {
        "decomposition": d,
        "neurons": st.decompose(
            model, DEMO_PROMPT, answer=DEMO_ANSWER, vs=" France", split="neurons"
        ),
        "positions": st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="positions"),
        "batch": st.decompose(model, prompts[:4], answer=answers[:4], vs=vs[:4], split="heads"),
        "lens": st.logit_lens(model, DEMO_PROMPT, DEMO_ANSWER, vs=" France"),
        "dataset": st.decompose_dataset(model, prompts, answers, vs, progress=False),
        "score": st.attention_scores(model, DEMO_PROMPT, 1, 0, query_pos=-1, key_pos=1),
        "paths": d.expand_head(model, "L1H0", depth=2),
        "projection": st.project(model, d, "L1H0"),
        "patching": st.patch(
            model,
            prompts[:4],
            [prompts[(i + 1) % 4] for i in range(4)],
            answers[:4],
            [answers[(i + 1) % 4] for i in range(4)],
            site="z",
            explain=2,
        ),
    }
