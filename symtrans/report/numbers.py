"""The one number formatter of every report and format.

A column of numbers is written with one :class:`Form` (fixed decimals, or scientific when its
largest magnitude is tiny or huge), so its decimal markers align: siunitx ``\\tablenum`` in
LaTeX, tabular figures right-aligned in HTML, Markdown and Typst. Every format gets true minus
signs (``−`` in text, ``-`` in math, which TeX, KaTeX and MathJax set as a minus). A single
number uses the same rules (:func:`form_of`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

MINUS = "\u2212"
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
# Below this largest magnitude (or at and above HUGE) a column is scientific: fixed decimals
# would print a spread of tiny numbers as 0.0000000000000000178.
TINY = 1e-4
HUGE = 1e7
# Significant digits of a table column's largest number.
TABLE_DIGITS = 5


@dataclass(frozen=True)
class Form:
    """How a column's numbers are written: ``decimals`` after the marker (of the mantissa
    when ``scientific``); ``integers``: digits before it; ``exponent``: digits of the largest
    exponent; ``signed``: whether any value is negative (room for the sign)."""

    decimals: int
    scientific: bool = False
    integers: int = 1
    exponent: int = 1
    signed: bool = True

    def table_format(self) -> str:
        """siunitx's ``table-format`` (``-2.3``, ``-1.2e-2``)."""
        sign = "-" if self.signed else ""
        body = f"{sign}{self.integers}" + (f".{self.decimals}" if self.decimals else "")
        return body + (f"e-{self.exponent}" if self.scientific else "")


@dataclass(frozen=True)
class Parts:
    """A number written in a :class:`Form`: ``-``, ``0.790``, exponent ``None`` or ``-16``."""

    negative: bool
    mantissa: str
    exponent: int | None

    def text(self) -> str:
        """``−0.790``, ``1.78×10⁻¹⁵``: for HTML, Markdown, Typst and plain text."""
        body = self.mantissa
        if self.exponent is not None:
            body += "×10" + str(self.exponent).translate(_SUPERSCRIPT)
        return (MINUS if self.negative else "") + body

    def siunitx(self) -> str:
        """``-0.790``, ``1.78e-15``: what ``\\tablenum`` parses."""
        body = self.mantissa + ("" if self.exponent is None else f"e{self.exponent}")
        return ("-" if self.negative else "") + body

    def tex(self) -> str:
        """``-0.790``, ``1.78\\times10^{-15}``: LaTeX math (KaTeX, MathJax)."""
        body = self.mantissa
        if self.exponent is not None:
            body += rf"\times10^{{{self.exponent}}}"
        return ("-" if self.negative else "") + body


def _finite(values: Iterable[float]) -> list[float]:
    return [float(v) for v in values if math.isfinite(float(v))]


def column_form(values: Iterable[float], digits: int = 4) -> Form:
    """The form that gives the column's largest magnitude ``digits`` significant digits."""
    finite = _finite(values)
    signed = any(v < 0 for v in finite)
    largest = max((abs(v) for v in finite), default=0.0)
    if largest == 0.0:
        return Form(decimals=0, signed=signed)
    top = math.floor(math.log10(largest))
    if largest < TINY or largest >= HUGE:
        exponents = [abs(math.floor(math.log10(abs(v)))) for v in finite if v != 0.0]
        return Form(
            decimals=max(0, digits - 1),
            scientific=True,
            exponent=len(str(max(exponents))),
            signed=signed,
        )
    decimals = max(0, digits - 1 - top)
    integers = max(1, top + 1)
    # rounding can carry into a new digit (9.9996 -> 10.000)
    if round(largest, decimals) >= 10**integers:
        integers += 1
    return Form(decimals=decimals, integers=integers, signed=signed)


def form_of(value: float, digits: int = 4) -> Form:
    """The form of a single number."""
    return column_form([value], digits)


def parts(value: float, form: Form) -> Parts:
    value = float(value)
    if not math.isfinite(value):
        return Parts(value < 0, "∞" if math.isinf(value) else "NaN", None)
    if form.scientific and value != 0.0:
        text = f"{abs(value):.{form.decimals}e}"
        mantissa, exponent = text.split("e")
        return Parts(value < 0, mantissa, int(exponent))
    text = f"{abs(value):.{form.decimals}f}"
    negative = value < 0 and any(c not in "0." for c in text)  # never "−0.000"
    return Parts(negative, text, None)


def text(value: float, digits: int = 4, form: Form | None = None) -> str:
    """``value`` as plain text with a true minus (``−0.790``, ``1.78×10⁻¹⁵``)."""
    return parts(value, form or form_of(value, digits)).text()


def tex(value: float, digits: int = 4, form: Form | None = None) -> str:
    """``value`` as LaTeX math."""
    return parts(value, form or form_of(value, digits)).tex()


def signed_tex(value: float, digits: int = 4, first: bool = False) -> str:
    """A term of a sum: ``+ 0.5253`` / ``- 0.09007`` (``first``: no leading ``+``)."""
    body = tex(abs(value), digits)
    if value < 0:
        return "- " + body
    return body if first else "+ " + body


def minus_tex(left: str, value: float, digits: int = 4) -> str:
    """``left - value``, a negative value parenthesised (``14.5 - \\left(-2.578\\right)``)."""
    right = tex(value, digits)
    return f"{left} - " + (rf"\left({right}\right)" if right.startswith("-") else right)


def percent_text(value: float) -> str:
    """A share in [0, 1] as ``46.6%``."""
    return text(100.0 * value, form=Form(decimals=1, integers=3, signed=False)) + "%"
