"""Math as readers see it: typeset with KaTeX and MathJax 3 (npm ``katex``, ``mathjax-full``;
TeX input with MathJax's default base and ams packages), the text of the resulting MathML,
and what a GFM Markdown renderer leaves of a Markdown document's math."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
TOOLS = {"katex": "katex_check.js", "mathjax": "mathjax_check.js"}
PACKAGES = {"katex": "katex", "mathjax": "mathjax-full"}


def typeset(items: list[tuple[str, bool]], engine: str) -> list[dict[str, str]]:
    """Each ``(tex, display)`` typeset by ``engine``: ``{"mathml": ...}`` or ``{"error": ...}``."""
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / PACKAGES[engine]).is_dir():
        pytest.fail(f"{PACKAGES[engine]} is not installed: `make test` runs `npm ci` (node, npm)")
    done = subprocess.run(
        [node, str(ROOT / "tests" / "tools" / TOOLS[engine])],
        input=json.dumps([{"tex": t, "display": d} for t, d in items]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    return list(json.loads(done.stdout))


def errors(items: list[tuple[str, bool]], engine: str) -> list[tuple[str, str]]:
    return [
        (tex, r["error"])
        for (tex, _), r in zip(items, typeset(items, engine), strict=True)
        if "error" in r
    ]


# The glyphs engines choose for a character that is not itself in math
_SAME = str.maketrans(
    {
        "∗": "*",
        "∼": "~",
        "−": "-",
        "\u00a0": " ",
        "ˆ": "^",
        "\u02cb": "`",
        "‾": "_",
        "\u2061": "",
        "\u2062": "",
        "\u2063": "",
        "\u2009": "",
    }
)


def _accent(text: str) -> bool:
    """A spacing accent (¨ ´ ˋ ˆ ˜ ...), as KaTeX sets over a letter of \\text."""
    return len(text) == 1 and (unicodedata.category(text) in ("Sk", "Lm") or text == "~")


def _text(element: ET.Element) -> str:
    tag = element.tag.rsplit("}", 1)[-1]
    if tag == "annotation":
        return ""
    if tag in ("mi", "mn", "mo", "mtext"):
        return "".join(element.itertext())
    children = [_text(child) for child in element]
    if tag == "mover" and len(children) == 2 and children[0].strip() and _accent(children[1]):
        return children[0]  # an accent over a letter (KaTeX's \text{À}): the letter
    return "".join(children)


def leaves(mathml: str) -> str:
    """The text a MathML tree shows, in order: its token elements (mi, mn, mo, mtext)."""
    start, end = mathml.find("<math"), mathml.rfind("</math>")
    root = ET.fromstring(mathml[start : end + len("</math>")])
    return _text(root).translate(_SAME)


def math_blocks(markdown: str) -> list[tuple[str, bool]]:
    """Every ``$$ ... $$`` and ``$...$`` of a Markdown document: (tex, display)."""
    display = [(m, True) for m in re.findall(r"\$\$\n(.*?)\n\$\$", markdown, flags=re.S)]
    rest = re.sub(r"\$\$\n.*?\n\$\$", "", markdown, flags=re.S)
    inline = [(m, False) for m in re.findall(r"(?<![\\$])\$([^$\n]+?)(?<!\\)\$", rest)]
    return display + inline


# GFM: CommonMark with tables and strikethrough (its autolinks need a package of their own
# and never touch math)
_gfm = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def mangled_by_gfm(markdown: str) -> list[str]:
    """The math of ``markdown`` that a GFM renderer without a math extension changes (its
    text is not in the rendered page as written): what MathJax running over that page, or a
    site that renders Markdown first and math second, would get wrong."""
    page = html.unescape(re.sub(r"<[^>]+>", "\x00", _gfm.render(markdown)))
    return [tex for tex, _ in math_blocks(markdown) if tex not in page]
