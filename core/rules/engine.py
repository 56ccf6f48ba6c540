"""The loyalty rules engine: one basket in, a priced and self-explaining receipt out.

    catalog = Catalog.build(program_file)        # once per program version
    result = evaluate(catalog, request, context)

``evaluate`` is pure: no I/O, no clock (time is ``context.now``), no globals, and the same
inputs give the same result down to the order of every list. It follows the evaluation
order of ``domain.md``: select the promotions that apply (through the catalog's indexes),
apply money off in application order with stacking, redeem points, accrue points, then
hints and print items. Amounts are whole kopecks throughout (see :mod:`..money`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import get_args

from ..frozen import quick_init
from ..money import floor_points, to_kop
from .basket import Basket
from .catalog import Catalog
from .conditions import Shopper, failures, static_failures
from .hints import cashier_hints, ordered
from .model import Context, Coupon, Effect, Line, LineResult, PrintItem, Request, Result
from .points import (
    birthday_bonus_year,
    capped_by_budget,
    redeem,
    tier_part,
    tier_percent,
    welcome_points,
)
from .program import (
    POINT_KINDS,
    CouponReward,
    Items,
    MessageReward,
    Promotion,
    StampReward,
)
from .program_texts import Language, pick
from .rewards import MoneyReward, PointReward, money_off, on_order, points_part
from .tiers import effective_tier

__all__ = ["Catalog", "effective_tier", "evaluate"]

# What a promotion gives on this receipt: its own reward, a stamp's inner reward, or the
# discount of a coupon it honours. None: a stamp that only counts this purchase.
Given = MoneyReward | PointReward | CouponReward | MessageReward | None
# The unions as tuples: ``isinstance`` against a tuple is several times quicker than
# against a ``X | Y`` union object, and these run for every promotion on every receipt.
_MONEY = get_args(MoneyReward)
_POINTS = get_args(PointReward)


@quick_init
@dataclass(frozen=True, kw_only=True)
class Plan:
    """A promotion that applies to this receipt, and what it gives here."""

    promo: Promotion
    reward: Given
    scope: tuple[int, ...]  # the lines it is about (matching eligible lines, or all eligible)
    coupon: Coupon | None = None  # the coupon that brought it in (honoured or required)
    stamp: int | None = None  # the card's stamp count after this receipt

    @property
    def money(self) -> bool:
        """Whether it takes money off (and so takes part in stacking)."""
        return isinstance(self.reward, _MONEY)

    @property
    def points(self) -> bool:
        """Whether it adds points (these stack with everything)."""
        return isinstance(self.reward, _POINTS)


@quick_init
@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one plan gave: money off by line position, exact points, and whether it counts."""

    plan: Plan
    off: Mapping[int, int]
    points: Fraction = Fraction(0)

    @property
    def discount(self) -> int:
        """Total kopecks off."""
        return sum(self.off.values())

    @property
    def effective(self) -> bool:
        """Whether it did anything: money, points, a stamp, a coupon or message printed."""
        kind = getattr(self.plan.reward, "kind", None)
        return (
            bool(self.off)
            or self.points > 0
            or self.plan.stamp is not None
            or kind in ("coupon", "message")
        )


class Tally:
    """The lines while promotions are applied: the only mutable state, local to one call."""

    def __init__(self, basket: Basket) -> None:
        n = len(basket.amounts)
        self.remaining = list(basket.amounts)
        self.locked = [False] * n  # discounted by an exclusive promotion
        self.touched = [False] * n  # discounted by any promotion so far
        self.by: list[list[str]] = [[] for _ in range(n)]

    def open(self, lines: Sequence[int], *, untouched: bool) -> list[int]:
        """The lines a promotion may still discount."""
        return [i for i in lines if not self.locked[i] and not (untouched and self.touched[i])]

    def take(self, promotion: str, off: Mapping[int, int], *, lock: bool) -> None:
        """Record a promotion's money off."""
        for i, d in off.items():
            self.remaining[i] -= d
            self.touched[i] = True
            self.locked[i] = self.locked[i] or lock
            self.by[i].append(promotion)


