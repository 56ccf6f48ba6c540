"""Money arithmetic on the hot path: the integer forms equal the exact definitions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from tillgate.core.money import (
    fmt,
    from_kop,
    line_amount,
    percent_of,
    ratio_half_up,
    round_half_up,
)

kopecks = st.integers(min_value=-(10**15), max_value=10**15)
percents = st.decimals(min_value=0, max_value=100, places=2, allow_nan=False)


@given(kopecks)
def test_fmt_is_the_decimal_text(kop: int) -> None:
    assert fmt(kop) == str(from_kop(kop))


def test_fmt_examples() -> None:
    assert [fmt(k) for k in (0, 5, -5, 100, -100, 8900, 123456789)] == [
        "0.00",
        "0.05",
        "-0.05",
        "1.00",
        "-1.00",
        "89.00",
        "1234567.89",
    ]


@given(st.integers(min_value=0, max_value=10**12), percents)
def test_percent_of_is_exact_half_up(amount: int, percent: Decimal) -> None:
    assert percent_of(amount, percent) == round_half_up(Fraction(amount) * Fraction(percent) / 100)


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(1, 10**9))
def test_ratio_half_up_rounds_halves_away_from_zero(n: int, d: int) -> None:
    exact = Fraction(n, d)
    got = ratio_half_up(n, d)
    assert abs(exact - got) <= Fraction(1, 2)
    if abs(exact - got) == Fraction(1, 2):
        assert abs(got) > abs(exact)


@given(
    st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False),
    st.decimals(min_value=0, max_value=1000, places=3, allow_nan=False),
)
def test_line_amount_is_price_times_qty_half_up(price: Decimal, qty: Decimal) -> None:
    assert line_amount(price, qty) == round_half_up(Fraction(price) * Fraction(qty) * 100)
