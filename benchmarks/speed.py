#!/usr/bin/env python
"""Time and memory of symtrans's decompositions against the plain forward pass and
TransformerLens's own route to the same numbers (issue 7).

Usage (from the repository root)::

    python benchmarks/speed.py                 # GPT-2-small shape, batch 8 x 118 tokens
    python benchmarks/speed.py --quick         # a small model: a smoke test of the harness
    python benchmarks/speed.py --jobs hf_forward,symtrans_neurons --repeat 5
    python benchmarks/speed.py --job symtrans_neurons   # one job, in this process (JSON out)

The model is a randomly initialised ``GPT2LMHeadModel`` (12 layers, d_model 768, d_mlp 3072,
12 heads, vocab 50257; float32), written once with ``save_pretrained`` under
``benchmarks/.cache/`` together with an offline byte-level BPE tokenizer whose vocabulary is
padded to the model's 50257 ids. The prompts are made of words that are one token each, so
every prompt is exactly ``--seq`` tokens long (BOS included, as the GPT-2 bridge prepends it)
and the batch is one forward pass.

Every job runs in a process of its own (``--job NAME``) with ``torch.set_num_threads``
(2 by default): it loads the model, runs the measured call once to warm up, then ``--repeat``
more times. Time: the best (and the median) of the timed calls, ``time.perf_counter`` around
the call alone. Memory: the kernel's own peak-RSS counter. Before each call the job resets
the process's high-water mark (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and reads
``VmRSS``; after the call it reads ``VmHWM``. *Extra memory* = ``VmHWM - VmRSS before`` — the
most the call added on top of what the process already held (the model, the allocator's
free lists), exact to the page, with no sampling thread that could miss a short peak. The
table quotes the largest extra over the timed calls; the warm-up (first, "cold") call's is
printed beside it because glibc keeps freed small blocks, so later calls can reuse memory the
first one had to take from the OS. Where ``clear_refs`` is not writable, a thread sampling
``VmRSS`` every millisecond is used instead (and the table says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"

BOS = "<|endoftext|>"


# ---------------------------------------------------------------------------------------------
# Shapes, model and prompts (built once, cached under benchmarks/.cache)
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shape:
    n_layers: int = 12
    d_model: int = 768
    n_heads: int = 12
    d_mlp: int = 3072
    vocab: int = 50257
    n_ctx: int = 1024
    batch: int = 8
    seq: int = 118  # tokens per prompt, BOS included

    @property
    def model_key(self) -> str:
        return (
            f"gpt2-L{self.n_layers}-d{self.d_model}-h{self.n_heads}-m{self.d_mlp}"
            f"-v{self.vocab}-c{self.n_ctx}"
        )

    def describe(self) -> str:
        return (
            f"GPT-2 shape: {self.n_layers} layers, d_model {self.d_model}, {self.n_heads} heads, "
            f"d_mlp {self.d_mlp}, vocab {self.vocab}; batch {self.batch} x {self.seq} tokens"
        )


FULL = Shape()
QUICK = Shape(n_layers=2, d_model=128, n_heads=4, d_mlp=512, n_ctx=256, batch=2, seq=32)


def _syllable_words(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    onsets = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z"]
    vowels = ["a", "e", "i", "o", "u"]
    words: set[str] = set()
    while len(words) < n:
        k = rng.choice((1, 2, 2, 3))
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(k)))
    return sorted(words)


def build_tokenizer(vocab: int) -> Path:
    """A byte-level BPE tokenizer (GPT-2 style pre-tokenizer and decoder), trained offline on
    a synthetic corpus, its vocabulary padded with unused entries to exactly ``vocab`` ids."""
    folder = CACHE / f"tokenizer-v{vocab}"
    if (folder / "tokenizer.json").is_file():
        return folder
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    words = _syllable_words(3000)
    rng = random.Random(1)
    corpus = [" ".join(rng.choice(words) for _ in range(50)) for _ in range(4000)]
    tok = Tokenizer(models.BPE(unk_token=BOS))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab, 8000),
        special_tokens=[BOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    state = json.loads(tok.to_str())
    table = state["model"]["vocab"]
    for i in range(len(table), vocab):  # ids the model has and the tokenizer never emits
        table[f"<|unused_{i}|>"] = i
    tok = Tokenizer.from_str(json.dumps(state))
    folder.mkdir(parents=True, exist_ok=True)
    PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=BOS, unk_token=BOS
    ).save_pretrained(folder)
    return folder


def build_model(shape: Shape) -> Path:
    """``benchmarks/.cache/<model_key>``: a random GPT2LMHeadModel + tokenizer (float32)."""
    folder = CACHE / shape.model_key
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok_dir = build_tokenizer(shape.vocab)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    assert len(tokenizer) == shape.vocab, (len(tokenizer), shape.vocab)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=shape.vocab,
            n_layer=shape.n_layers,
            n_head=shape.n_heads,
            n_embd=shape.d_model,
            n_inner=shape.d_mlp,
            n_positions=shape.n_ctx,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)
    return folder


def build_prompts(shape: Shape, model_dir: Path) -> dict[str, Any]:
    """``batch`` prompts of exactly ``seq`` tokens (BOS included), single-token answers, and
    the token ids (BOS first) every job feeds the model."""
    path = model_dir / f"prompts-b{shape.batch}-s{shape.seq}.json"
    if path.is_file():
        return json.loads(path.read_text())
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    singles = [w for w in _syllable_words(3000) if len(tokenizer.encode(" " + w)) == 1]
    assert len(singles) > 100, len(singles)
    rng = random.Random(2)
    prompts, answers, ids = [], [], []
    for _ in range(shape.batch):
        # the first word without a leading space, as a sentence would start
        first = next(w for w in rng.sample(singles, 50) if len(tokenizer.encode(w)) == 1)
        text = first + "".join(" " + rng.choice(singles) for _ in range(shape.seq - 2))
        toks = [tokenizer.bos_token_id, *tokenizer.encode(text)]
        assert len(toks) == shape.seq, (len(toks), shape.seq)
        prompts.append(text)
        answers.append(" " + rng.choice(singles))
        ids.append(toks)
    data = {"prompts": prompts, "answers": answers, "tokens": ids,
            "answer_ids": [tokenizer.encode(a)[0] for a in answers]}
    path.write_text(json.dumps(data))
    return data


# ---------------------------------------------------------------------------------------------
# Memory: the kernel's peak-RSS counter, reset before every call
# ---------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def rss_mb() -> float:
    return _status_kb("VmRSS") / 1024


def _can_reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """Peak RSS during a ``with`` block, in MB. Resets the kernel's high-water mark where
    it can (exact); otherwise samples ``VmRSS`` every millisecond from a thread."""

    exact = _can_reset_hwm()

    def __enter__(self) -> PeakRSS:
        self.before = rss_mb()
        if self.exact:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        else:
            self._peak = self.before
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, rss_mb())
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        if self.exact:
            self.peak = _status_kb("VmHWM") / 1024
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self._peak, rss_mb())

    @property
    def extra(self) -> float:
        return self.peak - self.before


# ---------------------------------------------------------------------------------------------
# Jobs: each returns the callable to measure (the model is loaded outside the measurement)
# ---------------------------------------------------------------------------------------------


def _hf(model_dir: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


def _bridge(model_dir: Path) -> Any:
    import symtrans as st

    return st.load_model(str(model_dir), dtype="float32")


def job_hf_forward(model_dir: Path, data: dict[str, Any]) -> Callable[[], Any]:
    """Hugging Face's forward pass, logits at every position (no KV cache kept)."""
    import torch

    model, ids = _hf(model_dir), torch.tensor(data["tokens"])
    return lambda: model(ids, use_cache=False).logits


