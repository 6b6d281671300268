"""Typst math of symtrans's math, printed from its tree (:mod:`.mathtree`) by dispatch:
token text as Typst strings (``"<|endoftext|>"``), the notation as Typst's own functions."""

from __future__ import annotations

from functools import singledispatch

from .mathtree import Accent, Fenced, Frac, Ident, Node, Number, Op, Row, Script, Space, Sqrt, parse
from .mathtree import Text as MText

_GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ϵ": "epsilon.alt",
    "ε": "epsilon",
    "ζ": "zeta",
    "η": "eta",
    "θ": "theta",
    "ι": "iota",
    "κ": "kappa",
    "λ": "lambda",
    "μ": "mu",
    "ν": "nu",
    "ξ": "xi",
    "π": "pi",
    "ρ": "rho",
    "σ": "sigma",
    "τ": "tau",
    "υ": "upsilon",
    "ϕ": "phi.alt",
    "φ": "phi",
    "χ": "chi",
    "ψ": "psi",
    "ω": "omega",
    "Γ": "Gamma",
    "Δ": "Delta",
    "Θ": "Theta",
    "Λ": "Lambda",
    "Ξ": "Xi",
    "Π": "Pi",
    "Σ": "Sigma",
    "Υ": "Upsilon",
    "Φ": "Phi",
    "Ψ": "Psi",
    "Ω": "Omega",
    "ℓ": "ell",
}
_OPS = {
    "⊙": "dot.o",
    "⋅": "dot.op",
    "×": "times",
    "±": "plus.minus",
    "∗": "ast",
    "∖": "without",
    "∘": "compose",
    "→": "arrow.r",
    "≤": "lt.eq",
    "≥": "gt.eq",
    "≠": "eq.not",
    "≈": "approx",
    "∼": "tilde.op",
    "∥": "parallel",
    "⊥": "perp",
    "⟨": "chevron.l",
    "⟩": "chevron.r",
    "{": "\\{",
    "}": "\\}",
    "[": "\\[",
    "]": "\\]",
    "(": "\\(",
    ")": "\\)",
    "|": "|",
    "\\": "backslash",
    "⋯": "dots.c",
    "…": "dots.h",
    "∞": "infinity",
    "∂": "partial",
    "∑": "sum",
    "′": "prime",
    "−": "-",
    "/": "\\/",
    ",": "\\,",
    ";": "\\;",
    "*": "ast",
    "!": "!",
    ":": ":",
    "<": "<",
    ">": ">",
    "=": "=",
    "+": "+",
    ".": ".",
    "'": "prime",
    "_": "\\_",
    "&": "\\&",
    "%": "%",
    "$": "\\$",
    "#": "\\#",
}
_DELIMS = {
    "(": "(",
    ")": ")",
    "[": "[",
    "]": "]",
    "⟨": "chevron.l",
    "⟩": "chevron.r",
    "|": "|",
    "{": "{",
    "}": "}",
    "": "",
}


@singledispatch
def node(n: Node) -> str:
    raise TypeError(f"no Typst for {type(n).__name__}")


@node.register
def _(n: Row) -> str:
    return " ".join(node(i) for i in n.items)


@node.register
def _(n: Ident) -> str:
    if n.text in _GREEK:
        name = _GREEK[n.text]
        return f"upright({name})" if n.upright and n.text.islower() else name
    if len(n.text) == 1 and not n.upright:
        return n.text
    return f'upright("{n.text}")'


@node.register
def _(n: Number) -> str:
    return n.text


@node.register
def _(n: Op) -> str:
    return _OPS.get(n.text, n.text)


def string(text: str) -> str:
    """A Typst string literal of ``text`` (shown as text in math)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@node.register
def _(n: MText) -> str:
    return string(n.text)


def _group(n: Node | None) -> str:
    body = node(n) if n is not None else ""
    return f"({body})"


@node.register
def _(n: Script) -> str:
    base = node(n.base)
    if isinstance(n.base, Row) and len(n.base.items) != 1:
        base = f"#box[${base}$]" if n.base.items else '""'
    out = base
    if n.sub is not None:
        out += "_" + _group(n.sub)
    if n.sup is not None:
        out += "^" + _group(n.sup)
    return out


@node.register
def _(n: Frac) -> str:
    return f"frac({node(n.num)}, {node(n.den)})"


@node.register
def _(n: Sqrt) -> str:
    return f"sqrt({node(n.body)})"


@node.register
def _(n: Accent) -> str:
    name = {"over": "overline", "under": "underline"}.get(n.kind, n.kind)
    return f"{name}({node(n.body)})"


@node.register
def _(n: Fenced) -> str:
    left, right = _DELIMS[n.open], _DELIMS[n.close]
    if not left and not right:
        return node(n.body)
    return f"lr({left} {node(n.body)} {right})"


@node.register
def _(n: Space) -> str:
    if n.em >= 2:
        return "wide"
    if n.em >= 1:
        return "quad"
    return "thin" if n.em > 0 else ""


def typst_math(tex: str) -> str:
    """Typst math (without ``$``) of one line of macro-form math; ``&`` alignment marks kept."""
    parts = []
    for i, piece in enumerate(_split_amp(tex)):
        if i:
            parts.append("&")
        parts.append(node(parse(piece)))
    return " ".join(p for p in parts if p)


def _split_amp(tex: str) -> list[str]:
    """Split at top-level ``&`` (not ``\\&``)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        ch = tex[i]
        if ch == "\\":
            i += 2
            continue
        depth += (ch == "{") - (ch == "}")
        if ch == "&" and depth == 0:
            out.append(tex[start:i])
            start = i + 1
        i += 1
    out.append(tex[start:])
    return out
