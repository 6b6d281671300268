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
(2 by default): it loads the model, reads every weight once (``from_pretrained`` maps the
safetensors file lazily; without this the first call would count the weights it pages in),
runs the measured call once to warm up, then ``--repeat`` more times, then checks the last
output (symtrans jobs: the tokens are the prompts' and ``verify()`` passes).

Time: the best (and the median) of the timed calls, ``time.perf_counter`` around the call
alone. Memory: the kernel's own peak-RSS counter. Before each call the job resets the
process's high-water mark (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0) and reads
``VmRSS``; after it, ``VmHWM``. Extra memory = ``VmHWM - VmRSS before``: the most the call
added on top of what the process held (the model), exact to the page, with no sampling thread
that could miss a short peak. The table's figure is the largest over all the job's calls,
which is the first's as a rule: glibc keeps freed blocks below its mmap threshold, so later
calls reuse memory the first took from the system, and their own figure (shown as "warm
calls") is a lower bound. ``ru_maxrss`` is not used because it cannot be reset: it would
include the loading. Where ``clear_refs`` is not writable, a thread sampling ``VmRSS`` every
millisecond is used instead, and the output says so.
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
    data = {
        "prompts": prompts,
        "answers": answers,
        "tokens": ids,
        "answer_ids": [tokenizer.encode(a)[0] for a in answers],
    }
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


class Job:
    """What a job factory returns: the call to measure, the model it runs (its weights are
    paged in before the first measured call), and an optional check of the last output,
    run after the measurements so that it cannot warm the allocator for them."""

    def __init__(
        self, call: Callable[[], Any], model: Any = None, check: Callable[[Any], None] | None = None
    ) -> None:
        self.call, self.model, self.check = call, model, check


_SHARED: dict[tuple[str, Path], Any] | None = None  # --interleave: one model per kind


def _hf(model_dir: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    if _SHARED is not None and ("hf", model_dir) in _SHARED:
        return _SHARED[("hf", model_dir)]
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    if _SHARED is not None:
        _SHARED[("hf", model_dir)] = model
    return model


def _bridge(model_dir: Path) -> Any:
    """The bridge symtrans itself loads (``st.load_model``)."""
    import symtrans as st

    if _SHARED is not None and ("bridge", model_dir) in _SHARED:
        return _SHARED[("bridge", model_dir)]
    bridge = st.load_model(str(model_dir), dtype="float32")
    if _SHARED is not None:
        _SHARED[("bridge", model_dir)] = bridge
    return bridge


def job_hf_forward(model_dir: Path, data: dict[str, Any]) -> Job:
    """Hugging Face's forward pass, logits at every position (no KV cache kept)."""
    import torch

    model, ids = _hf(model_dir), torch.tensor(data["tokens"])
    return Job(lambda: model(ids, use_cache=False).logits, model)


def job_hf_forward_last(model_dir: Path, data: dict[str, Any]) -> Job:
    """The same, unembedding only the last position (``logits_to_keep=1``)."""
    import torch

    model, ids = _hf(model_dir), torch.tensor(data["tokens"])
    return Job(lambda: model(ids, use_cache=False, logits_to_keep=1).logits, model)


def job_bridge_forward(model_dir: Path, data: dict[str, Any]) -> Job:
    """TransformerLens's bridge around the same module, no hooks: the bridge's own floor."""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    return Job(lambda: bridge(ids), bridge)


def job_bridge_forward_last(model_dir: Path, data: dict[str, Any]) -> Job:
    """The bridge unembedding only the last position (Hugging Face's ``logits_to_keep=1``,
    passed through): the floor for anything that runs through the bridge and needs one
    position's logits."""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    return Job(lambda: bridge(ids, logits_to_keep=1), bridge)


def check_decompositions(out: Any, data: dict[str, Any]) -> None:
    """The harness fed what it meant to, and the terms add up (``verify``)."""
    assert [list(d.tokens) for d in out] == data["tokens"], "tokens differ from the prompts'"
    for d in out:
        d.verify()


def _job_symtrans(split: str) -> Callable[[Path, dict[str, Any]], Job]:
    def job(model_dir: Path, data: dict[str, Any]) -> Job:
        import symtrans as st

        bridge = _bridge(model_dir)
        prompts, answers = data["prompts"], data["answers"]

        def call() -> Any:
            return st.decompose(bridge, prompts, answer=answers, split=split)

        return Job(call, bridge, lambda out: check_decompositions(out, data))

    job.__doc__ = f"``st.decompose(bridge, prompts, answer=answers, split={split!r})``"
    return job


def job_tl_neurons(model_dir: Path, data: dict[str, Any]) -> Job:
    """TransformerLens's route to per-neuron attribution: ``run_with_cache`` (everything) +
    ``get_full_resid_decomposition(expand_neurons=True, apply_ln=True, pos_slice=-1)`` +
    ``logit_attrs``. (It leaves out γ, β and b_U, so it does not add up; timed as users run it.)"""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    answer = torch.tensor(data["answer_ids"])

    def call() -> Any:
        _, cache = bridge.run_with_cache(ids)
        stack = cache.get_full_resid_decomposition(expand_neurons=True, apply_ln=True, pos_slice=-1)
        return cache.logit_attrs(stack, tokens=answer, pos_slice=-1)

    return Job(call, bridge)


def job_tl_heads(model_dir: Path, data: dict[str, Any]) -> Job:
    """TransformerLens's route to per-head attribution: ``run_with_cache`` (everything) +
    ``stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)`` + ``logit_attrs``."""
    import torch

    bridge, ids = _bridge(model_dir), torch.tensor(data["tokens"])
    answer = torch.tensor(data["answer_ids"])

    def call() -> Any:
        _, cache = bridge.run_with_cache(ids)
        stack = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True)
        return cache.logit_attrs(stack, tokens=answer, pos_slice=-1)

    return Job(call, bridge)


JOBS: dict[str, Callable[[Path, dict[str, Any]], Job]] = {
    "hf_forward": job_hf_forward,
    "hf_forward_last": job_hf_forward_last,
    "bridge_forward": job_bridge_forward,
    "bridge_forward_last": job_bridge_forward_last,
    "symtrans_layers": _job_symtrans("layers"),
    "symtrans_heads": _job_symtrans("heads"),
    "symtrans_neurons": _job_symtrans("neurons"),
    "symtrans_positions": _job_symtrans("positions"),
    "tl_neurons": job_tl_neurons,
    "tl_heads": job_tl_heads,
}


def _page_in(model: Any) -> None:
    """Read every weight once: ``from_pretrained`` maps safetensors files lazily, and the
    first call would otherwise count the weights it pages in as its own memory."""
    import torch

    modules = [
        m for m in (model, getattr(model, "original_model", None)) if isinstance(m, torch.nn.Module)
    ]
    for module in modules:
        for t in [*module.parameters(), *module.buffers()]:
            t.sum()


def run_job(name: str, shape: Shape, repeat: int, warmup: int, threads: int) -> dict[str, Any]:
    """Load, warm up, time: one job, in this process.

    Extra memory is measured on every call, the warm-up's included; the job's figure is the
    largest (the first call's, as a rule: later calls reuse what glibc kept of the first's
    freed blocks, so their own figure is a lower bound)."""
    import torch

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    model_dir = build_model(shape)
    data = build_prompts(shape, model_dir)
    rss_start = rss_mb()
    job = _resolve_job(name)(model_dir, data)
    if not hasattr(job, "call"):  # a bare callable (Job may be imported as speed.Job)
        job = Job(job, getattr(job, "model", None), getattr(job, "check", None))
    if job.model is not None:
        _page_in(job.model)
    gc.collect()
    rss_loaded = rss_mb()
    first: list[float] = []
    out = None
    for _ in range(warmup):
        gc.collect()
        with PeakRSS() as mem:
            out = job.call()
        first.append(mem.extra)
        del out
    times, cpus, extras = [], [], []
    for _ in range(repeat):
        gc.collect()
        with PeakRSS() as mem:
            c0, t0 = time.process_time(), time.perf_counter()
            out = job.call()
            t1, c1 = time.perf_counter(), time.process_time()
        times.append(t1 - t0)
        cpus.append(c1 - c0)
        extras.append(mem.extra)
        if _ < repeat - 1:
            del out
    if job.check is not None:
        job.check(out)
    return {
        "job": name,
        "best_s": min(times),
        "median_s": statistics.median(times),
        "times_s": times,
        "cpu_s": min(cpus),
        "cpus_s": cpus,
        "extra_mb": max(first + extras),
        "warm_extra_mb": max(extras),
        "first_extra_mb": first[0] if first else None,
        "extras_mb": first + extras,
        "model_rss_mb": rss_loaded - rss_start,
        "rss_mb": rss_loaded,
        "threads": torch.get_num_threads(),
        "symtrans": _symtrans_location(),
        "exact_peak": PeakRSS.exact,
        "weights_paged_in": job.model is not None,
    }


def run_interleaved(entries: list[str], shape: Shape, rounds: int, threads: int) -> str:
    """Time only, all jobs in this one process, called in turn round after round: on a
    machine whose speed drifts (shared, throttled), the ratio within a round is steadier
    than ratios of separate processes' times. The first job is the reference."""
    import torch

    global _SHARED
    _SHARED = {}  # one HF model and one bridge, shared by the jobs
    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    model_dir = build_model(shape)
    data = build_prompts(shape, model_dir)
    jobs: dict[str, Any] = {}
    for entry in entries:
        name, _, spec = entry.partition("=")
        job = _resolve_job(spec or name)(model_dir, data)
        if not hasattr(job, "call"):
            job = Job(job, getattr(job, "model", None), getattr(job, "check", None))
        if job.model is not None:
            _page_in(job.model)
        job.call()  # warm-up
        jobs[name] = job
    times: dict[str, list[float]] = {n: [] for n in jobs}
    cpus: dict[str, list[float]] = {n: [] for n in jobs}
    for _ in range(rounds):
        for name, job in jobs.items():
            gc.collect()
            c0, t0 = time.process_time(), time.perf_counter()
            out = job.call()
            times[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
            del out
    ref = next(iter(jobs))
    lines = [
        f"| job (one process, {rounds} rounds) | best s | median s | best / {ref} best "
        f"| median of per-round time / {ref} | best CPU s | best CPU / {ref} |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ts in times.items():
        ratios = [t / r for t, r in zip(ts, times[ref], strict=True)]
        lines.append(
            f"| {name} | {min(ts):.3f} | {statistics.median(ts):.3f} | "
            f"{min(ts) / min(times[ref]):.2f}× | {statistics.median(ratios):.2f}× | "
            f"{min(cpus[name]):.2f} | {min(cpus[name]) / min(cpus[ref]):.2f}× |"
        )
    return "\n".join(lines)


def _symtrans_location() -> str | None:
    module = sys.modules.get("symtrans")
    return None if module is None else str(Path(module.__file__ or "?").parent)


def _resolve_job(name: str) -> Callable[[Path, dict[str, Any]], Any]:
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


def spawn(
    name: str,
    shape: Shape,
    repeat: int,
    warmup: int,
    threads: int,
    timeout: float = 1800,
    symtrans_dir: str | None = None,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--job",
        name,
        "--shape",
        json.dumps(dataclasses.asdict(shape)),
        "--repeat",
        str(repeat),
        "--warmup",
        str(warmup),
        "--threads",
        str(threads),
    ]
    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [symtrans_dir or str(REPO), env.get("PYTHONPATH")])
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {
            "job": name,
            "error": f"exit {proc.returncode}: {tail.strip().splitlines()[-1:]}",
            "stderr": tail,
        }
    return json.loads(lines[-1][len("RESULT ") :])  # type: ignore[no-any-return]


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "–"
    return f"{a / b:.2f}×"


def table(results: dict[str, dict[str, Any]], floor: str = "hf_forward") -> str:
    base = results.get(floor, {})
    rows = [
        "| job | best s | median s | CPU s | extra MB | extra MB, warm calls "
        f"| time / {floor} | extra / {floor} | time / TL | extra / TL | CPU / {floor} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | error: {r['error']} |||||||||| ")
            continue
        tl = results.get(tl_route(name) or "", {})
        warm = r.get("warm_extra_mb")
        rows.append(
            f"| {name} | {r['best_s']:.3f} | {r['median_s']:.3f} | {r['cpu_s']:.2f} | "
            f"{r['extra_mb']:.0f} | "
            f"{'–' if warm is None else f'{warm:.0f}'} | "
            f"{_ratio(r['best_s'], base.get('best_s'))} | "
            f"{_ratio(r['extra_mb'], base.get('extra_mb'))} | "
            f"{_ratio(r['best_s'], tl.get('best_s')) if tl else '–'} | "
            f"{_ratio(r['extra_mb'], tl.get('extra_mb')) if tl else '–'} | "
            f"{_ratio(r['cpu_s'], base.get('cpu_s'))} |"
        )
    return "\n".join(rows)


def tl_route(name: str) -> str | None:
    """The TransformerLens job a symtrans job is compared with (same quantity)."""
    if name.startswith("tl_"):
        return None
    if "neurons" in name:
        return "tl_neurons"
    if "heads" in name:
        return "tl_heads"
    return None


def targets(results: dict[str, dict[str, Any]], floor: str = "hf_forward") -> list[str]:
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
        verdict = "MET" if ok else "NOT MET"
        checks.append(f"- {label}: {ratio:.2f} (target {op} {bound}) — {verdict}")

    for n in results:
        route = tl_route(n)
        if route == "tl_neurons":
            check(f"{n} time / {floor} time", get(n, "best_s"), get(floor, "best_s"), "<=", 1.1)
            check(
                f"{n} extra memory / {floor} extra memory",
                get(n, "extra_mb"),
                get(floor, "extra_mb"),
                "<=",
                1.2,
            )
            check(f"tl_neurons time / {n} time", get(route, "best_s"), get(n, "best_s"), ">=", 5)
            check(
                f"tl_neurons extra memory / {n} extra memory",
                get(route, "extra_mb"),
                get(n, "extra_mb"),
                ">=",
                4,
            )
        elif route == "tl_heads":
            check(f"{n} time / tl_heads time", get(n, "best_s"), get(route, "best_s"), "<=", 1.0)
    return checks


def main(argv: list[str] | None = None) -> int:
    if __name__ == "__main__":  # jobs defined elsewhere import this module as ``speed``
        sys.modules.setdefault("speed", sys.modules[__name__])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small model (smoke test)")
    parser.add_argument(
        "--jobs",
        default=",".join(JOBS),
        help="comma-separated jobs (default: all); LABEL=FILE.py:FUNC adds a job "
        "defined elsewhere (a function (model_dir, data) -> callable)",
    )
    parser.add_argument("--job", help="run one job in this process and print its RESULT line")
    parser.add_argument("--shape", help="JSON of Shape fields (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=None, help="timed calls (default 3; 2 quick)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--interleave",
        type=int,
        metavar="ROUNDS",
        help="time only: load every job in this one process and call them in "
        "turn for ROUNDS rounds (steadier ratios on a noisy machine)",
    )
    parser.add_argument(
        "--symtrans",
        help="a folder holding the symtrans package to measure "
        "(put first on PYTHONPATH; default: this repository)",
    )
    args = parser.parse_args(argv)

    shape = QUICK if args.quick else FULL
    if args.shape:
        shape = Shape(**json.loads(args.shape))
    repeat = args.repeat or (2 if args.quick else 3)

    if args.job:
        result = run_job(args.job, shape, repeat, args.warmup, args.threads)
        print("RESULT " + json.dumps(result), flush=True)
        return 0

    if args.interleave:
        if args.symtrans:
            sys.path.insert(0, args.symtrans)
        print(f"# {shape.describe()}; float32; {args.threads} threads; all jobs in one process")
        print(
            run_interleaved(
                [j for j in args.jobs.split(",") if j], shape, args.interleave, args.threads
            )
        )
        print(f"# symtrans measured: {_symtrans_location()}")
        return 0

    build_model(shape)  # once, before any job, so no job pays for it
    build_prompts(shape, CACHE / shape.model_key)
    from importlib.metadata import version

    import torch

    print(
        f"# {shape.describe()}; float32; {args.threads} threads; warm-up {args.warmup}, "
        f"best of {repeat}; one process per job"
    )
    print(
        f"# torch {torch.__version__}, transformers {version('transformers')}, "
        f"transformer_lens {version('transformer_lens')}; "
        f"{os.cpu_count()} CPUs"
    )
    results: dict[str, dict[str, Any]] = {}
    for entry in [j for j in args.jobs.split(",") if j]:
        name, _, spec = entry.partition("=")  # LABEL=FILE.py:FUNC names a prototype job
        t0 = time.perf_counter()
        results[name] = spawn(
            spec or name, shape, repeat, args.warmup, args.threads, symtrans_dir=args.symtrans
        )
        r = results[name]
        msg = r.get("error") or (
            f"best {r['best_s']:.3f} s (all {', '.join(f'{t:.2f}' for t in r['times_s'])}), "
            f"extra {', '.join(f'{m:.0f}' for m in r['extras_mb'])} MB, "
            f"model {r['model_rss_mb']:.0f} MB"
        )
        print(
            f"#   {name}: {msg}  [{time.perf_counter() - t0:.0f} s wall]",
            file=sys.stderr,
            flush=True,
        )
    exact = all(r.get("exact_peak", True) for r in results.values())
    where = sorted({r["symtrans"] for r in results.values() if r.get("symtrans")})
    if where:
        print(f"# symtrans measured: {', '.join(where)}")
    print()
    print(table(results))
    print()
    print(
        "Time: best of the timed calls. Extra memory: peak RSS during a call minus RSS before "
        "it "
        + ("(kernel high-water mark, reset per call)" if exact else "(1 ms RSS sampling)")
        + ", the largest over the job's calls (the first, as a rule); 'warm calls': the "
        "largest over the timed calls only, which reuse memory glibc kept from earlier calls."
    )
    print("Targets (issue 7):")
    print("\n".join(targets(results)))
    if args.json:
        args.json.write_text(
            json.dumps({"shape": dataclasses.asdict(shape), "results": results}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
