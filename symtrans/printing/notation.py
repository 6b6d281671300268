"""The notation, read from the one place it is defined: ``templates/symtrans.sty``.

Each ``\\providecommand{\\stX}[n]{body}`` there is a macro the LaTeX printer emits. In
*macro* mode (LaTeX documents that load ``symtrans.sty``) the printer writes ``\\stX{..}``, so
an author restyles the notation in one place; in *plain* mode (Markdown for KaTeX/MathJax,
HTML, ``sympy.latex``) it writes the macro's body with the arguments put in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_DEFINITION = re.compile(r"^\\providecommand\{\\(st[A-Za-z]+)\}(?:\[(\d)\])?\{(.*)\}\s*$")


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
    out = {}
    for line in sty_path().read_text(encoding="utf-8").splitlines():
        match = _DEFINITION.match(line)
        if match:
            name, n_args, body = match.groups()
            out[name] = Macro(name, int(n_args or 0), body)
    return out


def _expand_all(text: str) -> str:
    """Expand every ``\\stX`` (with braced arguments) in ``text`` until none is left."""
    table = macros()
    pattern = re.compile(r"\\(st[A-Za-z]+)(?![A-Za-z])")
    for _ in range(10):  # macros nest a few levels deep at most
        match = pattern.search(text)
        if not match:
            return text
        macro = table[match.group(1)]
        pos = match.end()
        args = []
        for _ in range(macro.n_args):
            if pos >= len(text) or text[pos] != "{":
                raise ValueError(f"\\{macro.name} expects {macro.n_args} braced arguments")
            depth, start = 0, pos
            while True:
                ch = text[pos]
                if ch == "\\":
                    pos += 2
                    continue
                depth += ch == "{"
                depth -= ch == "}"
                pos += 1
                if depth == 0:
                    break
            args.append(text[start + 1 : pos - 1])
        body = macro.body
        for i, arg in enumerate(args, start=1):
            body = body.replace(f"#{i}", arg)
        text = text[: match.start()] + body + text[pos:]
    return text


def render(name: str, *args: str, use_macros: bool) -> str:
    """``\\name{arg}...`` in macro mode; its expansion in plain mode."""
    call = "\\" + name + "".join("{" + a + "}" for a in args)
    return call if use_macros else _expand_all(call)


def expand(text: str) -> str:
    """Expand every symtrans macro in ``text`` (plain mode)."""
    return _expand_all(text)
