"""One number formatter for every format: a column's numbers share their decimals (so their
decimal markers align), minus signs are true minus signs, a negative number being subtracted
is parenthesised, exact zeros are not added, and tiny spreads are scientific."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as hs

from symtrans.report import numbers

FINITE = hs.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


@given(hs.lists(FINITE, min_size=1, max_size=30))
def test_a_column_aligns_on_its_decimal_marker(values):
    form = numbers.column_form(values, numbers.TABLE_DIGITS)
    written = [numbers.text(v, form=form) for v in values]
    if form.scientific:
        mantissas = [w.split("×")[0].lstrip("−") for w in written]
        assert len({len(m.split(".")[-1]) for m in mantissas if "." in m}) <= 1
    else:
        assert len({len(w.split(".")[1]) if "." in w else 0 for w in written}) == 1
    assert "-" not in "".join(written)  # a hyphen is never a minus sign
    for value, text in zip(values, written, strict=True):
        back = float(
            text.replace("−", "-")
            .replace("×10", "e")
            .translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-"))
        )
        scale = 10.0**-form.decimals if not form.scientific else abs(value) * 1e-3
        assert math.isclose(back, value, abs_tol=max(scale, 1e-300)), (value, text)


def test_the_largest_number_keeps_its_significant_digits():
    form = numbers.column_form([8.951, -0.79032, 14.5203698957, 0.1185])
    assert [numbers.text(v, form=form) for v in (14.5203698957, -0.79032)] == ["14.52", "−0.79"]
    assert numbers.column_form([14.52, 0.5], 5).decimals == 3


def test_tiny_spreads_are_scientific():
    stds = [1.3e-16, 0.0, 4.4e-17]
    form = numbers.column_form(stds)
    assert form.scientific
    assert numbers.text(1.3e-16, form=form) == "1.300×10⁻¹⁶"
    assert numbers.tex(-1.78e-15, 3) == r"-1.78\times10^{-15}"
    assert form.table_format() == "1.3e-2"  # siunitx: room for the exponent's digits


def test_minus_signs_and_subtraction():
    assert numbers.text(-0.5) == "−0.5000"
    assert numbers.minus_tex("14.52", -2.578) == r"14.52 - \left(-2.578\right)"
    assert numbers.minus_tex("14.52", 2.578) == "14.52 - 2.578"
    assert numbers.signed_tex(-0.09007) == "- 0.09007"
    assert numbers.signed_tex(0.5, first=True) == "0.5000"
    # rounding to zero leaves no "−0.000"
    assert numbers.text(-1e-9, form=numbers.Form(decimals=3)) == "0.000"


def test_the_reports_write_no_plus_zero_and_no_double_minus(report_results):
    for name, result in report_results.items():
        md = result.to_markdown()
        assert not any(bad in md for bad in ("+ 0 ", "+ 0\n", "- -", "−−", "− −")), name
        frag = result.to_latex()
        assert "- -" not in frag and "+ 0 " not in frag, name
