"""Refund arithmetic: what a (partial) return gives back and takes back, cumulatively.

After refunds that together return a share ``s`` of a receipt, the receipt has returned
``floor(redeemed × s)`` points and reversed ``ceil(accrued × s)`` points in total, and
handed back ``round(paid × returned units)`` money. Each refund moves only the difference
from the previous state, so rounding never drifts and repeated partial refunds can never
return more than the receipt took or take back more than it gave. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor

from ..money import round_half_up


@dataclass(frozen=True, kw_only=True)
class PaidLine:
    index: int
    qty: Decimal
    paid: int  # kopecks actually paid for the line (after discounts and points)
    eligible: bool  # earned points / could be paid with points


@dataclass(frozen=True, kw_only=True)
class RefundState:
    """Cumulative totals after a set of returned quantities."""

    share: Fraction
    points_returned: int
    points_reversed: int
    amount_returned: int


def state(
    lines: Sequence[PaidLine],
    returned: Mapping[int, Decimal],
    *,
    accrued: int,
    redeemed: int,
) -> RefundState:
    """Totals for the cumulative ``returned`` quantities (line index → units returned)."""
    eligible_paid = sum(line.paid for line in lines if line.eligible)
    money = Fraction(0)
    eligible_back = Fraction(0)
    for line in lines:
        qty = Fraction(line.qty)
        r = Fraction(returned.get(line.index, Decimal(0)))
        part = Fraction(line.paid) * r / qty if qty else Fraction(0)
        money += part
        if line.eligible:
            eligible_back += part
    if eligible_paid > 0:
        share = eligible_back / eligible_paid
    else:
        # No point-eligible money: fall back to the share of units returned.
        total_qty = sum(Fraction(line.qty) for line in lines)
        back_qty = sum(Fraction(returned.get(line.index, Decimal(0))) for line in lines)
        share = back_qty / total_qty if total_qty else Fraction(0)
    share = min(max(share, Fraction(0)), Fraction(1))
    all_returned = all(returned.get(line.index, Decimal(0)) >= line.qty for line in lines)
    if all_returned:
        share = Fraction(1)
    return RefundState(
        share=share,
        points_returned=redeemed if share == 1 else floor(redeemed * share),
        points_reversed=accrued if share == 1 else ceil(accrued * share),
        amount_returned=sum(line.paid for line in lines) if all_returned else round_half_up(money),
    )