def job_hf_forward_last(model_dir: Path, data: dict[str, Any]) -> Callable[[], Any]:
    """The same, unembedding only the last position (``logits_to_keep=1``)."""
    import torch

    model, ids = _hf(model_dir), torch.tensor(data["tokens"])
    return lambda: model(ids, use_cache=False, logits_to_keep=1).logits


def job_bridge_forward(model_dir: Path, data: dict[str, Any]) -> Callable[[], Any]:
    """TransformerLens's bridge around the same module, no hooks: the bridge's own floor."""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    return lambda: bridge(ids)


def _job_symtrans(split: str) -> Callable[[Path, dict[str, Any]], Callable[[], Any]]:
    def job(model_dir: Path, data: dict[str, Any]) -> Callable[[], Any]:
        import symtrans as st

        bridge = _bridge(model_dir)
        prompts, answers = data["prompts"], data["answers"]

        def call() -> Any:
            return st.decompose(bridge, prompts, answer=answers, split=split)

        first = call()  # not timed: checks the harness feeds what it thinks it feeds
        assert [list(d.tokens) for d in first] == data["tokens"]
        assert max(abs(d.total - d.model_logit) for d in first) < 1e-3 * max(
            1.0, max(abs(d.model_logit) for d in first)
        )
        return call

    job.__doc__ = f"``st.decompose(bridge, prompts, answer=answers, split={split!r})``"
    return job


