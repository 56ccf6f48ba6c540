"""When a promotion applies: time, place, customer, basket and limits, checked exactly.

:func:`failures` names every condition a promotion misses on this receipt. An empty answer
means it applies; an answer of exactly ``("min_total",)`` or ``("min_qty",)`` is a near miss
the cashier may be told about. Nothing here reads a clock: time is ``Context.now``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from ..money import to_kop
from .basket import Basket
from .model import Context, Customer
from .program import DAYS, Program, Promotion
from .tiers import birthday_near, effective_tier

_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class Shopper:
    """Who is buying, as the conditions need it."""

    customer: Customer | None  # the presented card, whatever its status
    member: Customer | None  # the presented card unless it is blocked: the one that earns
    tier: str | None  # effective tier of the presented card
    birthday: date | None  # the member's birthday occurrence within the program's window

    @classmethod
    def of(cls, program: Program, customer: Customer | None, today: date) -> Shopper:
        """Work out the member, tier and birthday once per receipt."""
        member = customer if customer is not None and customer.status != "blocked" else None
        tier = (
            effective_tier(program, customer.tier, customer.rolling_spend)
            if customer is not None
            else None
        )
        near = (
            birthday_near(member.birthday, today, program.birthday_window_days)
            if member is not None
            else None
        )
        return cls(customer=customer, member=member, tier=tier, birthday=near)


def in_valid(promo: Promotion, now: datetime) -> bool:
    """``valid.from``/``valid.to``, both inclusive.

    A ``to`` written to the minute (``23:59``) includes that whole minute: head office means
    "until the end of 23:59", not "until 23:59:00.000".
    """
    start, end = promo.valid.from_, promo.valid.to
    if start is not None and now < start:
        return False
    if end is None:
        return True
    if end.second == 0 and end.microsecond == 0:
        return now < end + _MINUTE
    return now <= end


def in_range(at: time, start: time, end: time | None) -> bool:
    """Whether ``at`` is in ``start``–``end``: end exclusive, None the end of the day.

    An end before the start runs over midnight (``22:00-02:00``).
    """
    if end is None:
        return at >= start
    if end < start:  # "22:00-02:00" runs over midnight
        return at >= start or at < end
    return start <= at < end


def in_schedule(promo: Promotion, now: datetime) -> bool:
    """``schedule.days`` (the calendar day of ``now``) and any of ``schedule.hours``."""
    schedule = promo.schedule
    if schedule is None:
        return True
    if schedule.days and DAYS[now.weekday()] not in schedule.days:
        return False
    if schedule.hours:
        at = now.time()
        return any(in_range(at, start, end) for start, end in schedule.ranges())
    return True


def in_place(promo: Promotion, context: Context) -> bool:
    """``where.stores`` ("*" or the till's store) and ``where.tills`` (empty: every till)."""
    stores = promo.where.stores
    if "*" not in stores and context.store not in stores:
        return False
    return not promo.where.tills or context.till in promo.where.tills


def static_failures(promo: Promotion, context: Context) -> tuple[str, ...]:
    """The conditions that do not depend on customer or basket; a coupon is honoured on these."""
    out: list[str] = []
    if not promo.enabled:
        out.append("disabled")
    if not in_valid(promo, context.now):
        out.append("valid")
    if not in_schedule(promo, context.now):
        out.append("schedule")
    if not in_place(promo, context):
        out.append("where")
    return tuple(out)


def who_failures(promo: Promotion, shopper: Shopper) -> list[str]:
    """``who``: any filter that names customers (tier, segment, …) needs an unblocked card."""
    who, member = promo.who, shopper.member
    out: list[str] = []
    if who.card and member is None:
        out.append("card")
    if who.tiers and (member is None or shopper.tier not in who.tiers):
        out.append("tier")
    if who.segments and (member is None or not member.segments.intersection(who.segments)):
        out.append("segment")
    if who.clubs and (member is None or not member.clubs.intersection(who.clubs)):
        out.append("club")
    if who.birthday and shopper.birthday is None:
        out.append("birthday")
    if who.first_purchase and (member is None or member.visits != 0):
        out.append("first_purchase")
    if who.min_visits and (member is None or member.visits < who.min_visits):
        out.append("min_visits")
    return out


def limit_failures(promo: Promotion, member: Customer | None) -> list[str]:
    """Per-card limits; without a card they cannot be counted, so they do not block."""
    if member is None:
        return []
    limits, out = promo.limits, []
    if limits.per_card_per_day and member.uses_today.get(promo.id, 0) >= limits.per_card_per_day:
        out.append("per_card_per_day")
    if limits.per_card_total and member.uses_total.get(promo.id, 0) >= limits.per_card_total:
        out.append("per_card_total")
    return out


def failures(
    promo: Promotion,
    *,
    scope: Sequence[int],
    basket: Basket,
    shopper: Shopper,
    context: Context,
    has_coupon: bool,
) -> tuple[str, ...]:
    """Every condition ``promo`` misses on this receipt, in a fixed order; empty: it applies.

    ``scope`` is the lines the promotion is about: its matching eligible lines when
    ``when.items`` names skus, categories or tags, else every eligible line.
    """
    out = list(static_failures(promo, context))
    out += who_failures(promo, shopper)
    if promo.when.coupon and not has_coupon:
        out.append("coupon")
    out += limit_failures(promo, shopper.member)
    if not scope:
        # Nothing in the basket for it to act on (or no eligible line at all).
        out.append("empty")
    # Sums only when there is something to compare: most promotions have neither.
    if promo.when.min_total and basket.amount_of(scope) < to_kop(promo.when.min_total):
        out.append("min_total")
    items = promo.when.items
    if items is not None and items.min_qty and basket.units_of(scope) < items.min_qty:
        out.append("min_qty")
    return tuple(out)


def missing_total(promo: Promotion, scope: Sequence[int], basket: Basket) -> int:
    """Kopecks still missing to reach ``when.min_total``."""
    return to_kop(promo.when.min_total) - basket.amount_of(scope)


def missing_units(promo: Promotion, scope: Sequence[int], basket: Basket) -> int:
    """Whole units still missing to reach ``when.items.min_qty``."""
    items = promo.when.items
    if items is None:
        return 0
    return max(math.ceil(items.min_qty - basket.units_of(scope)), 0)
