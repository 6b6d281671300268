"""Seed 001, exact: a head's output split along the unembedding of what it attends to.

Seed 001 hunts copy-suppression heads in GPT-2: for a head, the vector it moves from each
source position is projected onto the unembedding of the source token; the head's output is
then replaced by that projection only (or by the perpendicular part only, or removed), and
the change in loss says how much of the head's work lies along the tokens it attends to. The
seed does this with hooks that rebuild the output by hand. This script does it with symtrans
on the embedded GPT-2 model: ``st.project(model, d, head, onto="source")`` splits a head's
term of the logit of " Ireland" after "Dublin is the capital city of" source by source, with
the logit and loss when only the parallel part, only the perpendicular part or nothing of
the head reaches the final norm (scale frozen, and recomputed); ``d.ablate`` gives the
ablated logit a second way. Then the same for every head over a few capital prompts (the
seed's per-head table over a dataset).

    .venv/bin/python examples/seed001_projection.py [-o DIR] [--prompts N] [--pdf]

Writes into DIR (default ``examples-out/seed001_projection``): ``projection.{md,tex,html}``
(the projection's report: per-source parts, logit and loss of keeping either part),
``decomposition.{md,tex,html}`` (the logit with the chosen head's term split into its parallel
and perpendicular parts; ``.pdf`` too with ``--pdf``), ``heads.md`` (the per-head table) and
``summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

import symtrans as st
from symtrans.labels import HeadOut
from symtrans.models.facts import CAPITALS, DEMO_ANSWER, DEMO_PROMPT, fact_prompt

MODEL = "tiny-capitals"


def write_reports(report: Any, out: Path, stem: str, pdf: bool) -> list[str]:
    """``stem.md``, ``.tex``, ``.html`` (and ``.pdf``) of a decomposition or an analysis."""
    suffixes = ("md", "tex", "html", "pdf") if pdf else ("md", "tex", "html")
    return [report.save(out / f"{stem}.{suffix}") for suffix in suffixes]


def heads_table(rows: list[dict[str, Any]], count: int) -> str:
    lines = [
        f"# Every head, projected onto the source tokens' unembeddings ({count} prompts)",
        "",
        "Means over the prompts. Logit: the head's term and its parts along / across the",
        "unembedding of the token at each source. Loss change against the full model, with the",
        "final norm's scale recomputed: keeping only the parallel part, only the perpendicular",
        "part, or nothing of the head.",
        "",
        "| head | term | parallel | perpendicular | Δloss parallel only | "
        "Δloss perpendicular only | Δloss ablated |",
        "|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['head']}` | {r['term']:+.4f} | {r['parallel']:+.4f} | "
            f"{r['perpendicular']:+.4f} | {r['dloss_parallel']:+.4f} | "
            f"{r['dloss_perpendicular']:+.4f} | {r['dloss_ablated']:+.4f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--out", default="examples-out/seed001_projection")
    parser.add_argument("--prompts", type=int, default=8, help="capital prompts for the table")
    parser.add_argument("--pdf", action="store_true", help="also write PDFs (needs LaTeX)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = st.load_model(MODEL, dtype=torch.float64)

    # The demo prompt: the head with the largest term, source by source.
    d = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads").verify()
    head = max((t for t in d.terms if isinstance(t.label, HeadOut)), key=lambda t: abs(t.value))
    p = st.project(model, d, head.name, onto="source").verify()
    print(
        f"{DEMO_PROMPT!r} -> {DEMO_ANSWER!r}: logit {d.model_logit:.6f}; {p.head}'s term "
        f"{p.head_value:+.6f} = parallel {p.parallel:+.6f} + perpendicular "
        f"{p.perpendicular:+.6f} (difference {p.error:.1e})"
    )
    print("  source  token            attention  coefficient  parallel  perpendicular")
    for s in p.sources:
        print(
            f"  {s.position:>6}  {s.token!r:<16} {s.attention:>9.4f}  {s.coefficient:>+11.4f}  "
            f"{s.parallel:>+8.4f}  {s.perpendicular:>+13.4f}"
        )
    print("  at the final norm      logit (frozen σ / recomputed)   loss (recomputed)")
    effects = {
        "full": p.full,
        "parallel only": p.projection_only,
        "perpendicular only": p.perpendicular_only,
        "ablated": p.ablated,
    }
    for name, e in effects.items():
        print(
            f"  {name:<20} {e.logit:>10.4f} / {e.logit_renormalized:<10.4f} "
            f"{e.loss_renormalized:.4f}"
        )
    # Full ablation a second way: d.ablate removes the term from the sum (frozen scale) or
    # from x^L_p (recomputed scale).
    frozen = d.ablate([head.label])
    renormalized = d.ablate([head.label], renormalize=True, model=model)
    print(f"  d.ablate([{p.head}]): {frozen:.10f} (frozen), {renormalized:.10f} (recomputed)")
    for got, want in ((frozen, p.ablated.logit), (renormalized, p.ablated.logit_renormalized)):
        if not abs(got - want) <= d.tolerance:
            raise st.IdentityError(f"d.ablate gives {got} but the projection's ablation {want}")

    # The seed's table: every head over a few prompts, mean of each number.
    prompts = [(fact_prompt(city), f" {country}") for city, country in CAPITALS[: args.prompts]]
    per_head: dict[str, list[list[float]]] = {}
    for prompt, answer in prompts:
        dp = st.decompose(model, prompt, answer=answer, split="heads").verify()
        for label in dp.labels:
            if isinstance(label, HeadOut):
                pp = st.project(model, dp, str(label), onto="source").verify()
                per_head.setdefault(str(label), []).append(
                    [
                        pp.head_value,
                        pp.parallel,
                        pp.perpendicular,
                        pp.projection_only.loss_renormalized - pp.full.loss_renormalized,
                        pp.perpendicular_only.loss_renormalized - pp.full.loss_renormalized,
                        pp.ablated.loss_renormalized - pp.full.loss_renormalized,
                    ]
                )
    keys = (
        "term",
        "parallel",
        "perpendicular",
        "dloss_parallel",
        "dloss_perpendicular",
        "dloss_ablated",
    )
    rows = [
        {"head": name, **dict(zip(keys, np.mean(v, axis=0).tolist(), strict=True))}
        for name, v in per_head.items()
    ]
    print(f"every head over {len(prompts)} prompts (means; Δloss against the full model):")
    print("    head      term  parallel  perpendicular  Δloss: parallel only  perp only  ablated")
    for r in rows:
        print(
            f"  {r['head']:>6}  {r['term']:+.4f}  {r['parallel']:+.4f}  {r['perpendicular']:+13.4f}"
            f"  {r['dloss_parallel']:+21.4f}  {r['dloss_perpendicular']:+9.4f}  "
            f"{r['dloss_ablated']:+7.4f}"
        )

    written = write_reports(p.verify(), out, "projection", args.pdf)
    written += write_reports(p.decomposition.verify(), out, "decomposition", args.pdf)
    (out / "heads.md").write_text(heads_table(rows, len(prompts)))
    written.append(str(out / "heads.md"))
    summary = {
        "model": MODEL,
        "prompt": DEMO_PROMPT,
        "answer": DEMO_ANSWER,
        "logit": d.model_logit,
        "head": str(p.head),
        "head_value": p.head_value,
        "parallel": p.parallel,
        "perpendicular": p.perpendicular,
        "sources": [vars(s) for s in p.sources],
        "effects": {name: vars(e) for name, e in effects.items()},
        "ablate_frozen": frozen,
        "ablate_renormalized": renormalized,
        "heads": rows,
        "written": written,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("wrote", ", ".join(written), "and", out / "summary.json")
    return summary


if __name__ == "__main__":
    main()