def job_tl_neurons(model_dir: Path, data: dict[str, Any]) -> Callable[[], Any]:
    """TransformerLens's route to per-neuron attribution: ``run_with_cache`` (everything) +
    ``get_full_resid_decomposition(expand_neurons=True, apply_ln=True, pos_slice=-1)`` +
    ``logit_attrs``. (It leaves out γ, β and b_U, so it does not add up; timed as users run it.)"""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    answer = torch.tensor(data["answer_ids"])

    def call() -> Any:
        _, cache = bridge.run_with_cache(ids)
        stack = cache.get_full_resid_decomposition(
            expand_neurons=True, apply_ln=True, pos_slice=-1
        )
        return cache.logit_attrs(stack, tokens=answer, pos_slice=-1)

    return call


def job_tl_heads(model_dir: Path, data: dict[str, Any]) -> Callable[[], Any]:
    """TransformerLens's route to per-head attribution: ``run_with_cache`` (everything) +
    ``stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)`` + ``logit_attrs``."""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    answer = torch.tensor(data["answer_ids"])

    def call() -> Any:
        _, cache = bridge.run_with_cache(ids)
        stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)
        return cache.logit_attrs(stack, tokens=answer, pos_slice=-1)

    return call


JOBS: dict[str, Callable[[Path, dict[str, Any]], Callable[[], Any]]] = {
    "hf_forward": job_hf_forward,
    "hf_forward_last": job_hf_forward_last,
    "bridge_forward": job_bridge_forward,
    "symtrans_layers": _job_symtrans("layers"),
    "symtrans_heads": _job_symtrans("heads"),
    "symtrans_neurons": _job_symtrans("neurons"),
    "symtrans_positions": _job_symtrans("positions"),
    "tl_neurons": job_tl_neurons,
    "tl_heads": job_tl_heads,
}
EXTRA_JOB_MODULES: list[str] = []  # "module:function" jobs added with --extra (prototypes)


def run_job(name: str, shape: Shape, repeat: int, warmup: int, threads: int) -> dict[str, Any]:
    """Load, warm up, time: one job, in this process."""
    import torch

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    model_dir = build_model(shape)
    data = build_prompts(shape, model_dir)
    rss_start = rss_mb()
    factory = _resolve_job(name)
    fn = factory(model_dir, data)
    gc.collect()
    rss_loaded = rss_mb()
    cold: list[float] = []
    for _ in range(warmup):
        gc.collect()
        with PeakRSS() as mem:
            out = fn()
        cold.append(mem.extra)
        del out
    times, extras = [], []
    for _ in range(repeat):
        gc.collect()
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            out = fn()
            t1 = time.perf_counter()
        times.append(t1 - t0)
        extras.append(mem.extra)
        del out
    return {
        "job": name,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "times_s": times,
        "extra_mb": max(extras),
        "extras_mb": extras,
        "cold_extra_mb": cold[0] if cold else None,
        "model_rss_mb": rss_loaded - rss_start,
        "rss_mb": rss_loaded,
        "threads": torch.get_num_threads(),
        "exact_peak": PeakRSS.exact,
    }


def _resolve_job(name: str) -> Callable[[Path, dict[str, Any]], Callable[[], Any]]:
    if name in JOBS:
        return JOBS[name]
    if ":" in name:  # "path/to/file.py:function" — a prototype job defined outside this file
        import importlib.util

        path, func = name.rsplit(":", 1)
        spec = importlib.util.spec_from_file_location("_bench_extra", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, func)  # type: ignore[no-any-return]
    raise SystemExit(f"unknown job {name!r}; jobs: {', '.join(JOBS)} or FILE.py:FUNCTION")


# ---------------------------------------------------------------------------------------------
# Driver: one subprocess per job, one table
# ---------------------------------------------------------------------------------------------


def spawn(name: str, shape: Shape, repeat: int, warmup: int, threads: int,
          timeout: float = 1800) -> dict[str, Any]:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--job", name,
        "--shape", json.dumps(dataclasses.asdict(shape)),
        "--repeat", str(repeat), "--warmup", str(warmup), "--threads", str(threads),
    ]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {"job": name, "error": f"exit {proc.returncode}: {tail.strip().splitlines()[-1:]}",
                "stderr": tail}
    return json.loads(lines[-1][len("RESULT "):])  # type: ignore[no-any-return]


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


