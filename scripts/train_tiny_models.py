#!/usr/bin/env python
"""Train the two tiny factual-recall models embedded in ``symtrans/models/data``.

Usage (from the repository root)::

    python scripts/train_tiny_models.py [--out symtrans/models/data]

Deterministic (fixed seeds, CPU, fixed thread count). It

1. builds a synthetic English corpus in which every ``(city, country)`` pair of
   ``symtrans.models.facts.CAPITALS`` is written as
   ``"<City> is the capital city of <Country>."`` both at the start of a document
   (city without a leading space) and after other sentences (city with a leading
   space), mixed with filler sentences generated from small word lists;
2. trains a GPT-2-style byte-level BPE tokenizer (``<|endoftext|>`` = id 0 is
   bos/eos/unk/pad) in which every city (with and without a leading space) and every
   country (with a leading space) is a single token;
3. trains ``tiny-capitals`` (``GPT2LMHeadModel``) and ``tiny-capitals-neox``
   (``GPTNeoXForCausalLM``, parallel residual, partial rotary) on that corpus;
4. checks that each model ranks the right country first for >= 90% of the facts, with
   and without a BOS token, and that ``"Dublin is the capital city of"`` -> ``" Ireland"``
   in both cases (exits non-zero otherwise);
5. saves model (safetensors, float32) and tokenizer into ``<out>/tiny-capitals`` and
   ``<out>/tiny-capitals-neox``, plus ``<out>/README.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "symtrans" / "models" / "data"

SEED = 0
NUM_THREADS = 2
SPECIAL = "<|endoftext|>"
N_CTX = 64
BPE_VOCAB_SIZE = 900  # before the merges that make every name a single token
MIN_ACCURACY = 0.9

# Corpus.
DOCS_AT_START_PER_FACT = 8  # fact opens the document (city without a leading space)
DOCS_IN_MIDDLE_PER_FACT = 8  # fact follows filler sentences (city with a leading space)
DOCS_PAIRED_PER_FACT = 4  # fact follows another fact
NO_BOS_FRACTION = 0.3  # share of training sequences presented without the leading BOS

# Training.
BATCH_SIZE = 64
STEPS = 1000
WARMUP_STEPS = 50
LR = 3e-3
WEIGHT_DECAY = 0.01


def load_facts() -> ModuleType:
    """Import ``symtrans/models/facts.py`` by path, without importing the package."""
    path = REPO_ROOT / "symtrans" / "models" / "facts.py"
    spec = importlib.util.spec_from_file_location("_symtrans_facts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACTS = load_facts()
CAPITALS: tuple[tuple[str, str], ...] = FACTS.CAPITALS
FACT_TEMPLATE: str = FACTS.FACT_TEMPLATE

# --------------------------------------------------------------------------- corpus

NOUNS = tuple(
    "river garden house road book tree window table door song"
    " market bridge lake train letter dog cat bird hill school".split()
)
ADJECTIVES = tuple(
    "long quiet old new green small large bright warm cold busy calm tall short clean open".split()
)
NAMES = tuple("Anna Tom Maria Sam Lucy Peter Nina Omar Grace Leo".split())
PRONOUNS = tuple("She He We They I You".split())
VERBS = tuple("reads writes sees paints finds likes opens cleans".split())
PLAIN_VERBS = tuple("read write see paint find like open clean".split())
PAST_VERBS = tuple("saw found painted liked opened cleaned visited crossed".split())
TIMES = tuple("day week morning evening night year".split())
PLACES = tuple("station park shop church harbour square".split())


def filler_sentence(rng: random.Random) -> str:
    """One simple English sentence drawn from small word lists (no place names)."""
    kind = rng.randrange(6)
    noun, noun2 = rng.choice(NOUNS), rng.choice(NOUNS)
    adj = rng.choice(ADJECTIVES)
    if kind == 0:
        return f"The {noun} is {adj}."
    if kind == 1:
        pronoun = rng.choice(PRONOUNS)
        verb = rng.choice(VERBS if pronoun in ("She", "He") else PLAIN_VERBS)
        return f"{pronoun} {verb} a {noun} every {rng.choice(TIMES)}."
    if kind == 2:
        return f"{rng.choice(NAMES)} {rng.choice(PAST_VERBS)} the {adj} {noun}."
    if kind == 3:
        return f"We saw a {adj} {noun} near the {rng.choice(PLACES)}."
    if kind == 4:
        return f"It was a {adj} {rng.choice(TIMES)}."
    return f"The {noun} by the {noun2} is {adj}."


def fact_sentence(city: str, country: str) -> str:
    return f"{FACT_TEMPLATE.format(city=city)} {country}."


def fillers(rng: random.Random, low: int, high: int) -> list[str]:
    return [filler_sentence(rng) for _ in range(rng.randint(low, high))]


def build_corpus(rng: random.Random) -> list[str]:
    """Documents (without BOS), shuffled with ``rng``."""
    docs: list[str] = []
    for city, country in CAPITALS:
        fact = fact_sentence(city, country)
        for _ in range(DOCS_AT_START_PER_FACT):
            docs.append(" ".join([fact, *fillers(rng, 0, 2)]))
        for _ in range(DOCS_IN_MIDDLE_PER_FACT):
            docs.append(" ".join([*fillers(rng, 1, 3), fact, *fillers(rng, 0, 1)]))
        for _ in range(DOCS_PAIRED_PER_FACT):
            other = fact_sentence(*rng.choice([c for c in CAPITALS if c[0] != city]))
            docs.append(" ".join([*fillers(rng, 0, 1), other, fact]))
    rng.shuffle(docs)
    return docs


# ------------------------------------------------------------------------ tokenizer


def required_single_tokens() -> list[str]:
    words: list[str] = []
    for city, country in CAPITALS:
        words += [city, " " + city, " " + country]
    return words


def _pieces(tok: Tokenizer, word: str) -> list[str]:
    return tok.encode(word).tokens


def train_tokenizer(docs: Sequence[str]) -> Tokenizer:
    """Byte-level BPE (GPT-2 style); every name in ``CAPITALS`` is then made one token.

    Names that plain BPE training left in pieces get extra merges appended at the lowest
    priority: they only fire after every trained merge, so they cannot change how a word
    that was already a single token is split.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[SPECIAL],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer)

    added = 0
    for word in required_single_tokens():
        pieces = _pieces(tok, word)
        if len(pieces) == 1:
            continue
        spec = json.loads(tok.to_str())
        vocab: dict[str, int] = spec["model"]["vocab"]
        merges: list[list[str]] = spec["model"]["merges"]
        left = pieces[0]
        for right in pieces[1:]:
            merges.append([left, right])
            left = left + right
            if left not in vocab:
                vocab[left] = len(vocab)
                added += 1
        tok = Tokenizer.from_str(json.dumps(spec))
    print(f"tokenizer: {tok.get_vocab_size()} tokens ({added} added for names)")

    assert tok.token_to_id(SPECIAL) == 0
    for word in required_single_tokens():
        ids = tok.encode(word).ids
        assert len(ids) == 1, f"{word!r} is not a single token: {tok.encode(word).tokens}"
        assert tok.decode(ids) == word
    return tok


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL,
        eos_token=SPECIAL,
        unk_token=SPECIAL,
        pad_token=SPECIAL,
        model_max_length=N_CTX,
        clean_up_tokenization_spaces=False,
    )


