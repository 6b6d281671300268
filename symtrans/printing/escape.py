"""Token strings are data, never markup: escaping for LaTeX, Markdown math, Markdown text and
HTML, one function per target.

- :func:`latex_text`: text-mode LaTeX. Pure ASCII, so no token can break a pdflatex run or
  reach the TeX input processor (``^^5c``, ``\\catcode``, ``\\input`` and ``\\write18`` come
  out as their letters). With ``macros=True`` (documents that load ``symtrans.sty``) each
  character outside ASCII becomes a macro that prints it as text where the font encoding
  allows (Latin accents in any encoding; Greek where LGR is declared, Cyrillic where T2A is),
  the character itself under LuaTeX/XeTeX, and its code point otherwise.
  :func:`unescape_latex_text` is its exact inverse.
- :func:`math_text`: token text inside math that KaTeX, MathJax 2 and 3 (base and ams),
  amsmath and a GFM Markdown renderer all read the same way: plain characters in ``\\text``,
  the others as math commands whose names are letters only (GFM consumes a backslash before
  punctuation, ``\\_`` or ``\\{``).
- :func:`markdown_text`, :func:`markdown_code`, :func:`visible_token`: Markdown and HTML text.

A byte-level BPE token that is not a whole UTF-8 character arrives with its bytes kept as
lone surrogates (U+DC80 to U+DCFF, Python's ``surrogateescape``); every target prints such a
byte as ``<0xC3>``, so distinct sub-tokens stay distinct.
"""

from __future__ import annotations

import re
import unicodedata

# -- characters -----------------------------------------------------------------------------


def raw_byte(ch: str) -> int | None:
    """The byte a lone surrogate U+DC80..U+DCFF stands for (``surrogateescape``), else None."""
    code = ord(ch)
    return code - 0xDC00 if 0xDC80 <= code <= 0xDCFF else None


def is_control(ch: str) -> bool:
    """Control, format, unassigned and private-use characters: shown as code points."""
    return unicodedata.category(ch)[0] == "C" and raw_byte(ch) is None


def byte_text(ch: str) -> str:
    """``<0xC3>``: how a raw byte reads in every format."""
    return f"<0x{raw_byte(ch):02X}>"


# Text-mode LaTeX for the combining accents that OT1 and T1 both compose (``\\k`` ogonek is
# T1-only and left out).
_ACCENTS = {
    "0300": "`",
    "0301": "'",
    "0302": "^",
    "0303": "~",
    "0304": "=",
    "0306": "u",
    "0307": ".",
    "0308": '"',
    "030A": "r",
    "030B": "H",
    "030C": "v",
    "0323": "d",
    "0327": "c",
    "0331": "b",
}
# Letters OT1 and T1 both have (or build).
_LETTERS = {
    "ß": r"\ss",
    "æ": r"\ae",
    "Æ": r"\AE",
    "ø": r"\o",
    "Ø": r"\O",
    "œ": r"\oe",
    "Œ": r"\OE",
    "å": r"\aa",
    "Å": r"\AA",
    "ł": r"\l",
    "Ł": r"\L",
    "ı": r"\i",
    "ȷ": r"\j",
}


def _latin(ch: str) -> str | None:
    """``\\"u`` for ü: a Latin letter with one accent, or a letter OT1 has."""
    if ch in _LETTERS:
        return _LETTERS[ch]
    parts = unicodedata.decomposition(ch).split()
    if len(parts) != 2 or parts[1] not in _ACCENTS:
        return None
    base = chr(int(parts[0], 16))
    if not ("A" <= base <= "Z" or "a" <= base <= "z"):
        return None
    accent = _ACCENTS[parts[1]]
    body = r"\i" if base == "i" and parts[1] < "0320" else base  # an accent above i drops its dot
    sep = "" if accent in "`'^~=.\"" else " "
    return f"\\{accent}{sep}{{{body}}}" if body.startswith("\\") else f"\\{accent}{sep}{body}"


