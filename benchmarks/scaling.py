#!/usr/bin/env python
"""How symtrans's ``neurons`` split scales: time and extra memory against the number of
layers, d_mlp, the batch size and the sequence length, one axis at a time around a small
base model (the forward pass measured beside it, in the same run).

Usage (from the repository root)::

    python benchmarks/scaling.py                      # a few minutes on 2 cores
    python benchmarks/scaling.py --axes batch,seq --repeat 3
    python benchmarks/scaling.py --jobs hf_forward,symtrans_neurons,symtrans_heads

Every point is one process per job (``benchmarks/speed.py --job``), measured as in
``speed.py``: best time of ``--repeat`` calls after a warm-up, extra memory = the kernel's
peak RSS during a call minus RSS before it. The *exponent* column is the slope of
log(value) against log(axis) between the first and the last point: 1.0 is linear.

``--stream N`` adds the streaming check: one process decomposes N batches one after another
(the same batch of the base shape each time; each result reduced to its top-10 terms per
prompt and dropped) and prints the process's peak extra memory after 1, 2, 4, ... batches:
a flat column means nothing accumulates from batch to batch.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402

# GPT-2-small blocks, 4 of them, and a smaller vocabulary so that the blocks, not the
# unembedding, set the cost (vocab 50257 at this size would be half the forward pass).
BASE = speed.Shape(
    n_layers=4, d_model=768, n_heads=12, d_mlp=3072, vocab=8192, n_ctx=512, batch=8, seq=64
)
AXES: dict[str, tuple[str, list[int]]] = {
    "layers": ("n_layers", [2, 4, 8]),
    "d_mlp": ("d_mlp", [1536, 3072, 6144]),
    "batch": ("batch", [4, 8, 16]),
    "seq": ("seq", [32, 64, 128]),
}


def exponent(xs: list[int], ys: list[float]) -> str:
    if len(xs) < 2 or ys[0] <= 0 or ys[-1] <= 0:
        return "–"
    return f"{math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0]):.2f}"


def stream_child(shape: speed.Shape, batches: int, split: str, job: str | None) -> None:
    """In this process: N batches in a row; RESULT line with the peak extra after each."""
    import json

    import numpy as np
    import torch

    torch.set_num_threads(2)
    torch.set_grad_enabled(False)
    model_dir = speed.build_model(shape)
    data = speed.build_prompts(shape, model_dir)
    if job:  # a prototype job factory FILE.py:FUNC, whose .call decomposes one batch
        call = speed._resolve_job(job)(model_dir, data).call
    else:
        call = speed._job_symtrans(split)(model_dir, data).call
    import symtrans  # noqa: F401  (loaded by the job)

    before = speed.rss_mb()
    peak_after: list[tuple[int, float, float]] = []
    kept = []
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    for i in range(1, batches + 1):
        out = call()
        kept.append([np.argsort(-np.abs(d.values))[:10] for d in out])  # what a user keeps
        del out
        if i & (i - 1) == 0 or i == batches:
            peak_after.append(
                (i, speed._status_kb("VmHWM") / 1024 - before, speed.rss_mb() - before)
            )
    print("RESULT " + json.dumps({"peaks": peak_after}), flush=True)


def run_stream(batches: int, split: str, job: str | None, symtrans_dir: str | None) -> None:
    import json
    import os
    import subprocess

    shape = dataclasses.replace(BASE)
    speed.build_model(shape)
    speed.build_prompts(shape, speed.CACHE / shape.model_key)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--stream-child",
        str(batches),
        "--split",
        split,
    ] + (["--stream-job", job] if job else [])
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [symtrans_dir or str(speed.REPO), env.get("PYTHONPATH")])
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        print(f"stream failed: {proc.stderr[-2000:]}")
        return
    peaks = json.loads(lines[-1][7:])["peaks"]
    print(
        f"\n## streaming: {batches} batches of {shape.batch} x {shape.seq} in one process "
        f"({job or 'symtrans ' + split})\n"
    )
    print("| batches done | peak extra MB so far | RSS now − RSS before, MB |")
    print("|---:|---:|---:|")
    for i, peak, now in peaks:
        print(f"| {i} | {peak:.0f} | {now:.0f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--axes", default=",".join(AXES))
    parser.add_argument("--jobs", default="hf_forward,symtrans_neurons")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stream", type=int, metavar="N", help="also the streaming check")
    parser.add_argument("--split", default="neurons", help="split of the streaming check")
    parser.add_argument("--stream-job", help="FILE.py:FUNC job for the streaming check")
    parser.add_argument("--stream-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--symtrans", help="folder holding the symtrans package to measure")
    args = parser.parse_args(argv)
    if args.stream_child:
        stream_child(BASE, args.stream_child, args.split, args.stream_job)
        return 0
    jobs = [j for j in args.jobs.split(",") if j]
    floor = jobs[0]

    print(
        f"# base: {BASE.describe()}; float32; {args.threads} threads; best of {args.repeat} "
        f"after {args.warmup} warm-up; one process per job and point"
    )
    done: dict[tuple[Any, ...], dict[str, Any]] = {}
    for axis in [a for a in args.axes.split(",") if a]:
        field, values = AXES[axis]
        rows: dict[str, list[dict[str, Any]]] = {j: [] for j in jobs}
        for v in values:
            shape = dataclasses.replace(BASE, **{field: v})
            speed.build_model(shape)
            speed.build_prompts(shape, speed.CACHE / shape.model_key)
            for job in jobs:
                key = (job, *dataclasses.astuple(shape))
                if key not in done:
                    t0 = time.perf_counter()
                    label, _, spec = job.partition("=")
                    done[key] = speed.spawn(
                        spec or label,
                        shape,
                        args.repeat,
                        args.warmup,
                        args.threads,
                        symtrans_dir=args.symtrans,
                    )
                    print(
                        f"#   {axis}={v} {job}: {time.perf_counter() - t0:.0f} s wall",
                        file=sys.stderr,
                        flush=True,
                    )
                rows[job].append(done[key])
        print(f"\n## {axis} ({field}; others as the base)\n")
        lab = {j: j.partition("=")[0] for j in jobs}
        head = f"| {axis} |" + "".join(f" {lab[j]} s | {lab[j]} extra MB |" for j in jobs)
        if len(jobs) > 1:
            head += "".join(
                f" {lab[j]} time / {lab[floor]} | {lab[j]} extra / {lab[floor]} |" for j in jobs[1:]
            )
        print(head)
        print("|---:|" + "---:|" * (2 * len(jobs) + 2 * (len(jobs) - 1)))
        for i, v in enumerate(values):
            cells = [str(v)]
            for j in jobs:
                r = rows[j][i]
                cells += (
                    ["error", "error"]
                    if "error" in r
                    else [f"{r['best_s']:.3f}", f"{r['extra_mb']:.0f}"]
                )
            f = rows[floor][i]
            for j in jobs[1:]:
                r = rows[j][i]
                if "error" in r or "error" in f:
                    cells += ["–", "–"]
                else:
                    cells += [
                        f"{r['best_s'] / f['best_s']:.2f}×",
                        f"{r['extra_mb'] / f['extra_mb']:.2f}×" if f["extra_mb"] > 0 else "–",
                    ]
            print("| " + " | ".join(cells) + " |")
        exps = [f"exponent ({values[0]}→{values[-1]})"]
        for j in jobs:
            ok = [r for r in rows[j] if "error" not in r]
            if len(ok) != len(values):
                exps += ["–", "–"]
                continue
            exps += [
                exponent(values, [r["best_s"] for r in ok]),
                exponent(values, [r["extra_mb"] for r in ok]),
            ]
        exps += ["", ""] * (len(jobs) - 1)
        print("| " + " | ".join(exps) + " |")
    if args.stream:
        run_stream(args.stream, args.split, args.stream_job, args.symtrans)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