def evaluate(catalog: Catalog, request: Request, context: Context) -> Result:
    """Price a basket for a customer at a till and time: discounts, points, hints, print."""
    program = catalog.program
    today = context.now.date()
    basket = Basket.of(request.lines, program)
    shopper = Shopper.of(program, request.customer, today)
    held, early = _sort_coupons(catalog, request.coupons, today)
    matching = catalog.matching(basket)
    plans = _select(catalog, basket, shopper, context, matching, held)
    if not request.money_off:
        plans = [p for p in plans if not p.money]

    outcomes, tally = _apply_money(plans, basket)
    totals = tally.remaining
    member = shopper.member
    redemption = redeem(
        program, member, basket, totals, asked=request.redeem, offline_cap=context.redeem_cap
    )
    paid = [t - r for t, r in zip(totals, redemption.per_line, strict=True)]

    # Once a receipt, not once a promotion (to_kop parses and rounds the Decimal).
    earn = (tier_percent(program, shopper.tier), to_kop(program.point_value))
    outcomes = [_with_points(o, earn, shopper, paid, context) for o in outcomes]
    outcomes = [o for o in outcomes if o.effective]
    # Bonuses need a receipt, not an eligible line: a first purchase of cigarettes alone
    # would otherwise lose the welcome bonus for good.
    welcome = welcome_points(program, member) if basket.lines else 0
    birthday_year = birthday_bonus_year(program, member, shopper.birthday) if basket.lines else None
    birthday = program.birthday_points if birthday_year is not None else 0
    exact = sum((o.points for o in outcomes if o.points), Fraction(0)) + welcome + birthday
    if member is not None:
        exact += tier_part(program, shopper.tier, basket, paid)
    accrued = floor_points(exact) if member is not None else 0

    applied, rejected = _coupon_results(request.coupons, early, outcomes)
    prints = _prints(outcomes, today, context.language)
    lines = tuple(
        LineResult(
            index=line.index,
            amount=basket.amounts[i],
            discount=basket.amounts[i] - totals[i],
            total=totals[i],
            redeemed=redemption.per_line[i],
            paid=paid[i],
            promotions=tuple(tally.by[i]),
            eligible=basket.eligible[i],
        )
        for i, line in enumerate(basket.lines)
    )
    discount = sum(line.discount for line in lines)
    redeemed_amount = sum(redemption.per_line)
    hints = cashier_hints(
        catalog=catalog,
        basket=basket,
        shopper=shopper,
        context=context,
        matching=matching,
        held=held,
        redeem_most=redemption.most,
        below_minimum=redemption.below_minimum,
        birthday_points=birthday,
        messages=[
            (o.plan.promo.id, pick(o.plan.reward.text, context.language))
            for o in outcomes
            if isinstance(o.plan.reward, MessageReward)
        ],
        prints=prints,
        rejected=rejected,
    )
    return Result(
        lines=lines,
        subtotal=basket.subtotal,
        discount=discount,
        redeem_max=redemption.most,
        redeemed_points=redemption.points,
        redeemed_amount=redeemed_amount,
        total=basket.subtotal - discount - redeemed_amount,
        accrued_points=accrued,
        effects=tuple(
            Effect(
                id=o.plan.promo.id,
                name=o.plan.promo.name,
                discount=o.discount,
                points=floor_points(o.points),
            )
            for o in outcomes
            if o.off or o.points > 0
        ),
        coupons_applied=applied,
        coupons_rejected=tuple((c.code, reason) for c, reason in rejected),
        hints=ordered(hints),
        print=prints,
        tier=shopper.tier,
        uses=tuple(o.plan.promo.id for o in outcomes),
        stamps={o.plan.promo.id: o.plan.stamp for o in outcomes if o.plan.stamp is not None},
        budget_points={
            o.plan.promo.id: floor_points(o.points)
            for o in outcomes
            if o.plan.promo.limits.budget_points and o.points > 0
        },
        welcome_points=welcome,
        birthday_points=birthday,
        birthday_year=birthday_year,
    )


# ---------------------------------------------------------------- step 2: selection


