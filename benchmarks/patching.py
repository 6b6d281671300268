#!/usr/bin/env python
"""Seed 003's activation patching: symtrans (``st.patch``) against the seed's own loop, one
TransformerLens ``run_with_hooks`` forward pass per cell (issue 16).

Usage (from the repository root)::

    python benchmarks/patching.py              # GPT-2-small shape, 4 pairs x 8 tokens
    python benchmarks/patching.py --quick      # a 2-layer model: a smoke test of the harness
    python benchmarks/patching.py --pairs 8 --seq 12 --sites resid_pre,z

The model and prompts are :mod:`speed`'s (a random ``GPT2LMHeadModel``, float32, cached under
``benchmarks/.cache/``); each pair's corrupted prompt is its clean prompt with one word (the
third token) swapped for the next pair's, so both have the same length and the answer's
logit moves; the metric is the answer's logit minus the next pair's answer's.

Jobs, each in a process of its own through :func:`speed.spawn` (time: best of ``--repeat``
calls after ``--warmup``; CPU time beside it; extra memory: the kernel's peak RSS during a
call minus RSS before it, see ``benchmarks/README.md``):

- ``seed_loop``: the seed's code on the ``TransformerBridge`` symtrans loads —
  ``run_with_cache`` of the clean prompts, then per cell a ``run_with_hooks`` of the corrupted
  prompts whose hook copies the clean activation in (L x T cells for ``resid_pre``, a pass each
  for ``attn_out`` and ``mlp_out`` per L x T cell, L x H for ``z``), every position's logits;
- ``symtrans``: ``st.patch(..., explain=0)`` for the same sites: every cell resumes the
  corrupted run at its block and its position (the positions before it from the corrupted
  run's cached keys and values), the cells of a position as the rows of batched passes;
- ``symtrans_explained``: the same with ``st.patch``'s default ``explain=3`` (the three
  largest cells of each site written as exact sums).

After its timed calls each job writes its normalised grids to ``benchmarks/.cache``; the
driver prints the largest difference between the seed's grids and symtrans's (float32).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import speed  # noqa: E402  (the harness: model, prompts, one process per job, memory)

SITES = ("resid_pre", "attn_out", "mlp_out", "z")
FULL = dataclasses.replace(speed.FULL, batch=4, seq=8)
QUICK = dataclasses.replace(speed.QUICK, batch=2, seq=8)
SELF = str(Path(__file__).resolve())


def pairs(data: dict[str, Any]) -> dict[str, list[str]]:
    """Clean prompts, corrupted ones (the third token swapped for the next prompt's), each
    pair's answer and the next pair's answer as vs."""
    clean = data["prompts"]
    words = [p.split(" ") for p in clean]
    corrupted = []
    for i, w in enumerate(words):
        swapped = list(w)
        swapped[1] = words[(i + 1) % len(words)][1]  # token 2 after BOS: one word, one token
        corrupted.append(" ".join(swapped))
    answers = data["answers"]
    return {
        "clean": clean,
        "corrupted": corrupted,
        "answers": answers,
        "vs": answers[1:] + answers[:1],
    }


def _sites() -> tuple[str, ...]:
    return tuple(os.environ.get("PATCHING_SITES", ",".join(SITES)).split(","))


def _save(name: str, grids: dict[str, Any]) -> None:
    import numpy as np

    path = speed.CACHE / f"patching-{name}.json"
    path.write_text(json.dumps({k: np.asarray(v).tolist() for k, v in grids.items()}))


def seed_loop(bridge: Any, ids: dict[str, Any], sites: tuple[str, ...]) -> dict[str, Any]:
    """Seed 003's patching section, as written there (one forward pass per cell)."""
    import torch

    clean, corrupted, answer, vs = ids["clean"], ids["corrupted"], ids["answer"], ids["vs"]
    rows = torch.arange(clean.shape[0])

    def logit_diff(logits: Any) -> float:  # logits_to_ave_logit_diff
        final = logits[:, -1, :]
        return float((final[rows, answer] - final[rows, vs]).mean())

    logits, cache = bridge.run_with_cache(clean)
    clean_diff = logit_diff(logits)
    corrupted_diff = logit_diff(bridge(corrupted))

    def normalize(patched: float) -> float:
        return (patched - corrupted_diff) / (clean_diff - corrupted_diff)

    def patch_residual_component(x: Any, hook: Any, pos: int, name: str) -> Any:
        x[:, pos, :] = cache[name][:, pos, :]
        return x

    def patch_head_vector(x: Any, hook: Any, head: int, name: str) -> Any:
        x[:, :, head, :] = cache[name][:, :, head, :]
        return x

    n_layers, n_heads, n_pos = bridge.cfg.n_layers, bridge.cfg.n_heads, clean.shape[1]
    out: dict[str, Any] = {}
    for site in sites:
        if site == "z":
            grid = torch.zeros(n_layers, n_heads)
            for layer in range(n_layers):
                name = f"blocks.{layer}.attn.hook_z"
                for head in range(n_heads):

                    def hook(x: Any, hook: Any, head: int = head, name: str = name) -> Any:
                        return patch_head_vector(x, hook, head, name)

                    patched = bridge.run_with_hooks(corrupted, fwd_hooks=[(name, hook)])
                    grid[layer, head] = normalize(logit_diff(patched))
        else:
            grid = torch.zeros(n_layers, n_pos)
            for layer in range(n_layers):
                name = f"blocks.{layer}.hook_{site}"
                for pos in range(n_pos):

                    def hook(x: Any, hook: Any, pos: int = pos, name: str = name) -> Any:
                        return patch_residual_component(x, hook, pos, name)

                    patched = bridge.run_with_hooks(corrupted, fwd_hooks=[(name, hook)])
                    grid[layer, pos] = normalize(logit_diff(patched))
        out[site] = grid
    return out


def seed_inputs(bridge: Any, data: dict[str, Any]) -> dict[str, Any]:
    """The seed's tensors: clean and corrupted token ids, answer and vs ids."""
    import torch

    p = pairs(data)
    return {
        "clean": torch.tensor(data["tokens"]),
        "corrupted": torch.tensor([bridge.to_tokens(t)[0].tolist() for t in p["corrupted"]]),
        "answer": torch.tensor([bridge.to_single_token(a) for a in p["answers"]]),
        "vs": torch.tensor([bridge.to_single_token(a) for a in p["vs"]]),
    }


def job_seed_loop(model_dir: Path, data: dict[str, Any]) -> speed.Job:
    """The seed's loop on the bridge symtrans loads (float32)."""
    bridge = speed._bridge(model_dir)
    ids = seed_inputs(bridge, data)
    sites = _sites()
    return speed.Job(lambda: seed_loop(bridge, ids, sites), bridge, lambda g: _save("seed_loop", g))


def _job_symtrans(explain: int, name: str) -> Any:
    def job(model_dir: Path, data: dict[str, Any]) -> speed.Job:
        import symtrans as st

        bridge = speed._bridge(model_dir)
        p = pairs(data)
        sites = _sites()

        def call() -> dict[str, Any]:
            return {
                site: st.patch(
                    bridge,
                    p["clean"],
                    p["corrupted"],
                    p["answers"],
                    p["vs"],
                    site=site,
                    explain=explain,
                )
                for site in sites
            }

        def check(out: dict[str, Any]) -> None:
            for result in out.values():
                result.verify()
            _save(name, {site: result.values for site, result in out.items()})

        return speed.Job(call, bridge, check)

    return job


job_symtrans = _job_symtrans(0, "symtrans")
job_symtrans_explained = _job_symtrans(3, "symtrans_explained")
JOBS = ("seed_loop", "symtrans", "symtrans_explained")


def agreement(jobs: list[str]) -> str:
    """The largest difference between the seed's normalised grids and each symtrans job's."""
    import numpy as np

    path = speed.CACHE / "patching-seed_loop.json"
    if not path.is_file():
        return "(the seed's grids were not written)"
    seed = json.loads(path.read_text())
    lines = []
    for job in jobs:
        other = speed.CACHE / f"patching-{job}.json"
        if job == "seed_loop" or not other.is_file():
            continue
        grids = json.loads(other.read_text())
        worst = max(float(np.max(np.abs(np.array(seed[s]) - np.array(grids[s])))) for s in seed)
        lines.append(
            f"- {job} against seed_loop: largest |difference| of a normalised cell "
            f"{worst:.2g} (float32)"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 2-layer model (smoke test)")
    parser.add_argument("--pairs", type=int, default=None, help="prompt pairs (default 4)")
    parser.add_argument("--seq", type=int, default=None, help="tokens per prompt, BOS included")
    parser.add_argument("--sites", default=",".join(SITES))
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--interleave",
        type=int,
        metavar="ROUNDS",
        help="time only: both in this one process, site by site in turn for ROUNDS rounds "
        "(ratios that survive a machine whose load drifts)",
    )
    args = parser.parse_args(argv)

    shape = QUICK if args.quick else FULL
    shape = dataclasses.replace(shape, batch=args.pairs or shape.batch, seq=args.seq or shape.seq)
    model_dir = speed.build_model(shape)
    speed.build_prompts(shape, model_dir)
    os.environ["PATCHING_SITES"] = args.sites  # the jobs' processes inherit it
    for stale in speed.CACHE.glob("patching-*.json"):
        stale.unlink()
    if args.interleave:
        print(interleaved(shape, args.sites.split(","), args.interleave, args.threads))
        return 0
    from importlib.metadata import version

    import torch

    sites = args.sites.split(",")
    n_cells = sum(shape.n_layers * (shape.n_heads if s == "z" else shape.seq) for s in sites)
    print(
        f"# {shape.describe()}; float32; {args.threads} threads; warm-up {args.warmup}, "
        f"best of {args.repeat}; one process per job"
    )
    print(f"# sites {', '.join(sites)}: {n_cells} cells, one forward pass each in the seed's loop")
    print(
        f"# torch {torch.__version__}, transformers {version('transformers')}, "
        f"transformer_lens {version('transformer_lens')}; {os.cpu_count()} CPUs"
    )
    results: dict[str, dict[str, Any]] = {}
    jobs = [j for j in args.jobs.split(",") if j]
    for name in jobs:
        t0 = time.perf_counter()
        results[name] = speed.spawn(
            f"{SELF}:job_{name}", shape, args.repeat, args.warmup, args.threads, timeout=7200
        )
        results[name]["job"] = name
        r = results[name]
        msg = r.get("error") or (
            f"best {r['best_s']:.1f} s, CPU {r['cpu_s']:.1f} s, extra {r['extra_mb']:.0f} MB"
        )
        print(
            f"#   {name}: {msg}  [{time.perf_counter() - t0:.0f} s wall]",
            file=sys.stderr,
            flush=True,
        )
    print()
    print(table(results, "seed_loop"))
    print()
    print(agreement(jobs))
    seed, ours = results.get("seed_loop", {}), results.get("symtrans", {})
    if "best_s" in seed and "best_s" in ours:
        ratio = seed["best_s"] / ours["best_s"]
        cpu = seed["cpu_s"] / ours["cpu_s"]
        verdict = "MET" if ratio >= 5 else "NOT MET"
        print(
            f"- seed_loop time / symtrans time: {ratio:.1f}× (CPU {cpu:.1f}×; target >= 5) "
            f"— {verdict}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"shape": dataclasses.asdict(shape), "results": results}, indent=1)
        )
    return 0


def interleaved(shape: speed.Shape, sites: list[str], rounds: int, threads: int) -> str:
    """The seed's loop and ``st.patch`` on one model in this process, site by site in turn,
    ``rounds`` times after a warm-up: per site the best times and the median of the per-round
    ratios (each round's two calls ran seconds apart, under the same load)."""
    import statistics

    import torch

    sys.path.insert(0, str(speed.REPO))  # this repository's symtrans, as spawn measures it
    import symtrans as st

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    model_dir = speed.build_model(shape)
    data = speed.build_prompts(shape, model_dir)
    bridge = speed._bridge(model_dir)
    speed._page_in(bridge)
    p = pairs(data)
    ids = seed_inputs(bridge, data)

    def ours(site: str) -> Any:
        return st.patch(
            bridge, p["clean"], p["corrupted"], p["answers"], p["vs"], site=site, explain=0
        )

    def seed(site: str) -> Any:
        return seed_loop(bridge, ids, (site,))

    times: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds + 1):  # round 0: warm-up
        for site in sites:
            for name, fn in (("seed_loop", seed), ("symtrans", ours)):
                t0 = time.perf_counter()
                fn(site)
                if r:
                    times.setdefault((name, site), []).append(time.perf_counter() - t0)
    lines = [
        f"| site ({rounds} rounds, one process) | seed loop best s | symtrans best s "
        "| seed / symtrans, median of rounds |",
        "|---|---:|---:|---:|",
    ]
    totals = {"seed_loop": [0.0] * rounds, "symtrans": [0.0] * rounds}
    for site in sites:
        a, b = times[("seed_loop", site)], times[("symtrans", site)]
        for i in range(rounds):
            totals["seed_loop"][i] += a[i]
            totals["symtrans"][i] += b[i]
        ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
        lines.append(f"| {site} | {min(a):.2f} | {min(b):.2f} | {ratio:.1f}× |")
    a, b = totals["seed_loop"], totals["symtrans"]
    ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
    lines.append(f"| all four | {min(a):.2f} | {min(b):.2f} | {ratio:.1f}× |")
    return "\n".join(lines)


def table(results: dict[str, dict[str, Any]], base: str) -> str:
    ref = results.get(base, {})
    rows = [
        "| job | best s | CPU s | extra MB | time / seed loop | CPU / seed loop "
        "| extra / seed loop |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if "error" in r:
            rows.append(f"| {name} | error: {r['error']} ||||||")
            continue
        rows.append(
            f"| {name} | {r['best_s']:.2f} | {r['cpu_s']:.2f} | {r['extra_mb']:.0f} | "
            f"{speed._ratio(r['best_s'], ref.get('best_s'))} | "
            f"{speed._ratio(r['cpu_s'], ref.get('cpu_s'))} | "
            f"{speed._ratio(r['extra_mb'], ref.get('extra_mb'))} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
