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

BASE = speed.Shape(n_layers=4, d_model=256, n_heads=4, d_mlp=1024, vocab=50257, n_ctx=512,
                   batch=4, seq=64)
AXES: dict[str, tuple[str, list[int]]] = {
    "layers": ("n_layers", [2, 4, 8]),
    "d_mlp": ("d_mlp", [512, 1024, 2048]),
    "batch": ("batch", [2, 4, 8]),
    "seq": ("seq", [32, 64, 128]),
}


def exponent(xs: list[int], ys: list[float]) -> str:
    if len(xs) < 2 or ys[0] <= 0 or ys[-1] <= 0:
        return "–"
    return f"{math.log(ys[-1] / ys[0]) / math.log(xs[-1] / xs[0]):.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--axes", default=",".join(AXES))
    parser.add_argument("--jobs", default="hf_forward,symtrans_neurons")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    jobs = [j for j in args.jobs.split(",") if j]
    floor = jobs[0]

    print(f"# base: {BASE.describe()}; float32; {args.threads} threads; best of {args.repeat} "
          f"after {args.warmup} warm-up; one process per job and point")
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
                    done[key] = speed.spawn(job, shape, args.repeat, args.warmup, args.threads)
                    print(f"#   {axis}={v} {job}: {time.perf_counter() - t0:.0f} s wall",
                          file=sys.stderr, flush=True)
                rows[job].append(done[key])
        print(f"\n## {axis} ({field}; others as the base)\n")
        head = f"| {axis} |" + "".join(f" {j} s | {j} extra MB |" for j in jobs)
        if len(jobs) > 1:
            head += "".join(f" {j} time / {floor} | {j} extra / {floor} |" for j in jobs[1:])
        print(head)
        print("|---:|" + "---:|" * (2 * len(jobs) + 2 * (len(jobs) - 1)))
        for i, v in enumerate(values):
            cells = [str(v)]
            for j in jobs:
                r = rows[j][i]
                cells += (["error", "error"] if "error" in r
                          else [f"{r['best_s']:.3f}", f"{r['extra_mb']:.0f}"])
            f = rows[floor][i]
            for j in jobs[1:]:
                r = rows[j][i]
                if "error" in r or "error" in f:
                    cells += ["–", "–"]
                else:
                    cells += [f"{r['best_s'] / f['best_s']:.2f}×",
                              f"{r['extra_mb'] / f['extra_mb']:.2f}×" if f["extra_mb"] > 0 else "–"]
            print("| " + " | ".join(cells) + " |")
        exps = [f"exponent ({values[0]}→{values[-1]})"]
        for j in jobs:
            ok = [r for r in rows[j] if "error" not in r]
            if len(ok) != len(values):
                exps += ["–", "–"]
                continue
            exps += [exponent(values, [r["best_s"] for r in ok]),
                     exponent(values, [r["extra_mb"] for r in ok])]
        exps += ["", ""] * (len(jobs) - 1)
        print("| " + " | ".join(exps) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