_GREEK = {
    "ALPHA": "alpha",
    "BETA": "beta",
    "GAMMA": "gamma",
    "DELTA": "delta",
    "EPSILON": "epsilon",
    "ZETA": "zeta",
    "ETA": "eta",
    "THETA": "theta",
    "IOTA": "iota",
    "KAPPA": "kappa",
    "LAMDA": "lambda",
    "MU": "mu",
    "NU": "nu",
    "XI": "xi",
    "OMICRON": "omicron",
    "PI": "pi",
    "RHO": "rho",
    "SIGMA": "sigma",
    "FINAL SIGMA": "finalsigma",
    "TAU": "tau",
    "UPSILON": "upsilon",
    "PHI": "phi",
    "CHI": "chi",
    "PSI": "psi",
    "OMEGA": "omega",
}
# The LICR names of T2A (t2aenc.def) for Russian, Ukrainian and Belarusian letters.
_CYRILLIC = {
    "A": "a",
    "BE": "b",
    "VE": "v",
    "GHE": "g",
    "DE": "d",
    "IE": "e",
    "ZHE": "zh",
    "ZE": "z",
    "I": "i",
    "SHORT I": "ishrt",
    "KA": "k",
    "EL": "l",
    "EM": "m",
    "EN": "n",
    "O": "o",
    "PE": "p",
    "ER": "r",
    "ES": "s",
    "TE": "t",
    "U": "u",
    "EF": "f",
    "HA": "h",
    "TSE": "c",
    "CHE": "ch",
    "SHA": "sh",
    "SHCHA": "shch",
    "HARD SIGN": "hrdsn",
    "YERU": "ery",
    "SOFT SIGN": "sftsn",
    "E": "erev",
    "YU": "yu",
    "YA": "ya",
    "IO": "yo",
    "UKRAINIAN IE": "ie",
    "BYELORUSSIAN-UKRAINIAN I": "ii",
    "YI": "yi",
    "GHE WITH UPTURN": "gup",
    "SHORT U": "ushrt",
}


_GREEK_ACCENTS = {"0301": "'", "0300": "`", "0308": '"'}  # tonos/oxia, varia, dialytika


def _encoded(ch: str) -> tuple[str, str] | None:
    """``("LGR", "\\textalpha")``: a Greek or Cyrillic letter's font encoding and command
    (a Greek letter with tonos or dialytika as LGR's accent on it)."""
    parts = unicodedata.decomposition(ch).split()
    if len(parts) == 2 and parts[1] in _GREEK_ACCENTS:
        base = _encoded(chr(int(parts[0], 16)))
        if base is not None and base[0] == "LGR":
            return "LGR", "\\" + _GREEK_ACCENTS[parts[1]] + base[1]
    name = unicodedata.name(ch, "")
    for prefix, encoding in (("GREEK ", "LGR"), ("CYRILLIC ", "T2A")):
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix) :]
        for case in ("SMALL LETTER ", "CAPITAL LETTER "):
            if rest.startswith(case):
                letter = rest[len(case) :]
                upper = case.startswith("CAPITAL")
                if encoding == "LGR" and letter in _GREEK:
                    word = _GREEK[letter]
                    return encoding, r"\text" + (word.capitalize() if upper else word)
                if encoding == "T2A" and letter in _CYRILLIC:
                    return encoding, "\\" + (
                        "CYR" + _CYRILLIC[letter].upper() if upper else "cyr" + _CYRILLIC[letter]
                    )
    return None


# -- LaTeX text -----------------------------------------------------------------------------