def table(results: dict[str, dict[str, Any]], floor: str = "hf_forward") -> str:
    base = results.get(floor, {})
    rows = [
        "| job | best s | median s | extra MB (max of timed) | extra MB (cold) "
        f"| time / {floor} | extra / {floor} | time / TL | extra / TL |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tl_for = {"symtrans_neurons": "tl_neurons", "symtrans_heads": "tl_heads",
              "symtrans_layers": "tl_heads", "symtrans_positions": "tl_neurons"}
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | error: {r['error']} |||||||| ")
            continue
        tl = results.get(tl_for.get(name, ""), {})
        cold = r.get("cold_extra_mb")
        rows.append(
            f"| {name} | {r['best_s']:.3f} | {r['median_s']:.3f} | {r['extra_mb']:.0f} | "
            f"{'–' if cold is None else f'{cold:.0f}'} | "
            f"{_ratio(r['best_s'], base.get('best_s'))} | "
            f"{_ratio(r['extra_mb'], base.get('extra_mb'))} | "
            f"{_ratio(r['best_s'], tl.get('best_s')) if tl else '–'} | "
            f"{_ratio(r['extra_mb'], tl.get('extra_mb')) if tl else '–'} |"
        )
    return "\n".join(rows)


def targets(results: dict[str, dict[str, Any]]) -> list[str]:
    def get(job: str, key: str) -> float | None:
        r = results.get(job, {})
        return r.get(key) if "error" not in r else None

    checks = []

    def check(label: str, a: float | None, b: float | None, op: str, bound: float) -> None:
        if a is None or b is None:
            checks.append(f"- {label}: not measured")
            return
        ratio = a / b if b > 0 else float("inf")
        ok = ratio <= bound if op == "<=" else ratio >= bound
        checks.append(f"- {label}: {ratio:.2f} (target {op} {bound}) — {'MET' if ok else 'NOT MET'}")

    n, f = "symtrans_neurons", "hf_forward"
    check("neurons time / forward time", get(n, "best_s"), get(f, "best_s"), "<=", 1.1)
    check("neurons extra memory / forward extra memory", get(n, "extra_mb"), get(f, "extra_mb"),
          "<=", 1.2)
    check("TL neurons time / symtrans neurons time", get("tl_neurons", "best_s"),
          get(n, "best_s"), ">=", 5)
    check("TL neurons extra memory / symtrans neurons extra memory",
          get("tl_neurons", "extra_mb"), get(n, "extra_mb"), ">=", 4)
    check("heads time / TL heads time", get("symtrans_heads", "best_s"),
          get("tl_heads", "best_s"), "<=", 1.0)
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small model (smoke test)")
    parser.add_argument("--jobs", default=",".join(JOBS),
                        help="comma-separated jobs (default: all); FILE.py:FUNC adds a prototype")
    parser.add_argument("--job", help="run one job in this process and print its RESULT line")
    parser.add_argument("--shape", help="JSON of Shape fields (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls (default 3; 2 quick)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    shape = QUICK if args.quick else FULL
    if args.shape:
        shape = Shape(**json.loads(args.shape))
    repeat = args.repeat or (2 if args.quick else 3)

    if args.job:
        result = run_job(args.job, shape, repeat, args.warmup, args.threads)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    build_model(shape)  # once, before any job, so no job pays for it
    build_prompts(shape, CACHE / shape.model_key)
    from importlib.metadata import version

    import torch

    print(f"# {shape.describe()}; float32; {args.threads} threads; warm-up {args.warmup}, "
          f"best of {repeat}; one process per job")
    print(f"# torch {torch.__version__}, transformers {version('transformers')}, "
          f"transformer_lens {version('transformer_lens')}; "
          f"{os.cpu_count()} CPUs")
    results: dict[str, dict[str, Any]] = {}
    for name in [j for j in args.jobs.split(",") if j]:
        t0 = time.perf_counter()
        results[name] = spawn(name, shape, repeat, args.warmup, args.threads)
        r = results[name]
        msg = r.get("error") or (f"best {r['best_s']:.3f} s, extra {r['extra_mb']:.0f} MB "
                                 f"(cold {r['cold_extra_mb']:.0f} MB), model {r['model_rss_mb']:.0f} MB")
        print(f"#   {name}: {msg}  [{time.perf_counter() - t0:.0f} s wall]", file=sys.stderr,
              flush=True)
    exact = all(r.get("exact_peak", True) for r in results.values())
    print()
    print(table(results))
    print()
    print("Extra memory: peak RSS during the call minus RSS before it "
          + ("(kernel high-water mark, reset per call)." if exact else "(1 ms RSS sampling)."))
    print("Targets (issue 7):")
    print("\n".join(targets(results)))
    if args.json:
        args.json.write_text(json.dumps({"shape": dataclasses.asdict(shape),
                                         "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
