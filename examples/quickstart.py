"""Decompose the embedded model's logit for " Ireland", check it, and write every report.

.venv/bin/python examples/quickstart.py [OUT_DIR]
"""

from __future__ import annotations

import sys

import symtrans as st


def main(out: str = "quickstart-out") -> None:
    model = st.load_model("tiny-capitals")
    d = st.decompose(
        model, "Dublin is the capital city of", answer=" Ireland", vs=" France", split="heads"
    ).verify()
    print(f"logit difference {d.model_logit:.6f} = sum of {len(d.terms)} terms + bias")
    for term in d.top(5):
        print(f"  {term.name:>12}  {term.value:+.4f}")
    print(f"  {'bias':>12}  {d.constant:+.4f}")
    for suffix in ("md", "tex", "html"):
        print("wrote", d.save(f"{out}/report.{suffix}"))


if __name__ == "__main__":
    main(*sys.argv[1:])