# Each works in text mode in OT1 and T1 alike, so no glyph needs cm-super: ``< > |`` and the
# backslash and braces come from the math fonts (LaTeX's defaults for OT1).
_LATEX_TEXT = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\textasciicircum{}",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "%": r"\%",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
# Straight quotes and the grave accent as themselves (symtrans.sty draws them from OT1
# typewriter glyphs, which every installation has as Type 1).
_QUOTES = {"'": r"\stQuote{}", '"': r"\stDquote{}", "`": r"\stGrave{}"}
# A character that starts a ligature (-- --- ,, !` ?` '') is closed with {} to stay itself.
_LIGATURE_START = set("-,!?`'")


def latex_text(text: str, macros: bool = False, visible_spaces: bool = False) -> str:
    """``text`` as the body of ``\\text{...}`` (or any text-mode group), printed as itself.

    ``macros=True``: for documents that load symtrans.sty (each non-ASCII character a macro
    that picks the best form at compile time). ``macros=False``: plain LaTeX for any document
    (Latin accents as accent commands, every other character as ``[U+XXXX]``)."""
    out = []
    for ch in text:
        if macros and ch in _QUOTES:
            out.append(_QUOTES[ch])
        elif ch in _LIGATURE_START:
            out.append(ch + "{}")
        elif ch in _LATEX_TEXT:
            out.append(_LATEX_TEXT[ch])
        elif ch == " ":
            out.append(r"\stSpace{}" if visible_spaces and macros else " ")
        elif " " < ch <= "~":
            out.append(ch)
        else:
            out.append(_latex_char(ch, macros))
    return "".join(out)


def _latex_char(ch: str, macros: bool) -> str:
    code = f"{ord(ch):04X}"
    byte = raw_byte(ch)
    if byte is not None:
        if macros:
            return rf"\stByte{{{byte:02X}}}"
        return r"\textless{}0x" + f"{byte:02X}" + r"\textgreater{}"
    if is_control(ch) or unicodedata.category(ch) == "Cs":
        return rf"\stCode{{{code}}}" if macros else f"[U+{code}]"
    latin = _latin(ch)
    if latin is not None:
        return rf"\stChar{{{code}}}{{{latin}}}" if macros else latin
    encoded = _encoded(ch) if macros else None
    if encoded is not None:
        return rf"\stEnc{{{code}}}{{{encoded[0]}}}{{{encoded[1]}}}"
    return rf"\stU{{{code}}}" if macros else f"[U+{code}]"


_UNESCAPE = re.compile(
    r"\\st(Char|Enc|U|Code)\{([0-9A-F]{4,6})\}"  # a code point (further arguments skipped)
    r"|\\stByte\{([0-9A-F]{2})\}"
    r"|\\(stSpace|stQuote|stDquote|stGrave|text[a-z]+)\{\}"
    r"|\\([{}$&#_%])"
    r"|([-,!?`'])\{\}"
    r"|(.)",
    re.S,
)
_NAMED = {
    "stSpace": " ",
    **{v[1:-2]: k for k, v in _LATEX_TEXT.items() if v.endswith("{}")},
    **{v[1:-2]: k for k, v in _QUOTES.items()},
}


def group_end(text: str, pos: int) -> int:
    """The position after the braced group that starts at ``pos``."""
    if pos >= len(text) or text[pos] != "{":
        raise ValueError(f"expected a braced group at {pos} in {text!r}")
    depth = 0
    while True:
        ch = text[pos]
        if ch == "\\":
            pos += 2
            continue
        depth += (ch == "{") - (ch == "}")
        pos += 1
        if depth == 0:
            return pos


def unescape_latex_text(text: str) -> str:
    """The string :func:`latex_text` (``macros=True``) was given: its exact inverse."""
    out, pos = [], 0
    while pos < len(text):
        m = _UNESCAPE.match(text, pos)
        assert m is not None
        pos = m.end()
        macro, code, byte, name, escaped, ligature, plain = m.groups()
        if code is not None:
            out.append(chr(int(code, 16)))
            for _ in range({"Char": 1, "Enc": 2}.get(macro, 0)):
                pos = group_end(text, pos)
        elif byte is not None:
            out.append(chr(0xDC00 + int(byte, 16)))
        elif name is not None:
            out.append(_NAMED[name])
        else:
            out.append(escaped or ligature or plain)
    return "".join(out)


