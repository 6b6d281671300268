"""Breaking long sums into lines that fit a column; the verification line's parts."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..printing.notation import expand

if TYPE_CHECKING:
    from .document import Document

_COMMAND = re.compile(r"\\[A-Za-z]+")
_SCRIPT = re.compile(r"[_^]\{([^{}]*)\}")


def text_width(latex: str) -> float:
    """A rough display width of a LaTeX snippet in 'characters' (scripts count 0.6),
    symtrans macros expanded first."""
    text = _SCRIPT.sub(lambda m: "\x00" * math.ceil(0.6 * len(m.group(1))), expand(latex))
    text = re.sub(r"\\(text|mathrm|texttt)\{", "{", text)
    text = _COMMAND.sub("\x01", text)  # a command is about one glyph (\lambda, \langle)
    for zero in ("{", "}", "\\,", " "):
        text = text.replace(zero, "")
    return float(len(text))


def break_sum(lhs: str, terms: list[str], budget: float, relation: str = "=") -> list[str]:
    """``lhs = t1 + t2 + ...`` as lines of at most ``budget`` width (a term longer than the
    budget gets a line of its own). Each term carries its own leading sign (``+ t``/``- t``)
    except the first. Lines are for an ``aligned``/``align*`` block: the first starts
    ``lhs &= ``, the others ``&\\quad ``."""
    lines: list[list[str]] = [[]]
    used = text_width(lhs) + 2
    if used > budget / 2.5:  # a long left side gets a line of its own
        lines = [[], []]
        used = 3
    for term in terms:
        w = text_width(term) + 1
        if lines[-1] and used + w > budget:
            lines.append([])
            used = 3
        lines[-1].append(term)
        used += w
    out = []
    own_line = not lines[0]
    for i, parts in enumerate(lines):
        body = " ".join(parts)
        if i == 0:
            # A long left side goes first, left-aligned with the lines below it.
            out.append(f"&{lhs}" if own_line else f"{lhs} &{relation} {body}")
        elif i == 1 and own_line:
            out.append(rf"&\quad {relation} {body}")
        else:
            out.append((r"&\qquad " if own_line else r"&\quad ") + body)
    return out


def signed_terms(terms: list[str]) -> list[str]:
    """``[a, b, c]`` -> ``[a, + b, + c]`` (a term already starting with ``-`` keeps it)."""
    out = []
    for i, t in enumerate(terms):
        if i == 0 or t.startswith("-"):
            out.append(t if i == 0 or not t.startswith("-") else "- " + t[1:].lstrip())
        else:
            out.append("+ " + t)
    return out


def verdict(doc: Document, passed: str, failed: str) -> str:
    """``passed`` or ``failed`` as the document's check says ("" without one)."""
    if doc.verification is None:
        return ""
    return passed if doc.verification.check.passed else failed


def check_context(
    doc: Document, number: Callable[[float, int], str], escape: Callable[[str], str]
) -> dict[str, object] | None:
    """The verification line's parts for a template: numbers written by ``number(value,
    digits)``, text by ``escape``."""
    if doc.verification is None:
        return None
    v = doc.verification
    c = v.check
    return {
        "what": escape(v.what),
        "value": escape(v.value),
        "reference": escape(v.reference),
        "passed": c.passed,
        "total": number(c.total, 12),
        "model_logit": number(c.model_logit, 12),
        "difference": number(c.difference, 3),
        "tolerance": number(c.tolerance, 3),
    }