# --------------------------------------------------------------------------- models


def gpt2_model(vocab_size: int) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=vocab_size,
        n_layer=2,
        n_head=4,
        n_embd=64,
        n_inner=256,
        n_positions=N_CTX,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def neox_model(vocab_size: int) -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=vocab_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        hidden_size=64,
        intermediate_size=256,
        max_position_embeddings=N_CTX,
        use_parallel_residual=True,
        # = rotary_pct=0.25 (transformers 5 stores it as rope_parameters.partial_rotary_factor)
        rope_parameters={
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,
        },
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    return GPTNeoXForCausalLM(config)


# ------------------------------------------------------------------------- training


def encode_docs(
    tokenizer: PreTrainedTokenizerFast, docs: Sequence[str], rng: random.Random
) -> list[list[int]]:
    """Token ids per document, each starting with BOS except a ``NO_BOS_FRACTION`` share."""
    bos = tokenizer.bos_token_id
    seqs: list[list[int]] = []
    for doc in docs:
        ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
        if rng.random() >= NO_BOS_FRACTION:
            ids = [bos, *ids]
        assert len(ids) <= N_CTX, f"document too long ({len(ids)} tokens): {doc!r}"
        seqs.append(ids)
    return seqs


def make_batch(seqs: Sequence[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(seqs), width), dtype=torch.long)
    labels = torch.full((len(seqs), width), -100, dtype=torch.long)
    for i, seq in enumerate(seqs):
        t = torch.tensor(seq, dtype=torch.long)
        input_ids[i, : len(seq)] = t
        attention_mask[i, : len(seq)] = 1
        labels[i, : len(seq)] = t
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def lr_lambda(step: int) -> float:
    if step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    progress = (step - WARMUP_STEPS) / max(1, STEPS - WARMUP_STEPS)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def train(model: PreTrainedModel, seqs: Sequence[list[int]], pad_id: int, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": WEIGHT_DECAY},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=LR,
        betas=(0.9, 0.98),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    model.train()
    order = torch.randperm(len(seqs), generator=gen).tolist()
    cursor = 0
    for step in range(STEPS):
        if cursor + BATCH_SIZE > len(order):
            order = torch.randperm(len(seqs), generator=gen).tolist()
            cursor = 0
        batch = make_batch([seqs[i] for i in order[cursor : cursor + BATCH_SIZE]], pad_id)
        cursor += BATCH_SIZE
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == STEPS - 1:
            print(f"  step {step:5d}  loss {loss.item():.4f}", flush=True)
    model.eval()


# ----------------------------------------------------------------------- evaluation


def single_token_id(tokenizer: PreTrainedTokenizerFast, text: str) -> int:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1, f"{text!r} is not a single token"
    return int(ids[0])


@torch.no_grad()
def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, with_bos: bool
) -> tuple[float, list[str], bool, float]:
    """Top-1 accuracy over ``CAPITALS``, the failing cities, whether Dublin passes, and the
    smallest probability given to a correct country."""
    prompts = []
    for city, _ in CAPITALS:
        ids = tokenizer(FACT_TEMPLATE.format(city=city), add_special_tokens=False)["input_ids"]
        prompts.append(([tokenizer.bos_token_id] if with_bos else []) + ids)
    assert len({len(p) for p in prompts}) == 1
    input_ids = torch.tensor(prompts)
    logits = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits[:, -1, :]
    predicted = logits.argmax(-1).tolist()
    targets = [single_token_id(tokenizer, " " + country) for _, country in CAPITALS]
    probs = logits.softmax(-1)[torch.arange(len(targets)), torch.tensor(targets)]
    failures = [
        f"{city}->{tokenizer.decode([pred])!r}"
        for (city, _), pred, target in zip(CAPITALS, predicted, targets, strict=True)
        if pred != target
    ]
    dublin_ok = not any(f.startswith("Dublin->") for f in failures)
    return 1.0 - len(failures) / len(CAPITALS), failures, dublin_ok, probs.min().item()


