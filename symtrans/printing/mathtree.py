"""The math symtrans writes, as a tree: what MathML (HTML) and Typst are printed from.

Every formula symtrans writes is LaTeX in macro form (``\\stEmb{of} + \\stHead{0}{1}{6}``):
the printer's output for expression nodes and the few formulas the reports write by hand.
:func:`parse` reads that LaTeX, with the notation's macros expanded from ``symtrans.sty`` and
token text (``\\stTok``) kept as the token's own characters, into a small tree. It knows
exactly the commands symtrans uses and refuses any other, so a new command cannot reach a
reader half-translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..errors import SymtransError
from .escape import plain_token, unescape_latex_text
from .notation import expand


class MathSyntaxError(SymtransError):
    """A formula uses LaTeX this module does not translate."""


# -- the tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Ident:
    """A variable (``x``, ``\\lambda``: italic when a single letter) or a name set upright
    (``logit``)."""

    text: str
    upright: bool = False


@dataclass(frozen=True)
class Number:
    text: str


@dataclass(frozen=True)
class Op:
    """An operator, relation, delimiter or punctuation mark."""

    text: str
    kind: str = "bin"  # bin, rel, open, close, punct, ord, large
    stretchy: bool = False


@dataclass(frozen=True)
class Text:
    """Text set as text: a token's characters, exactly."""

    text: str


@dataclass(frozen=True)
class Script:
    base: Node
    sub: Node | None = None
    sup: Node | None = None


@dataclass(frozen=True)
class Frac:
    num: Node
    den: Node


@dataclass(frozen=True)
class Sqrt:
    body: Node


@dataclass(frozen=True)
class Accent:
    """A line over or under its body, spanning it (``over``, ``under``), or an accent
    (``hat``, ``grave``)."""

    body: Node
    kind: str


@dataclass(frozen=True)
class Fenced:
    """``\\left( ... \\right)``: delimiters that grow with their body (``""``: none)."""

    open: str
    body: Node
    close: str


@dataclass(frozen=True)
class Space:
    em: float


Node = Row | Ident | Number | Op | Text | Script | Frac | Sqrt | Accent | Fenced | Space


# -- the vocabulary ----------------------------------------------------------------------------

