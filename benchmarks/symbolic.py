"""Symbolic scale (issue 7, item 3): a GPT-2-small-sized decomposition — 144 heads, or
36,864 neurons (12 layers × 3,072) — kept symbolic, with its terms and reports timed.

The numbers come from the embedded model's decomposition, re-labelled to GPT-2 small's shape
(the symbolic machinery depends only on the labels and the model's shape, not on weights), so
this runs in seconds without building a large model. sympy's general simplification is
replaced by a function that raises, so any call to it fails the run.

    python benchmarks/symbolic.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import sympy
import torch

import symtrans as st
from symtrans import labels as lb
from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT
from symtrans.results.decomposition import Decomposition

LAYERS, HEADS, D_MLP = 12, 12, 3072


def gpt2_small_like(base: Decomposition, split: str) -> Decomposition:
    labels: list[lb.Label] = [lb.Embed(), lb.PosEmbed()]
    for layer in range(LAYERS):
        if split == "heads":
            labels += [lb.HeadOut(layer, h) for h in range(HEADS)]
            labels += [lb.AttnBias(layer), lb.MlpOut(layer)]
        else:
            labels += [lb.AttnOut(layer)]
            labels += [lb.Neuron(layer, n) for n in range(D_MLP)] + [lb.MlpBias(layer)]
    rng = np.random.default_rng(0)
    values = rng.standard_normal(len(labels)) * 0.01
    model = replace(base.model, n_layers=LAYERS, n_heads=HEADS, d_model=768, d_mlp=D_MLP)
    return replace(base, model=model, labels=tuple(labels), values=values, split=split)


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(base: Decomposition, split: str, repeat: int) -> tuple[str, int, int, dict[str, float]]:
    """(split, terms, symbolic terms, {operation: best seconds}); each timing starts from a
    fresh decomposition (its cached properties empty)."""

    def fresh() -> Decomposition:
        return gpt2_small_like(base, split)

    d = fresh()
    timings = {
        "d.terms": best(lambda: fresh().terms, repeat),
        "d.top(12)": best(lambda: fresh().top(12), repeat),
        "d.expression": best(lambda: fresh().expression, repeat),
        "to_markdown": best(lambda: fresh().to_markdown(), repeat),
        "to_html": best(lambda: fresh().to_html(), repeat),
        "to_latex": best(lambda: fresh().to_latex(standalone=True), repeat),
    }
    return split, len(d.labels), len(d.term_groups), timings


def forbid_simplification() -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("sympy's general simplification was called")

    for name in ("simplify", "expand", "factor", "together", "cancel", "nsimplify"):
        setattr(sympy, name, refuse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    forbid_simplification()
    model = st.load_model("tiny-capitals", dtype=torch.float64)
    base = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")

    rows = []
    for split in ("heads", "neurons"):
        rows.append(measure(base, split, args.repeat))

    print(
        f"GPT-2-small shape: {LAYERS} layers × {HEADS} heads, d_mlp {D_MLP}; best of {args.repeat}"
    )
    print("sympy.simplify, expand, factor, together, cancel, nsimplify: replaced, raise if called")
    print()
    header = "| split | terms | symbolic terms | " + " | ".join(rows[0][3]) + " |"
    print(header)
    print("|" + " --- |" * (3 + len(rows[0][3])))
    for split, n, groups, timings in rows:
        cells = " | ".join(f"{t * 1000:.0f} ms" for t in timings.values())
        print(f"| {split} | {n:,} | {groups} | {cells} |")
    heads = rows[0][3]
    report = heads["to_markdown"] + heads["to_html"]
    print()
    print(
        f"144-head report (Markdown + HTML): {report:.3f} s "
        f"({'meets' if report < 1.0 else 'MISSES'} the < 1 s target)"
    )
    neurons = rows[1]
    print(
        f"36,864-neuron decomposition: {neurons[1]:,} terms fold into {neurons[2]} symbolic terms "
        f"(each layer's neurons one Σ_n)"
    )


if __name__ == "__main__":
    main()