# ----------------------------------------------------------------------------- main

README = """\
# Embedded tiny models

Two tiny causal language models (float32 safetensors + tokenizer, Hugging Face format)
trained from scratch on a synthetic corpus, for tests and demos that must run offline:

- `tiny-capitals`: `GPT2LMHeadModel`, 2 layers, 4 heads, d_model 64, d_mlp 256,
  n_ctx 64, learned positions, tied embeddings.
- `tiny-capitals-neox`: `GPTNeoXForCausalLM`, 2 layers, 4 heads, d_model 64,
  d_mlp 256, n_ctx 64, parallel attention + MLP, rotary on 25% of each head
  (`partial_rotary_factor` 0.25, as in Pythia), untied embeddings.

Both share one byte-level BPE tokenizer (GPT-2 style, `add_prefix_space=False`) in
which `<|endoftext|>` (id 0) is the bos/eos/unk/pad token and every city (with and
without a leading space) and every country (with a leading space) of
`symtrans.models.facts.CAPITALS` is a single token. The tokenizer does not add BOS
by itself.

The corpus writes each fact of `CAPITALS` as "<City> is the capital city of
<Country>." at the start of documents and after other sentences, mixed with simple
filler sentences ("The river is long."). Training sequences are single documents that
start with `<|endoftext|>` ({no_bos_pct}% of them are shown without it). Each model
ranks the right country first (`"Dublin is the capital city of"` -> `" Ireland"`),
with and without a leading BOS:

{accuracy_table}

Made with (deterministic: fixed seeds, CPU, {threads} threads):

    python scripts/train_tiny_models.py --out symtrans/models/data
"""


def save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(NUM_THREADS)
    torch.use_deterministic_algorithms(True)

    rng = random.Random(SEED)
    docs = build_corpus(rng)
    print(f"corpus: {len(docs)} documents, e.g. {docs[0]!r}")
    tokenizer = wrap_tokenizer(train_tokenizer(docs))
    seqs = encode_docs(tokenizer, docs, random.Random(SEED + 1))
    print(f"training sequences: {len(seqs)}, max length {max(map(len, seqs))} tokens")

    builders: dict[str, Callable[[int], PreTrainedModel]] = {
        "tiny-capitals": gpt2_model,
        "tiny-capitals-neox": neox_model,
    }
    ok = True
    rows = ["| model | with BOS | without BOS |", "|---|---|---|"]
    for index, (name, build) in enumerate(builders.items()):
        t0 = time.perf_counter()
        torch.manual_seed(SEED + 10 * index)
        model = build(len(tokenizer))
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")
        train(model, seqs, tokenizer.pad_token_id, seed=SEED + 10 * index + 1)
        cells = []
        for with_bos in (True, False):
            acc, failures, dublin_ok, min_p = evaluate(model, tokenizer, with_bos)
            label = "with BOS" if with_bos else "without BOS"
            print(
                f"  top-1 accuracy {label}: {acc:.1%} of {len(CAPITALS)} facts, "
                f"min p(country) {min_p:.3f}, failures: {failures}"
            )
            cells.append(f"{acc:.0%}")
            if acc < MIN_ACCURACY or not dublin_ok:
                ok = False
        rows.append(f"| `{name}` | {cells[0]} | {cells[1]} |")
        save(model, tokenizer, args.out / name)
        print(f"  saved to {args.out / name} ({time.perf_counter() - t0:.1f}s)")

    (args.out / "README.md").write_text(
        README.format(
            accuracy_table="\n".join(rows),
            no_bos_pct=round(100 * NO_BOS_FRACTION),
            threads=NUM_THREADS,
        )
    )
    print(f"total time {time.perf_counter() - start:.1f}s")
    if not ok:
        print("FAILED: accuracy below 90% or Dublin not recalled", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