def _sort_coupons(
    catalog: Catalog, coupons: Sequence[Coupon], today: date
) -> tuple[dict[str, Coupon], dict[int, str]]:
    """Coupons the engine will try (one per promotion), and early refusals by position."""
    held: dict[str, Coupon] = {}
    early: dict[int, str] = {}
    for k, coupon in enumerate(coupons):
        if catalog.promotion(coupon.promotion_id) is None:
            early[k] = "unknown_promotion"
        elif coupon.valid_until < today:
            early[k] = "expired"
        elif coupon.promotion_id in held:
            early[k] = "duplicate"
        else:
            held[coupon.promotion_id] = coupon
    return held, early


def _select(
    catalog: Catalog,
    basket: Basket,
    shopper: Shopper,
    context: Context,
    matching: Mapping[int, tuple[int, ...]],
    held: Mapping[str, Coupon],
) -> list[Plan]:
    """The promotions that apply, in application order (descending priority, then id)."""
    ranks = set(matching).union(catalog.unscoped)
    # A coupon's promotion is a candidate even when none of its items is in the basket:
    # an order-wide coupon discount does not need them.
    ranks.update(catalog.rank_of[pid] for pid in held if pid in catalog.rank_of)
    plans = []
    for rank in sorted(ranks):
        promo = catalog.ordered[rank]
        scope = catalog.scope(rank, matching, basket)
        plan = _plan(promo, scope, basket, shopper, context, held.get(promo.id))
        if plan is not None:
            plans.append(plan)
    return plans


def _wants(items: Items, line: Line) -> bool:
    """Whether a line is one of ``items`` (sku, category or any tag)."""
    return (
        line.sku in items.skus
        or any(code in items.skus for code in line.codes)
        or (line.category is not None and line.category in items.categories)
        or any(tag in items.tags for tag in line.tags)
    )


def _plan(
    promo: Promotion,
    scope: tuple[int, ...],
    basket: Basket,
    shopper: Shopper,
    context: Context,
    coupon: Coupon | None,
) -> Plan | None:
    """What ``promo`` gives on this receipt, or None if it does not apply."""
    reward = promo.reward
    if coupon is not None and isinstance(reward, CouponReward):
        # Honouring a printed coupon: who/when were the conditions for issuing it.
        if static_failures(promo, context):
            return None
        if reward.items is not None and reward.items.any:
            wanted = reward.items
            scope = tuple(i for i in basket.eligible_idx if _wants(wanted, basket.lines[i]))
        return Plan(promo=promo, reward=reward.discount, scope=scope, coupon=coupon)
    missed = failures(
        promo,
        scope=scope,
        basket=basket,
        shopper=shopper,
        context=context,
        has_coupon=coupon is not None,
    )
    if missed:
        return None
    # A coupon of a promotion that applies anyway would be spent for nothing: not taken.
    coupon = coupon if promo.when.coupon else None
    member = shopper.member
    if isinstance(reward, StampReward):
        if member is None:
            return None
        count = member.stamps.get(promo.id, 0) + 1
        inner = reward.reward if count % reward.every == 0 else None
        return Plan(promo=promo, reward=inner, scope=scope, coupon=coupon, stamp=count)
    if reward.kind in POINT_KINDS and member is None:
        return None  # no card, no points
    return Plan(promo=promo, reward=reward, scope=scope, coupon=coupon)


# ---------------------------------------------------------------- step 3: money off


def _offer(plan: Plan, basket: Basket, tally: Tally) -> dict[int, int]:
    """Money ``plan`` would take off the receipt as it stands now."""
    assert isinstance(plan.reward, MoneyReward)  # only money plans get here
    lines = basket.eligible_idx if on_order(plan.reward) else plan.scope
    return money_off(
        plan.reward,
        lines=tally.open(lines, untouched=plan.promo.stacking == "exclusive"),
        basket=basket,
        remaining=tally.remaining,
        per_receipt=plan.promo.limits.per_receipt,
    )


def _best(
    plans: Sequence[Plan], basket: Basket, tally: Tally
) -> tuple[Plan | None, dict[int, int]]:
    """The ``best`` promotion giving the most money off now (ties: earlier in order)."""
    winner: Plan | None = None
    winner_off: dict[int, int] = {}
    for plan in plans:
        if plan.money and plan.promo.stacking == "best":
            off = _offer(plan, basket, tally)
            if sum(off.values()) > sum(winner_off.values()):
                winner, winner_off = plan, off
    return winner, winner_off