_GREEK = {
    name: chr(code)
    for name, code in {
        "alpha": 0x3B1,
        "beta": 0x3B2,
        "gamma": 0x3B3,
        "delta": 0x3B4,
        "epsilon": 0x3F5,
        "varepsilon": 0x3B5,
        "zeta": 0x3B6,
        "eta": 0x3B7,
        "theta": 0x3B8,
        "iota": 0x3B9,
        "kappa": 0x3BA,
        "lambda": 0x3BB,
        "mu": 0x3BC,
        "nu": 0x3BD,
        "xi": 0x3BE,
        "pi": 0x3C0,
        "rho": 0x3C1,
        "sigma": 0x3C3,
        "tau": 0x3C4,
        "upsilon": 0x3C5,
        "phi": 0x3D5,
        "varphi": 0x3C6,
        "chi": 0x3C7,
        "psi": 0x3C8,
        "omega": 0x3C9,
        "Gamma": 0x393,
        "Delta": 0x394,
        "Theta": 0x398,
        "Lambda": 0x39B,
        "Xi": 0x39E,
        "Pi": 0x3A0,
        "Sigma": 0x3A3,
        "Upsilon": 0x3A5,
        "Phi": 0x3A6,
        "Psi": 0x3A8,
        "Omega": 0x3A9,
        "ell": 0x2113,
    }.items()
}
_SYMBOLS: dict[str, tuple[str, str]] = {
    "odot": ("⊙", "bin"),
    "cdot": ("⋅", "bin"),
    "times": ("×", "bin"),
    "pm": ("±", "bin"),
    "ast": ("∗", "bin"),
    "setminus": ("∖", "bin"),
    "circ": ("∘", "bin"),
    "to": ("→", "rel"),
    "rightarrow": ("→", "rel"),
    "le": ("≤", "rel"),
    "leq": ("≤", "rel"),
    "ge": ("≥", "rel"),
    "geq": ("≥", "rel"),
    "neq": ("≠", "rel"),
    "approx": ("≈", "rel"),
    "sim": ("∼", "rel"),
    "parallel": ("∥", "ord"),
    "perp": ("⊥", "ord"),
    "langle": ("⟨", "open"),
    "rangle": ("⟩", "close"),
    "lbrace": ("{", "open"),
    "rbrace": ("}", "close"),
    "lbrack": ("[", "open"),
    "rbrack": ("]", "close"),
    "vert": ("|", "ord"),
    "lvert": ("|", "open"),
    "rvert": ("|", "close"),
    "backslash": ("\\", "ord"),
    "cdots": ("⋯", "ord"),
    "ldots": ("…", "ord"),
    "dots": ("…", "ord"),
    "infty": ("∞", "ord"),
    "partial": ("∂", "ord"),
    "sum": ("∑", "large"),
    "prime": ("′", "ord"),
}
_SPACES = {
    "quad": 1.0,
    "qquad": 2.0,
    "thinspace": 1 / 6,
    ",": 1 / 6,
    " ": 0.25,
    ";": 5 / 18,
    ":": 2 / 9,
    "!": 0.0,
}
_DELIMITERS = {
    "(": "(",
    ")": ")",
    "[": "[",
    "]": "]",
    ".": "",
    "|": "|",
    "\\langle": "⟨",
    "\\rangle": "⟩",
    "\\vert": "|",
    "\\lvert": "|",
    "\\rvert": "|",
    "\\lbrace": "{",
    "\\rbrace": "}",
    "\\{": "{",
    "\\}": "}",
}
_IGNORED = {"nolimits", "limits", "displaystyle", "textstyle", "relax", "left.", "right."}
_SIZED = {"bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr", "Biggl", "Biggr", "big", "Big"}
_ORD_CHARS = {
    "+": "bin",
    "-": "bin",
    "=": "rel",
    "<": "rel",
    ">": "rel",
    ",": "punct",
    ";": "punct",
    ":": "rel",
    "(": "open",
    ")": "close",
    "[": "open",
    "]": "close",
    "|": "ord",
    "/": "ord",
    "!": "ord",
    "*": "bin",
    "'": "ord",
    ".": "ord",
}

_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d+(?:\.\d+)?|\s+|.", re.S)


