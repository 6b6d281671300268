#!/usr/bin/env python
"""Studies over datasets (issue 15): throughput of the ``neurons`` split against a plain
batched forward pass over the same prompts, and memory as the number of prompts grows.

    python benchmarks/dataset.py throughput [--prompts 256] [--rounds 3]
    python benchmarks/dataset.py memory [--prompts 10000]

``throughput``: scaling.py's base model (4 GPT-2-small blocks, d_model 768, d_mlp 3072, vocab
8192, float32) and batches of 16 prompts of 64 tokens, cycled to ``--prompts``. In one
process, in turn for ``--rounds`` rounds (ratios that survive a machine whose speed drifts),
each job handles every prompt; the table gives the best round's prompts/s and the ratio to
the forward pass measured in the same run:

- ``hf_forward``: tokenize the batch, Hugging Face's ``model(ids, use_cache=False)``;
- ``bridge_forward``: the same through the TransformerBridge symtrans loads, without hooks
  (TransformerLens computes its norms in Python: the bridge's own floor);
- ``decompose_dataset``: ``st.decompose_dataset(bridge, ..., split="neurons",
  keep_values=False)``, every identity verified as it streams;
- ``nnsight_dataset``: the same on an nnsight ``LanguageModel`` of the same weights;
- ``write_dataset``: ``symtrans dataset``'s writer to Parquet (one row per prompt and term:
  12,300 rows per prompt).

``memory``: a smaller model (2 blocks, d_model 256) so that 10,000 prompts take minutes; the
kernel's high-water mark (reset before the run) minus the RSS before it, read after 1,000,
2,000, 5,000 and 10,000 prompts: of ``decompose_dataset(keep_values=False)`` over a generator
(``neurons``), and of ``symtrans dataset`` writing Parquet from a 10,000-line file (``heads``;
a sampling thread reads the counter as batches land). Flat columns mean memory does not grow
with the number of prompts.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scaling  # noqa: E402
import speed  # noqa: E402

BATCH = 16
SMALL = speed.Shape(
    n_layers=2, d_model=256, n_heads=4, d_mlp=1024, vocab=8192, n_ctx=512, batch=BATCH, seq=32
)
MILESTONES = (1000, 2000, 5000, 10000)


def _data(shape: speed.Shape) -> tuple[Path, list[str], list[str]]:
    model_dir = speed.build_model(shape)
    data = speed.build_prompts(shape, model_dir)
    return model_dir, data["prompts"], data["answers"]


def _cycle(items: list[str], n: int) -> Iterator[str]:
    return itertools.islice(itertools.cycle(items), n)


def throughput(n: int, rounds: int) -> None:
    import torch
    from nnsight import LanguageModel
    from transformers import AutoTokenizer

    import symtrans as st
    from symtrans.analyses.dataset_files import write_dataset

    torch.set_num_threads(2)
    shape = dataclasses.replace(scaling.BASE, batch=BATCH)
    model_dir, prompts, answers = _data(shape)
    hf = speed._hf(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    bridge = speed._bridge(model_dir)
    lm = LanguageModel(str(model_dir), dispatch=True, dtype=torch.float32)
    speed._page_in(hf)
    tmp = Path(tempfile.mkdtemp(prefix="symtrans-bench-"))
    file = tmp / "prompts.jsonl"
    with file.open("w") as fh:
        for p, a in zip(_cycle(prompts, n), _cycle(answers, n), strict=True):
            fh.write(json.dumps({"prompt": p, "answer": a}) + "\n")

    def hf_forward() -> None:
        with torch.no_grad():
            for start in range(0, n, BATCH):
                batch = [prompts[i % len(prompts)] for i in range(start, start + BATCH)]
                ids = tokenizer(batch, return_tensors="pt")["input_ids"]
                bos = torch.full((len(batch), 1), tokenizer.bos_token_id)
                hf(torch.cat([bos, ids], dim=1), use_cache=False)

    def bridge_forward() -> None:  # the bridge symtrans runs, no hooks: its own floor
        with torch.no_grad():
            for start in range(0, n, BATCH):
                batch = [prompts[i % len(prompts)] for i in range(start, start + BATCH)]
                bridge(bridge.to_tokens(batch))

    def dataset(model: Any) -> Callable[[], None]:
        def call() -> None:
            ds = st.decompose_dataset(
                model, _cycle(prompts, n), _cycle(answers, n), split="neurons",
                batch_size=BATCH, progress=False, keep_values=False,
            )  # fmt: skip
            assert ds.count == n

        return call

    runs = itertools.count()

    def writer() -> None:
        out = tmp / f"out-{next(runs)}"
        write_dataset(bridge, file, out, split="neurons", batch_size=BATCH, progress=False)

    jobs = {
        "hf_forward": hf_forward,
        "bridge_forward": bridge_forward,
        "decompose_dataset": dataset(bridge),
        "nnsight_dataset": dataset(lm),
        "write_dataset": writer,
    }
    for job in jobs.values():  # warm-up
        job()
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(rounds):
        for name, job in jobs.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            job()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
            cpu[name] = min(cpu.get(name, float("inf")), time.process_time() - start_cpu)
    print(
        f"# {n} prompts of {shape.seq} tokens in batches of {BATCH}; {shape.describe()}; "
        f"float32, 2 threads; best of {rounds} interleaved rounds; split 'neurons' "
        f"({shape.n_layers * (shape.d_mlp + 2) + 1:,} terms)"
    )
    print(
        "| job | prompts/s | × hf_forward | × bridge_forward | prompts per CPU-s "
        "| × hf_forward (CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds in best.items():
        print(
            f"| {name} | {n / seconds:.1f} | {best['hf_forward'] / seconds:.2f} "
            f"| {best['bridge_forward'] / seconds:.2f} | {n / cpu[name]:.1f} "
            f"| {cpu['hf_forward'] / cpu[name]:.2f} |"
        )
    for floor in ("hf_forward", "bridge_forward"):
        ratio = best[floor] / best["decompose_dataset"]
        print(
            f"target decompose_dataset ≥ 0.8 × {floor}: {'met' if ratio >= 0.8 else 'NOT met'} "
            f"({ratio:.2f})"
        )


def _peak_mb(before: float) -> float:
    return speed._status_kb("VmHWM") / 1024 - before


def _reset_peak() -> float:
    before = speed.rss_mb()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    return before


def memory(n: int) -> None:
    import torch

    import symtrans as st
    from symtrans.analyses.dataset_files import write_dataset

    torch.set_num_threads(2)
    model_dir, prompts, answers = _data(SMALL)
    bridge = speed._bridge(model_dir)
    marks = [m for m in MILESTONES if m <= n] or [n]
    st.decompose_dataset(bridge, prompts, answers, split="neurons", progress=False)  # warm-up

    streamed: dict[int, float] = {}
    before = _reset_peak()

    def stream() -> Iterator[str]:
        for i, p in enumerate(_cycle(prompts, n)):
            if i in marks:
                streamed[i] = _peak_mb(before)
            yield p

    start = time.perf_counter()
    ds = st.decompose_dataset(
        bridge, stream(), _cycle(answers, n), split="neurons", batch_size=BATCH,
        progress=False, keep_values=False,
    )  # fmt: skip
    streamed[n] = _peak_mb(before)
    seconds = time.perf_counter() - start
    assert ds.count == n

    tmp = Path(tempfile.mkdtemp(prefix="symtrans-bench-"))
    file = tmp / "prompts.jsonl"
    with file.open("w") as fh:
        for p, a in zip(_cycle(prompts, n), _cycle(answers, n), strict=True):
            fh.write(json.dumps({"prompt": p, "answer": a}) + "\n")
    out = tmp / "out"
    written: dict[int, float] = {}
    finished = threading.Event()

    def sample() -> None:  # the counter, each time a batch has been recorded
        progress = out / "progress.jsonl"
        while not finished.wait(0.2):
            done = progress.read_text().count("\n") * BATCH if progress.exists() else 0
            for m in marks:
                if done >= m and m not in written:
                    written[m] = _peak_mb(before)

    before = _reset_peak()
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        write_dataset(bridge, file, out, split="heads", batch_size=BATCH, progress=False)
    finally:
        finished.set()
        sampler.join()
    written[n] = _peak_mb(before)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6

    print(
        f"# {n:,} prompts of {SMALL.seq} tokens, batches of {BATCH}; {SMALL.describe()}; "
        f"decompose_dataset 'neurons' {n / seconds:.0f} prompts/s, largest |sum - logit| "
        f"{ds.max_error:.1e}; symtrans dataset 'heads' wrote {size:.0f} MB of Parquet"
    )
    print("| prompts | decompose_dataset peak extra MB | symtrans dataset peak extra MB |")
    print("|---:|---:|---:|")
    for m in sorted(set(marks) | {n}):
        a, b = streamed.get(m), written.get(m)
        print(f"| {m:,} | {a:.0f} | {'' if b is None else f'{b:.0f}'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--prompts", type=int, default=256)
    t.add_argument("--rounds", type=int, default=3)
    m = sub.add_parser("memory")
    m.add_argument("--prompts", type=int, default=10000)
    args = parser.parse_args()
    if args.mode == "throughput":
        throughput(args.prompts, args.rounds)
    else:
        memory(args.prompts)


if __name__ == "__main__":
    main()
