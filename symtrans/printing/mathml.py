"""Presentation MathML of symtrans's math, printed from its tree (:mod:`.mathtree`) by
dispatch: token text is plain text in ``<mtext>``, and a line over or under a word spans the
word (drawn as a border of the word's box, which needs no stretchy glyph from a math font)."""

from __future__ import annotations

from functools import singledispatch
from html import escape

from .mathtree import (
    Accent,
    Fenced,
    Frac,
    Ident,
    Node,
    Number,
    Op,
    Row,
    Script,
    Space,
    Sqrt,
    lines,
    parse,
)
from .mathtree import Text as MText

_LINE = {
    "over": "border-top:0.065em solid;padding-top:0.08em",
    "under": "border-bottom:0.065em solid;padding-bottom:0.08em",
}
_ACCENT = {"hat": "^", "grave": "`"}


def _e(text: str) -> str:
    return escape(text, quote=True)


@singledispatch
def node(n: Node) -> str:
    raise TypeError(f"no MathML for {type(n).__name__}")


@node.register
def _(n: Row) -> str:
    return "<mrow>" + "".join(node(i) for i in n.items) + "</mrow>"


@node.register
def _(n: Ident) -> str:
    variant = ' mathvariant="normal"' if n.upright and len(n.text) == 1 else ""
    return f"<mi{variant}>{_e(n.text)}</mi>"


@node.register
def _(n: Number) -> str:
    return f"<mn>{_e(n.text)}</mn>"


@node.register
def _(n: Op) -> str:
    attrs = ""
    if n.kind in ("open", "close") or n.text == "|":
        attrs = ' stretchy="false" lspace="0" rspace="0"'
    if n.kind == "large":
        attrs = ' largeop="true" movablelimits="true"'
    if n.kind == "ord" and n.text not in "|":
        attrs += ' lspace="0" rspace="0"'
    return f"<mo{attrs}>{_e(n.text)}</mo>"


@node.register
def _(n: MText) -> str:
    # spaces of a token kept: MathML collapses ordinary ones
    return "<mtext>" + _e(n.text).replace(" ", "\u00a0") + "</mtext>"


@node.register
def _(n: Script) -> str:
    base = node(n.base)
    under = isinstance(n.base, Op) and n.base.kind == "large"
    if n.sub is not None and n.sup is not None:
        tag = "munderover" if under else "msubsup"
        return f"<{tag}>{base}{node(n.sub)}{node(n.sup)}</{tag}>"
    if n.sub is not None:
        tag = "munder" if under else "msub"
        return f"<{tag}>{base}{node(n.sub)}</{tag}>"
    if n.sup is not None:
        tag = "mover" if under else "msup"
        return f"<{tag}>{base}{node(n.sup)}</{tag}>"
    return base


@node.register
def _(n: Frac) -> str:
    return f"<mfrac>{node(n.num)}{node(n.den)}</mfrac>"


@node.register
def _(n: Sqrt) -> str:
    return f"<msqrt>{node(n.body)}</msqrt>"


@node.register
def _(n: Accent) -> str:
    if n.kind in _LINE:
        return f'<mrow class="st-{n.kind}" style="{_LINE[n.kind]}">{node(n.body)}</mrow>'
    return f'<mover accent="true">{node(n.body)}<mo>{_ACCENT[n.kind]}</mo></mover>'


@node.register
def _(n: Fenced) -> str:
    tag = '<mo fence="true" stretchy="true" lspace="0" rspace="0">'
    left = f"{tag}{_e(n.open)}</mo>" if n.open else ""
    right = f"{tag}{_e(n.close)}</mo>" if n.close else ""
    return f"<mrow>{left}{node(n.body)}{right}</mrow>"


@node.register
def _(n: Space) -> str:
    return f'<mspace width="{n.em:.3f}em"/>'


def mathml(tex: str, display: bool = True) -> str:
    """``<math>`` of one line of macro-form math."""
    mode = "block" if display else "inline"
    return f'<math display="{mode}">{node(parse(tex))}</math>'


def mathml_lines(tex: str) -> list[str]:
    """One ``<math display="block">`` per line of a multi-line formula."""
    return [f'<math display="block">{node(row)}</math>' for row in lines(tex)]