def _apply_money(plans: Sequence[Plan], basket: Basket) -> tuple[list[Outcome], Tally]:
    """Apply the plans in order with stacking; every plan gets an outcome (maybe empty)."""
    tally = Tally(basket)
    outcomes: list[Outcome] = []
    winner: Plan | None = None
    contest_held = False
    for plan in plans:
        if plan.money and plan.promo.stacking == "best":
            if not contest_held:
                # The contest runs once, where the first `best` promotion stands in order.
                contest_held = True
                winner, off = _best(plans, basket, tally)
                if winner is not None:
                    tally.take(winner.promo.id, off, lock=False)
                    outcomes.append(Outcome(plan=winner, off=off))
            if plan is not winner and plan.stamp is not None:
                # A stamp whose reward lost the contest still counts the purchase.
                outcomes.append(Outcome(plan=replace(plan, reward=None), off={}))
        elif plan.money:
            exclusive = plan.promo.stacking == "exclusive"
            off = _offer(plan, basket, tally)
            tally.take(plan.promo.id, off, lock=exclusive)
            outcomes.append(Outcome(plan=plan, off=off))
        else:
            outcomes.append(Outcome(plan=plan, off={}))
    return outcomes, tally


# ---------------------------------------------------------------- step 5 and the rest


def _with_points(
    outcome: Outcome,
    earn: tuple[Decimal, int],
    shopper: Shopper,
    paid: Sequence[int],
    context: Context,
) -> Outcome:
    """Add a point reward's exact points, computed on what is actually paid (``earn``: the
    tier's accrual percent and the point's value in kopecks)."""
    plan = outcome.plan
    if not plan.points or shopper.member is None:
        return outcome
    assert isinstance(plan.reward, PointReward)
    part = points_part(
        plan.reward,
        paid_matching=sum(paid[i] for i in plan.scope),
        tier_percent=earn[0],
        point_value=earn[1],
    )
    part = capped_by_budget(
        part, plan.promo.limits.budget_points, context.budget_used, plan.promo.id
    )
    return Outcome(plan=plan, off=outcome.off, points=part)


def _coupon_results(
    coupons: Sequence[Coupon], early: Mapping[int, str], outcomes: Sequence[Outcome]
) -> tuple[tuple[str, ...], list[tuple[Coupon, str]]]:
    """Codes applied, and (coupon, reason) refused, both in the order they were presented.

    Past the early refusals there is one coupon per promotion, so the promotion names it.
    """
    used = {o.plan.coupon.promotion_id for o in outcomes if o.plan.coupon is not None}
    applied: list[str] = []
    rejected: list[tuple[Coupon, str]] = []
    for k, coupon in enumerate(coupons):
        if k in early:
            rejected.append((coupon, early[k]))
        elif coupon.promotion_id in used:
            applied.append(coupon.code)
        else:
            rejected.append((coupon, "not_applicable"))
    return tuple(applied), rejected


def _prints(outcomes: Sequence[Outcome], today: date, language: Language) -> tuple[PrintItem, ...]:
    """Coupons issued and messages, in application order, in the till's language."""
    out: list[PrintItem] = []
    for outcome in outcomes:
        promo, reward = outcome.plan.promo, outcome.plan.reward
        if isinstance(reward, CouponReward):
            out.append(
                PrintItem(
                    kind="coupon",
                    promotion=promo.id,
                    title=pick(reward.title, language),
                    valid_until=today + timedelta(days=reward.valid_days),
                )
            )
        elif isinstance(reward, MessageReward):
            out.append(
                PrintItem(
                    kind="message",
                    promotion=promo.id,
                    title=promo.name,
                    text=pick(reward.text, language),
                )
            )
        if promo.print is not None:
            out.append(
                PrintItem(
                    kind="message",
                    promotion=promo.id,
                    title=promo.name,
                    text=pick(promo.print.text, language),
                )
            )
    return tuple(out)
