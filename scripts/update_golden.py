"""Rewrite the golden files the report tests compare against: the demo's Markdown and LaTeX
(docs/demo/, which the README shows) and its HTML with the pictures stripped
(tests/golden/demo-report.html). Run by `make docs`; review the diff before committing. The
tests themselves never write a golden file."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def strip_svg(text: str) -> str:
    return re.sub(r"<svg.*?</svg>", "<svg/>", text, flags=re.S)


def main() -> int:
    import symtrans as st
    from symtrans.models.facts import DEMO_ANSWER, DEMO_PROMPT

    model = st.load_model("tiny-capitals")
    d = st.decompose(model, DEMO_PROMPT, answer=DEMO_ANSWER, split="heads")
    docs = ROOT / "docs" / "demo"
    for suffix in ("md", "tex"):
        print(f"wrote {d.save(docs / f'report.{suffix}')}")
    html = strip_svg(d.to_html())
    golden = ROOT / "tests" / "golden" / "demo-report.html"
    golden.write_text(html)
    print(f"wrote {golden}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
