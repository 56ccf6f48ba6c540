"""Steps 4 and 5 of a receipt: paying with points, then earning them.

Redemption spends whole points on the eligible lines' remaining totals, capped by the
program's share, the card's redeemable balance and any offline cap. Accrual adds the tier
percent of what is actually paid to the point rewards, exactly, and rounds down once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from ..money import allocate, to_kop
from .basket import Basket
from .model import Customer
from .program import Program


@dataclass(frozen=True, kw_only=True)
class Redemption:
    """What points pay on this receipt."""

    most: int  # the most points this receipt could take (all caps applied)
    points: int  # points spent
    per_line: tuple[int, ...]  # kopecks paid with points, by line position
    below_minimum: bool  # a number was asked that is under ``min_redeem_points``


def redeem(
    program: Program,
    member: Customer | None,
    basket: Basket,
    totals: Sequence[int],
    *,
    asked: int | Literal["max"],
    offline_cap: int | None,
) -> Redemption:
    """Points paying for the eligible lines, allocated in proportion to their totals."""
    nothing = Redemption(most=0, points=0, per_line=(0,) * len(totals), below_minimum=False)
    if member is None:
        return nothing
    lines = basket.eligible_idx
    base = sum(totals[i] for i in lines)
    # The share's exact ratio in integers (base is never negative): no Fraction here.
    pn, pd = program.max_redeem_percent.as_integer_ratio()
    cap_money = base * pn // (pd * 100)
    value = to_kop(program.point_value)
    most = min(cap_money // value, max(member.redeemable, 0))
    if offline_cap is not None:
        most = min(most, max(offline_cap, 0))
    if most < program.min_redeem_points:
        most = 0
    below = asked != "max" and 0 < asked < program.min_redeem_points
    if asked == "max":
        points = most
    elif below:
        points = 0  # the minimum is a minimum: asking for less spends nothing
    else:
        points = max(0, min(asked, most))
    shares = allocate(points * value, [totals[i] for i in lines], [totals[i] for i in lines])
    per_line = [0] * len(totals)
    for i, share in zip(lines, shares, strict=True):
        per_line[i] = share
    return Redemption(most=most, points=points, per_line=tuple(per_line), below_minimum=below)


def tier_part(program: Program, tier: str | None, basket: Basket, paid: Sequence[int]) -> Fraction:
    """Exact points of the tier's ``accrue_percent`` on the paid amount of eligible lines."""
    percent = tier_percent(program, tier)
    if not percent:
        return Fraction(0)
    money = sum(paid[i] for i in basket.eligible_idx)
    return Fraction(money, to_kop(program.point_value)) * Fraction(percent) / 100


def tier_percent(program: Program, tier: str | None) -> Decimal:
    """The accrual percent of a tier (0 without tiers)."""
    found = program.tier(tier)
    return found.accrue_percent if found is not None else Decimal(0)


def capped_by_budget(
    part: Fraction, budget: int, used: Mapping[str, int], promotion: str
) -> Fraction:
    """A promotion's points, never past what is left of its ``budget_points`` (0: no budget)."""
    if not budget:
        return part
    return min(part, Fraction(max(budget - used.get(promotion, 0), 0)))


def welcome_points(program: Program, member: Customer | None) -> int:
    """The welcome bonus, on a card's first purchase."""
    return program.welcome_points if member is not None and member.visits == 0 else 0


def birthday_bonus_year(program: Program, member: Customer | None, near: date | None) -> int | None:
    """The year of the birthday this receipt gives the bonus for, or None.

    Once per birthday, not per calendar year: the occurrence's year is compared and is what
    the service records, so a 31 December birthday honoured on 2 January is not honoured
    again on 29 December (nor twice across New Year).
    """
    if member is None or near is None or not program.birthday_points:
        return None
    return near.year if member.last_birthday_bonus != near.year else None