# -- math -----------------------------------------------------------------------------------

# Characters \text{} shows as themselves in KaTeX, MathJax and LaTeX.
_TEXT_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?()/+=@'\"-")
# Characters with a math command every engine has, whose name survives GFM.
_MATH_COMMAND = {
    "\\": r"\backslash ",
    "{": r"\lbrace ",
    "}": r"\rbrace ",
    "[": r"\lbrack ",
    "]": r"\rbrack ",
    "|": r"\vert ",
    "<": r"\mathord{<}",
    ">": r"\mathord{>}",
    "*": r"\ast ",
    "~": r"\sim ",
    "_": r"\underline{\ }",
    "^": r"\hat{\ }",
    "`": r"\grave{\ }",
}


def math_text(text: str) -> str:
    """Token text as math that reads the same in KaTeX, MathJax 2/3, amsmath and after a GFM
    renderer (``$ % & #`` and control characters, which no engine agrees on, as their code
    points)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append(r"\text{" + "".join(run) + "}")
            run.clear()

    for ch in text:
        if ch in "-'," and run and run[-1] == ch:
            flush()  # -- '' ,, each in its own \text{}: no ligature, and no {} inside
            run.append(ch)
        elif ch in _TEXT_SAFE or (
            ord(ch) > 127
            and not is_control(ch)
            and raw_byte(ch) is None
            and unicodedata.category(ch) != "Cs"
        ):
            run.append(ch)
        else:
            flush()
            byte = raw_byte(ch)
            if ch in _MATH_COMMAND:
                out.append(_MATH_COMMAND[ch])
            elif byte is not None:
                out.append(rf"\mathord{{<}}\text{{0x{byte:02X}}}\mathord{{>}}")
            else:
                # MathJax shows braces inside \text as braces: the code point has none
                out.append(rf"\text{{U+{ord(ch):04X}}}")
    flush()
    return "".join(out).rstrip() or r"\text{}"


# -- Markdown and HTML ----------------------------------------------------------------------


def visible_token(token: str) -> str:
    """A token with its spaces made visible (``␣``), control characters named (``U+000A``)
    and raw bytes shown (``<0xC3>``), for Markdown code spans and HTML."""
    out = []
    for ch in token:
        if ch == " ":
            out.append("␣")
        elif raw_byte(ch) is not None:
            out.append(byte_text(ch))
        elif is_control(ch) or unicodedata.category(ch) == "Cs":
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def plain_token(token: str) -> str:
    """A token as plain text (spaces kept): raw bytes as ``<0xC3>``, control characters
    named."""
    return "".join(" " if ch == " " else visible_token(ch) for ch in token)


# Mid-line, only these can start markup (links need "[", images "![", headings and lists a
# line start, which a token in running text never is: newlines are named, not kept).
_MARKDOWN_SPECIAL = set("\\`*_{}[]|~$")


def markdown_text(text: str) -> str:
    """``text`` as inline Markdown that renders literally: specials backslash-escaped,
    ``< > &`` as entities (never raw HTML), control characters named, newlines kept out."""
    out = []
    for ch in plain_token(text):
        if ch in _MARKDOWN_SPECIAL:
            out.append("\\" + ch)
        elif ch in "<>&":
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def markdown_code(text: str, in_table: bool = False) -> str:
    """``text`` as a Markdown code span (literal by definition), fenced by more backticks
    than it contains, with spaces shown as ``␣``. In a table cell a ``|`` would end the cell
    even inside a code span (GFM), so it is written ``\\|`` there."""
    body = visible_token(text)
    if in_table:
        body = body.replace("|", "\\|")
    longest = run = 0
    for ch in body:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{fence}{pad}{body}{pad}{fence}"