@dataclass
class _Parser:
    source: str
    tokens: list[str] = field(default_factory=list)
    pos: int = 0

    def __post_init__(self) -> None:
        self.tokens = _TOKEN.findall(self.source)

    def error(self, what: str) -> MathSyntaxError:
        return MathSyntaxError(
            f"cannot translate {what} in the formula {self.source!r}: symtrans's MathML and "
            "Typst printers know only the LaTeX symtrans writes; add it to "
            "symtrans/printing/mathtree.py"
        )

    def peek(self) -> str | None:
        while self.pos < len(self.tokens) and self.tokens[self.pos].isspace():
            self.pos += 1
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def next(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.error("an unfinished command")
        self.pos += 1
        return tok

    def raw_group(self) -> str:
        """The source of the next braced group, unparsed (for text)."""
        if self.peek() != "{":
            raise self.error("a command without its braced argument")
        self.pos += 1
        depth, out = 1, list[str]()
        while self.pos < len(self.tokens):
            tok = self.tokens[self.pos]
            self.pos += 1
            depth += (tok == "{") - (tok == "}")
            if depth == 0:
                return "".join(out)
            out.append(tok)
        raise self.error("an unclosed group")

    def argument(self) -> Node:
        """A command's argument: a group, or the next atom."""
        return _unwrap(self.atom() or Row(()))

    def row(self, until: str | None = None) -> Row:
        items: list[Node] = []
        while True:
            tok = self.peek()
            if tok is None:
                if until is not None:
                    raise self.error("an unclosed group")
                return Row(tuple(items))
            if tok == until:
                self.pos += 1
                return Row(tuple(items))
            if tok in ("^", "_"):
                self.pos += 1
                base = items.pop() if items else Row(())
                arg = self.atom() or Row(())
                if not isinstance(base, Script):
                    base = Script(base)
                if tok == "_":
                    base = Script(base.base, arg, base.sup)
                else:
                    base = Script(base.base, base.sub, arg)
                items.append(base)
                continue
            if tok == "\\right":
                return Row(tuple(items))
            node = self.atom()
            if node is not None:
                items.append(node)

    def atom(self) -> Node | None:
        """The next atom; None for what prints nothing (``&``, ``\\nolimits``)."""
        tok = self.next()
        if tok == "{":
            return self.row("}")
        if tok == "&":
            return None
        if tok[0].isdigit():
            return Number(tok)
        if tok.isalpha():
            return Ident(tok)
        if tok in _ORD_CHARS:
            return Op("−" if tok == "-" else ("′" if tok == "'" else tok), _ORD_CHARS[tok])
        if not tok.startswith("\\"):
            raise self.error(f"the character {tok!r}")
        name = tok[1:]
        if name in _GREEK:
            return Ident(_GREEK[name], upright=name[0].isupper())
        if name in _SYMBOLS:
            text, kind = _SYMBOLS[name]
            return Op(text, kind)
        if name in _SPACES:
            return Space(_SPACES[name])
        if name in _IGNORED:
            return None
        if name in _SIZED:
            delim = self.next()
            return Op(_DELIMITERS.get(delim, delim), "open" if name.endswith("l") else "close")
        if name in ("stTok", "text"):
            # a token's own characters; raw bytes as <0xC3>, control characters named
            return Text(plain_token(unescape_latex_text(self.raw_group())))
        if name in ("mathrm", "operatorname"):
            return _upright(self.argument())
        if name in ("mathop", "mathord"):
            return self.argument()
        if name == "frac":
            return Frac(self.argument(), self.argument())
        if name == "sqrt":
            return Sqrt(self.argument())
        if name in ("overline", "underline", "hat", "grave"):
            kind = {"overline": "over", "underline": "under"}.get(name, name)
            return Accent(self.argument(), kind)
        if name == "left":
            opening = _DELIMITERS.get(self.next())
            body = self.row()
            if self.next() != "\\right":
                raise self.error("\\left without \\right")
            closing = _DELIMITERS.get(self.next())
            if opening is None or closing is None:
                raise self.error("a delimiter")
            return Fenced(opening, body, closing)
        if name in ("{", "}", "_", "&", "%", "$", "#"):
            return Op(name, "ord")
        raise self.error(f"the command {tok}")


def _unwrap(node: Node) -> Node:
    return node.items[0] if isinstance(node, Row) and len(node.items) == 1 else node


def _upright(node: Node) -> Node:
    """``\\mathrm{logit}``: letters as one upright name."""
    if isinstance(node, Row) and node.items and all(isinstance(i, Ident) for i in node.items):
        return Ident("".join(i.text for i in node.items if isinstance(i, Ident)), upright=True)
    if isinstance(node, Ident):
        return Ident(node.text, upright=True)
    if isinstance(node, Row):
        return Row(tuple(_upright(i) for i in node.items))
    return node


def parse(tex: str) -> Row:
    """The tree of one line of macro-form math (``&`` alignment marks are dropped)."""
    parser = _Parser(expand(tex, keep=("stTok",)))
    return parser.row()


def lines(equation: str) -> list[Row]:
    """Each line of a multi-line formula (``\\\\`` separated)."""
    depth, start, out = 0, 0, []
    i = 0
    while i < len(equation):
        ch = equation[i]
        if ch == "\\" and equation.startswith("\\\\", i) and depth == 0:
            out.append(equation[start:i])
            i += 2
            start = i
            continue
        if ch == "\\":
            i += 2
            continue
        depth += (ch == "{") - (ch == "}")
        i += 1
    out.append(equation[start:])
    return [parse(line) for line in out]


__all__ = ["Node", "Row", "lines", "parse"]
