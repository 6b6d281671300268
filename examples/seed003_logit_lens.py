"""Seed 003, exact: a logit difference over a dataset, by layer and by head, its lens, and
activation patching with every large cell explained.

Seed 003 measures a logit difference (" He" - " he" after 100 prompts) with TransformerLens's
``accumulated_resid`` (logit lens), ``decompose_resid`` (per layer) and ``stack_head_results``
(per head), each passed through ``apply_ln_to_stack``: the "calculated average logit diff"
it prints is 8.22 where the model's is 7.27, because those helpers drop the final norm's
gamma, beta and ``b_U``. This script does the same analysis with symtrans on the embedded
model's capital facts: the logit difference of the right country against a wrong one
(the next fact's country) after every "<City> is the capital city of", decomposed by layer
and by head over all the prompts (mean ± std of each term, each prompt checked to add up), a
layer × head heatmap, and the exact logit lens of the demo prompt.

Then the seed's largest section, activation patching: each fact (clean) against the same
sentence about the next fact's city (corrupted: the city swapped, so the model names the
wrong country), patching the residual stream, the attention and the MLP outputs per layer ×
position and each head's z per layer × head, normalised as (patched − corrupted) / (clean −
corrupted). The seed runs one forward pass per cell and gets a number; ``st.patch`` runs
the cells as batched rows resumed at their block, and writes the largest cells as exact sums:
the patched component's own term, every term downstream of it and the final norm's scale.

    .venv/bin/python examples/seed003_logit_lens.py [-o DIR] [--model NAME] [--pdf]

Writes into DIR (default ``examples-out/seed003_logit_lens``): ``lens.{md,tex,html}``,
``heads.{md,tex,html}``, ``layers.{md,tex,html}`` and ``patching-<site>.{md,tex,html}`` for
the four sites (``.pdf`` too with ``--pdf``; Markdown pictures beside them as ``.svg``) and
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
from symtrans.models.facts import CAPITALS, DEMO_PROMPT, fact_prompt


def dataset() -> tuple[list[str], list[str], list[str]]:
    """Every capital fact: prompt, the right country, and a wrong one (the next fact's)."""
    prompts = [fact_prompt(city) for city, _ in CAPITALS]
    answers = [f" {country}" for _, country in CAPITALS]
    wrong = answers[1:] + answers[:1]
    return prompts, answers, wrong


@torch.no_grad()
def corrupted_dataset(prompts: list[str]) -> list[str]:
    """Each fact's sentence about the next fact's city: one token swapped, same length."""
    return prompts[1:] + prompts[:1]


def patching_section(
    model: Any, prompts: list[str], answers: list[str], wrong: list[str]
) -> dict[str, Any]:
    """Seed 003's four patchings, each verified, the three largest cells explained."""
    corrupted = corrupted_dataset(prompts)
    out = {}
    for site in ("resid_pre", "attn_out", "mlp_out", "z"):
        p = st.patch(model, prompts, corrupted, answers, vs=wrong, site=site).verify()
        column = "head" if site == "z" else "position"
        print(
            f"patching {site}: clean {p.clean_metric:+.4f}, corrupted {p.corrupted_metric:+.4f}; "
            f"normalised (rows: layers, columns: {column}s):"
        )
        header = p.columns if site == "z" else [p.token_strings[q].strip() for q in p.positions]
        print("        " + " ".join(f"{str(h)[:7]:>7}" for h in header))
        for layer, row in enumerate(p.values):
            print(f"  L{layer}    " + " ".join(f"{v:+7.3f}" for v in row))
        for e in p.explained:
            print(
                f"  {e.cell}: effect {e.effect:+.4f} = direct {e.direct_part:+.4f} "
                f"+ downstream {e.downstream:+.4f} + scale {e.scale_change:+.4f}; "
                "largest: " + ", ".join(f"{label} {v:+.3f}" for label, v in e.top(3) if v)
            )
        if site == "resid_pre":  # where the swapped fact is carried, block by block
            for layer, row in enumerate(p.values):
                q = p.positions[int(abs(row).argmax())]
                print(
                    f"  found: block {layer}'s input carries the fact at position {q} "
                    f"({p.token_strings[q]!r}): patching it there recovers {row.max():.0%}"
                )
        out[site] = p
    return out


def seed_recipe(
    model: Any, prompts: list[str], answers: list[str], wrong: list[str]
) -> tuple[float, float]:
    """Seed 003's own recipe, for comparison: TransformerLens's ``decompose_resid`` through
    ``apply_ln`` against the unembedding difference, summed over the parts and averaged over
    the prompts; and the model's mean logit difference from its own forward pass."""
    tokens = model.to_tokens(prompts)  # every city is one token: all prompts are one length
    a = torch.tensor([model.to_single_token(t) for t in answers])
    b = torch.tensor([model.to_single_token(t) for t in wrong])
    logits, cache = model.run_with_cache(tokens)
    rows = torch.arange(len(prompts))
    model_mean = float((logits[rows, -1, a] - logits[rows, -1, b]).mean())
    stack = cache.decompose_resid(apply_ln=True, pos_slice=-1)  # [parts, prompts, d_model]
    directions = (model.W_U[:, a] - model.W_U[:, b]).T  # [prompts, d_model]
    return model_mean, float((stack * directions).sum(-1).sum(0).mean())


def write_reports(report: Any, out: Path, stem: str, pdf: bool) -> list[str]:
    """``stem.md``, ``.tex``, ``.html`` (and ``.pdf``) of a decomposition or an analysis."""
    suffixes = ("md", "tex", "html", "pdf") if pdf else ("md", "tex", "html")
    return [report.save(out / f"{stem}.{suffix}") for suffix in suffixes]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--out", default="examples-out/seed003_logit_lens")
    parser.add_argument("--model", default="tiny-capitals", help="embedded name or HF folder")
    parser.add_argument("--pdf", action="store_true", help="also write PDFs (needs LaTeX)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    model = st.load_model(args.model, dtype=torch.float64)
    prompts, answers, wrong = dataset()

    # The logit lens of the demo prompt: each prefix of the residual under the final norm,
    # with that prefix's own scale; the last entry is the model's logit difference.
    lens = st.logit_lens(model, DEMO_PROMPT, answers[0], vs=wrong[0])
    print(f"logit lens, {DEMO_PROMPT!r}: {answers[0]!r} - {wrong[0]!r}")
    for name, value in zip(lens.labels, lens.values, strict=True):
        print(f"  {name:>13}  {value:+.4f}")
    print(f"  the model's: {lens.model_logit:+.4f} (difference {lens.error:.1e})")
    if not abs(lens.error) <= 1e-10:  # the lens's last entry is the model's own number
        raise st.IdentityError(
            f"the lens ends at {lens.values[-1]} but the model's is {lens.model_logit}"
        )

    by = {
        split: st.decompose_dataset(
            model,
            prompts,
            answer=answers,
            vs=wrong,
            split=split,
            batch_size=16,
            progress=True,
        ).verify()
        for split in ("layers", "heads")
    }
    heads = by["heads"]
    print(
        f"{heads.count} prompts, logit difference right - wrong country: mean "
        f"{heads.model_logit_mean:.4f}; mean of the exact sums {heads.total_mean:.4f} "
        f"(largest per-prompt error {heads.max_error:.1e})"
    )
    model_mean, recipe_mean = seed_recipe(model, prompts, answers, wrong)
    print(
        f"seed 003's recipe (decompose_resid + apply_ln_to_stack): mean {recipe_mean:.4f} "
        f"against the model's {model_mean:.4f}: it drops the final norm's gamma, beta and b_U"
    )
    for split, dd in by.items():
        print(f"by {split} (mean ± std over prompts), largest |mean| first:")
        for label, mean, std in dd.top(5):
            print(f"  {str(label):>10}  {mean:+.3f} ± {std:.3f}")
    n_layers, n_heads = heads.model.n_layers, heads.model.n_heads
    grid = np.zeros((n_layers, n_heads))
    for label, mean in zip(heads.labels, heads.mean, strict=True):
        if isinstance(label, HeadOut):
            grid[label.layer, label.head] = mean
    print("mean per head (rows: layers, columns: heads):")
    for layer, row in enumerate(grid):
        print(f"  L{layer}  " + "  ".join(f"{v:+.3f}" for v in row))

    patchings = patching_section(model, prompts, answers, wrong)

    written = write_reports(lens, out, "lens", args.pdf)
    for split, dd in by.items():
        written += write_reports(dd, out, split, args.pdf)
    for site, p in patchings.items():
        written += write_reports(p, out, f"patching-{site}", args.pdf)
    summary = {
        "model": args.model,
        "count": heads.count,
        "answers": answers,
        "wrong": wrong,
        "lens": dict(zip(lens.labels, lens.values.tolist(), strict=True)),
        "lens_model_logit": lens.model_logit,
        "model_logit_mean": heads.model_logit_mean,
        "total_mean": heads.total_mean,
        "max_error": heads.max_error,
        "seed_recipe_mean": recipe_mean,
        "forward_mean": model_mean,
        "heads_mean": {str(la): float(m) for la, m in zip(heads.labels, heads.mean, strict=True)},
        "heads_std": {str(la): float(s) for la, s in zip(heads.labels, heads.std, strict=True)},
        "head_grid": grid.tolist(),
        "corrupted": corrupted_dataset(prompts),
        "patching": {
            site: {
                "clean_metric": p.clean_metric,
                "corrupted_metric": p.corrupted_metric,
                "positions": list(p.positions),
                "values": p.values.tolist(),
                "effects": p.effects.tolist(),
                "explained": [
                    {
                        "layer": e.layer,
                        "index": e.index,
                        "effect": e.effect,
                        "direct": e.direct_part,
                        "downstream": e.downstream,
                        "scale": e.scale_change,
                        "total": e.total,
                    }
                    for e in p.explained
                ],
            }
            for site, p in patchings.items()
        },
        "written": written,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("wrote", ", ".join(written), "and", out / "summary.json")
    return summary


if __name__ == "__main__":
    main()
