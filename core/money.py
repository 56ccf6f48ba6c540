"""Money and points arithmetic: exact, half-up to the kopeck, no float anywhere.

Inside the rules engine amounts are whole kopecks (``int``); they become
``Decimal`` with two places only at the edges (JSON, storage, display). Integer minor
units make "the lines add up to the receipt exactly" a matter of integer sums.

Amounts written as text are read by :func:`parse_decimal`: ASCII digits only. Python's
``Decimal()`` and ``int()`` also read full-width (``"１２"``), Arabic-Indic (``"١٢"``) and
every other script's digits, and ``"1_000.00"``; none of that is what a POS means by a
price, so none of it becomes one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

# "89", "89.00", ".5", "-1", "8.9e1": ASCII digits, one optional point and exponent, no
# separators. re.ASCII is belt and braces: [0-9] is ASCII-only already (\d would not be).
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_BLANKS = " \t\r\n"


def parse_decimal(text: str) -> Decimal:
    """A number written in ASCII digits (``"89.00"``, ``"0.350"``, ``"8.9e1"``) as a Decimal.

    ValueError for anything else: other scripts' digits, ``_`` or other separators,
    ``NaN`` and ``Infinity``, which ``Decimal()`` itself would take.
    """
    stripped = text.strip(_BLANKS)
    if not _DECIMAL_TEXT.fullmatch(stripped):
        raise ValueError(f"not a number in ASCII digits: {text!r}")
    return Decimal(stripped)


def to_money(value: Decimal | int | str) -> Decimal:
    """A Decimal with exactly two places, rounded half-up (text: ASCII digits only)."""
    try:
        number = parse_decimal(value) if isinstance(value, str) else Decimal(value)
        return number.quantize(CENT, rounding=ROUND_HALF_UP)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"not a money amount: {value!r}") from exc


def to_kop(value: Decimal | int | str) -> int:
    """Money → whole kopecks (half-up)."""
    return int(to_money(value) * 100)


def from_kop(kop: int) -> Decimal:
    """Whole kopecks → money with two places."""
    return (Decimal(kop) / 100).quantize(CENT)


@functools.lru_cache(maxsize=4096)
def fmt(kop: int) -> str:
    """Whole kopecks → the API's money string (``"89.00"``, ``"-0.05"``): what
    ``str(from_kop(kop))`` gives, in integer arithmetic (five of these a line per response,
    most of them amounts seen before: the last few thousand are remembered)."""
    whole, cents = divmod(-kop if kop < 0 else kop, 100)
    return f"{'-' if kop < 0 else ''}{whole}.{cents:02d}"


def round_half_up(value: Fraction | Decimal) -> int:
    """Round an exact rational to the nearest integer, halves away from zero."""
    # Integer arithmetic on the exact ratio: this sits on the engine's hot path.
    return ratio_half_up(*value.as_integer_ratio())


def ratio_half_up(n: int, d: int) -> int:
    """``n / d`` (``d > 0``) rounded to the nearest integer, halves away from zero."""
    if n >= 0:
        return (2 * n + d) // (2 * d)
    return -((-2 * n + d) // (2 * d))


def floor_points(value: Fraction | Decimal) -> int:
    """Points are whole: accrual rounds down (towards zero for non-negative values)."""
    if isinstance(value, Decimal):
        return int(value.to_integral_value(rounding=ROUND_DOWN))
    return int(value.__floor__()) if value >= 0 else -int((-value).__floor__())


@functools.lru_cache(maxsize=4096)
def line_amount(price: Decimal, qty: Decimal) -> int:
    """A line's amount in kopecks: price × qty rounded half-up to the kopeck.

    (Asked twice a line per calculate, by the bounds check and the engine; equal decimals
    give the same amount, so a cache keyed by them is exact.)"""
    pn, pd = price.as_integer_ratio()
    qn, qd = qty.as_integer_ratio()
    return ratio_half_up(pn * qn * 100, pd * qd)


def allocate(total: int, weights: Sequence[int], caps: Sequence[int] | None = None) -> list[int]:
    """Spread ``total`` kopecks over lines in proportion to ``weights``.

    Each share is rounded down; the remainder goes to the largest line (ties: the
    earliest), so the shares always add up to ``total`` exactly.
    With ``caps`` no line receives more than its cap; what a capped line cannot take is
    spread over the others the same way. If the caps together are less than ``total``
    the result adds up to ``sum(caps)`` instead (the caller decides what that means).
    """
    n = len(weights)
    if caps is None:
        caps = list(weights)
    if total <= 0 or n == 0:
        return [0] * n
    shares = [0] * n
    remaining = min(total, sum(max(c, 0) for c in caps))
    open_ = [i for i in range(n) if caps[i] > 0 and weights[i] > 0]
    if not open_:
        open_ = [i for i in range(n) if caps[i] > 0]
    while remaining > 0 and open_:
        wsum = sum(max(weights[i], 0) for i in open_)
        room = {i: caps[i] - shares[i] for i in open_}
        if wsum <= 0:
            give = {i: 0 for i in open_}
        else:
            give = {i: remaining * max(weights[i], 0) // wsum for i in open_}
        capped = [i for i in open_ if give[i] >= room[i]]
        if capped:
            # Fill the lines that hit their cap, then spread the rest over the others.
            for i in capped:
                shares[i] += room[i]
                remaining -= room[i]
            open_ = [i for i in open_ if i not in capped]
            continue
        for i in open_:
            shares[i] += give[i]
            remaining -= give[i]
        # The rounding remainder goes to the largest line (by weight, then by index); only
        # what its cap cannot take moves on to the next largest.
        for i in sorted(open_, key=lambda i: (-weights[i], i)):
            if remaining == 0:
                break
            take = min(remaining, caps[i] - shares[i])
            shares[i] += take
            remaining -= take
        break
    return shares


def percent_of(amount_kop: int, percent: Decimal | int) -> int:
    """``percent``% of an amount in kopecks, rounded half-up."""
    # Integer arithmetic on the percent's exact ratio: no Fraction on the engine's hot path.
    pn, pd = Decimal(percent).as_integer_ratio()
    return ratio_half_up(amount_kop * pn, pd * 100)
