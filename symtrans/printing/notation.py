"""The notation, read from the one place it is defined: ``templates/symtrans.sty``.

Each ``\\providecommand{\\stX}[n]{body}`` there is a macro the LaTeX printer emits. In
*macro* form (LaTeX documents that load ``symtrans.sty``) math is written ``\\stX{..}``, so
an author restyles the notation in one place. :func:`plain` writes the same math for every
other reader (KaTeX, MathJax, amsmath, a GFM renderer): each macro replaced by its body, and
token text (``\\stTok``) rewritten by :func:`~symtrans.printing.escape.math_text`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .escape import group_end, math_text, unescape_latex_text

_DEFINITION = re.compile(r"^\\providecommand\{\\(st[A-Za-z]+)\}(?:\[(\d)\])?\{(.*)\}\s*(?:%.*)?$")
_CALL = re.compile(r"\\(st[A-Za-z]+)(?![A-Za-z])")


@dataclass(frozen=True)
class Macro:
    name: str
    n_args: int
    body: str


def sty_path() -> Path:
    """The shipped ``symtrans.sty``."""
    from ..templates import template_dir

    return template_dir() / "symtrans.sty"


@lru_cache(maxsize=1)
def macros() -> dict[str, Macro]:
    """The one-line macros of symtrans.sty (the notation), by name."""
    out = {}
    for line in sty_path().read_text(encoding="utf-8").splitlines():
        match = _DEFINITION.match(line)
        if match:
            name, n_args, body = match.groups()
            out[name] = Macro(name, int(n_args or 0), body.rstrip())
    return out


def arguments(text: str, pos: int, n: int) -> tuple[list[str], int]:
    """``n`` braced arguments starting at ``pos``: their bodies and the position after them."""
    args = []
    for _ in range(n):
        end = group_end(text, pos)
        args.append(text[pos + 1 : end - 1])
        pos = end
    return args, pos


def expand(text: str, keep: Collection[str] = ()) -> str:
    """Expand every symtrans macro in ``text``, leaving the macros named in ``keep`` (and
    their arguments) as they are."""
    table = macros()
    out, pos = [], 0
    while True:
        match = _CALL.search(text, pos)
        if match is None:
            out.append(text[pos:])
            return "".join(out)
        out.append(text[pos : match.start()])
        name = match.group(1)
        macro = table.get(name)
        if macro is None or name in keep:
            n = macro.n_args if macro is not None else 0
            _, end = arguments(text, match.end(), n)
            out.append(text[match.start() : end])
            pos = end
            continue
        args, end = arguments(text, match.end(), macro.n_args)
        body = macro.body
        for i, arg in enumerate(args, start=1):
            body = body.replace(f"#{i}", arg)
        out.append(expand(body, keep))
        pos = end


def plain(tex: str) -> str:
    """Macro-form math as plain math: macros expanded, token text written by
    :func:`~symtrans.printing.escape.math_text`."""
    text = expand(tex, keep=("stTok",))
    out, pos = [], 0
    while (start := text.find(r"\stTok{", pos)) >= 0:
        out.append(text[pos:start])
        (arg,), pos = arguments(text, start + len(r"\stTok"), 1)
        out.append(math_text(unescape_latex_text(arg)))
    out.append(text[pos:])
    return "".join(out)


def tokens_in(tex: str) -> list[str]:
    """The token strings of the ``\\stTok{...}`` groups in macro-form math."""
    found, pos = [], 0
    text = expand(tex, keep=("stTok",))
    while (start := text.find(r"\stTok{", pos)) >= 0:
        (arg,), pos = arguments(text, start + len(r"\stTok"), 1)
        found.append(unescape_latex_text(arg))
    return found


def render(name: str, *args: str, use_macros: bool) -> str:
    """``\\name{arg}...`` in macro form; :func:`plain` of it otherwise."""
    call = "\\" + name + "".join("{" + a + "}" for a in args)
    return call if use_macros else plain(call)
