r"""Seed 004, exact: the final-LayerNorm derivation of a logit, done by symtrans.

Seed 004 derives by hand, on a Pythia model and "Dublin is the capital city of" -> " Ireland",

    logit = sqrt(N) lambda sum_i <Ireland, c(t_i)> + b_U,   x^L_p = of + sum_l Delta x^l_p,

then splits the last block into attention and MLP. symtrans writes the same identity with
gamma, beta and the norm's epsilon where they belong, evaluates it (by component and by
neuron), checks that it adds up to the model's logit, and writes it as LaTeX. The script
also redoes the seed's arithmetic by hand from TransformerLens's cache, once right and once
with each of the seed's three mistakes, to show the size of each and that the identity check
(``d.verify()``) would catch it:

1. ``lambda = 1/sqrt(|c(x)|^2 + eps)`` where ``+ N eps`` belongs (sigma = sqrt(|c|^2/N + eps));
2. ``center(v) = v + mean(v)``: centring adds the mean instead of subtracting it;
3. ``LN(x) = c(x) / sqrt(Var(x) - eps)``: the variance gets ``+ eps``, not ``- eps``.

(On the seed's Pythia, loaded with TransformerLens's folding and centring, the residual has
mean zero and ``|c(x)|^2`` is large, so its numbers came out right anyway; on a model with
its own gamma, beta and an uncentred residual they do not.)

    .venv/bin/python examples/seed004_decomposition.py [-o DIR] [--model NAME] [--pdf]

Writes into DIR (default ``examples-out/seed004_decomposition``): ``components.{md,tex,html}``
and ``neurons.{md,tex,html}`` (``.tex`` from ``d.to_latex(standalone=True)``; ``.pdf`` too
with ``--pdf``), ``components.fragment.tex`` with ``symtrans.sty`` (``d.to_latex()``, to
``\input`` in a paper) and ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import sympy
import torch

import symtrans as st
from symtrans.labels import Neuron
from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT


@torch.no_grad()
def by_hand(model: Any, prompt: str, answer: str) -> dict[str, float]:
    """Seed 004's arithmetic from TransformerLens's own cache: the logit from ``x^L_p``
    through the final LayerNorm, right and with each of the seed's mistakes alone."""
    tokens = model.to_tokens(prompt)
    logits, cache = model.run_with_cache(tokens)
    x = cache["ln_final.hook_in"][0, -1].to(torch.float64)  # x^L_p
    norm = model.ln_final.original_component
    gamma, beta = norm.weight.to(torch.float64), norm.bias.to(torch.float64)
    a = model.to_single_token(answer)
    u = model.W_U[:, a].to(torch.float64)
    b_U = float(model.b_U[a])
    N, eps = x.shape[-1], float(model.cfg.eps)

    def logit(center: Any, inv_scale: Any) -> float:
        # sqrt(N) lambda <gamma ⊙ u, c(x)> + <beta, u> + b_U, with the given c and lambda
        c = center(x)
        return float(N**0.5 * inv_scale(c) * ((gamma * u) @ c) + beta @ u + b_U)

    def subtract(v: torch.Tensor) -> torch.Tensor:
        return v - v.mean()

    def add(v: torch.Tensor) -> torch.Tensor:
        return v + v.mean()  # seed 004's center()

    def right(c: torch.Tensor) -> torch.Tensor:
        return 1 / torch.sqrt(c @ c + N * eps)

    def eps_not_n_eps(c: torch.Tensor) -> torch.Tensor:
        return 1 / torch.sqrt(c @ c + eps)

    def var_minus_eps(c: torch.Tensor) -> torch.Tensor:
        return 1 / (N**0.5 * torch.sqrt(c @ c / N - eps))  # seed 004's LN()

    return {
        "model": float(logits[0, -1, a]),
        "by hand, right": logit(subtract, right),
        "+eps where +N eps belongs": logit(subtract, eps_not_n_eps),
        "center(v) adds the mean": logit(add, right),
        "LN with Var - eps": logit(subtract, var_minus_eps),
    }


def write_reports(d: st.Decomposition, out: Path, stem: str, pdf: bool) -> list[str]:
    written = [d.save(out / f"{stem}.md"), d.save(out / f"{stem}.html")]
    tex = out / f"{stem}.tex"
    tex.write_text(d.to_latex(standalone=True))  # a compilable document
    written.append(str(tex))
    if pdf:
        written.append(d.save(out / f"{stem}.pdf"))
    return written


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--out", default="examples-out/seed004_decomposition")
    parser.add_argument(
        "--model", default="tiny-capitals-neox", help="embedded name or HF folder (Pythia-like)"
    )
    parser.add_argument("--pdf", action="store_true", help="also write PDFs (needs LaTeX)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    model = st.load_model(args.model, dtype=torch.float64)

    # The seed's first step: one term per block, x^L_p = of + sum_l Delta x^l_p.
    layers = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="layers").verify()
    print(f"{DEMO_PROMPT!r} -> {DEMO_ANSWER!r} on {args.model}: logit {layers.model_logit:.10f}")
    print("  " + ", ".join(f"{t.name} {t.value:+.4f}" for t in layers.terms))
    print(f"  bias (<beta, u> + b_U) {layers.constant:+.4f}")
    # ... then attention and MLP of each block, and every MLP neuron.
    components = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="components")
    neurons = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="neurons")
    for d in (components, neurons):
        d.verify()
        print(
            f"split={d.split}: {len(d.terms)} terms + bias = {d.total:.12f}, model "
            f"{d.model_logit:.12f}, difference {d.total - d.model_logit:.1e} "
            f"(tolerance {d.tolerance:.1e}): adds up"
        )
    top = [t for t in neurons.top(len(neurons.terms)) if isinstance(t.label, Neuron)][:3]
    print("  top neurons: " + ", ".join(f"{t.name} {t.value:+.3f}" for t in top))
    print("symtrans's identity (d.expression), LaTeX:")
    for e in (components.residual_expression, components.scale_expression, components.expression):
        print("  " + sympy.latex(e))

    hand = by_hand(model, DEMO_PROMPT, DEMO_ANSWER)
    truth, tolerance = components.model_logit, components.tolerance
    print(f"seed 004 by hand (model logit {truth:.10f}, verify() tolerance {tolerance:.1e}):")
    mistakes = {}
    for name, value in hand.items():
        if name == "model":
            continue
        gap = value - truth
        verdict = "adds up" if abs(gap) <= tolerance else "IdentityError: does not add up"
        mistakes[name] = gap
        print(f"  {name:<28} {value:.10f}  off by {gap:+.2e}  -> {verdict}")

    written = write_reports(components, out, "components", args.pdf)
    written += write_reports(neurons, out, "neurons", args.pdf)
    fragment = out / "components.fragment.tex"  # \input after \usepackage{symtrans}
    fragment.write_text(components.to_latex())
    written += [str(fragment), st.write_sty(out)]
    summary = {
        "model": args.model,
        "prompt": DEMO_PROMPT,
        "answer": DEMO_ANSWER,
        "logit": components.model_logit,
        "total_components": components.total,
        "total_neurons": neurons.total,
        "n_neuron_terms": len(neurons.terms),
        "layers": {t.name: t.value for t in layers.terms},
        "constant": components.constant,
        "tolerance": tolerance,
        "by_hand": hand,
        "mistake_gaps": mistakes,
        "written": written,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print("wrote", ", ".join(written), "and", out / "summary.json")
    return summary


if __name__ == "__main__":
    main()
