"""The PDF without TeX against the LaTeX one: for each report of the embedded model, the time
to write the PDF, its pages and size, its fonts, and how much of the LaTeX PDF's text (words
and numbers, pdftotext) the Typst PDF has. Both measured in the same run.

    python benchmarks/typst_vs_latex.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def pdf_facts(pdf: Path) -> tuple[int, int, set[str], str]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    words = set(re.findall(r"[A-Za-z_]{3,}|−?\d+\.\d+", text))
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True).stdout
    kinds = sorted({m for m in re.findall(r"(Type 1C?|Type 3|TrueType|CID Type 0C)", fonts)})
    return pages, pdf.stat().st_size, words, ", ".join(kinds)


def main() -> int:
    import torch

    import symtrans as st
    from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT

    model = st.load_model("tiny-capitals", dtype=torch.float64)
    d = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")
    results = {
        "decomposition (heads)": (d, 12),
        "decomposition (neurons, 100 rows)": (
            st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="neurons"),
            100,
        ),
        "logit lens": (st.logit_lens(model, DEMO_PROMPT, DEMO_ANSWER), 12),
        "paths": (d.expand_head(model, "L1H0", depth=2), 12),
    }
    print("| report | engine | seconds | pages | KB | fonts | LaTeX words also in Typst |")
    print("|---|---|---:|---:|---:|---|---:|")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for label, (result, top_k) in results.items():
            facts = {}
            for engine in ("pdflatex", "typst"):
                path = folder / f"{engine}.pdf"
                start = time.perf_counter()
                result.save(path, top_k=top_k, engine=engine)
                seconds = time.perf_counter() - start
                facts[engine] = (seconds, *pdf_facts(path))
            reference = facts["pdflatex"][3]
            for engine, (seconds, pages, size, words, fonts) in facts.items():
                shared = len(reference & words) / len(reference)
                print(
                    f"| {label} | {engine} | {seconds:.2f} | {pages} | {size / 1024:.0f} | "
                    f"{fonts} | {shared:.0%} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
