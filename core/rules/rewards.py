"""What one reward gives on the receipt as it stands: kopecks off per line, or exact points.

These functions only compute; the engine decides which lines a promotion may look at
(stacking, locks) and records the outcome. Every discount is capped by the line's *room*
(its remaining total above the floor), so no combination can push a line below the floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from fractions import Fraction

from ..money import allocate, line_amount, percent_of, round_half_up, to_kop
from .basket import Basket
from .program import (
    AmountReward,
    FreeItemReward,
    MultiplierReward,
    PercentReward,
    PointsPercentReward,
    PointsReward,
    PriceReward,
)

MoneyReward = PercentReward | AmountReward | PriceReward | FreeItemReward
PointReward = PointsReward | PointsPercentReward | MultiplierReward


def on_order(reward: MoneyReward) -> bool:
    """Whether the reward works on every eligible line rather than on the matching ones."""
    # Only these two have ``on``; a getattr on the others would go through pydantic's slow
    # ``__getattr__`` for a missing attribute, once per promotion per receipt.
    return isinstance(reward, (PercentReward, AmountReward)) and reward.on == "order"


def money_off(
    reward: MoneyReward,
    *,
    lines: Sequence[int],
    basket: Basket,
    remaining: Sequence[int],
    per_receipt: int,
) -> dict[int, int]:
    """Kopecks off per line position (only lines with money off, ascending).

    ``lines`` is what the reward may touch (every open eligible line when :func:`on_order`,
    else the open matching lines); locked lines are already left out. ``per_receipt``
    (0: none) caps units for ``price`` and groups for ``free_item``.
    """
    # Only the lines in play: a promotion on three lines costs three steps, not the basket.
    room = {i: max(remaining[i] - basket.floors[i], 0) for i in lines}
    if isinstance(reward, PercentReward):
        off = _percent(reward, lines, basket, remaining, room)
    elif isinstance(reward, AmountReward):
        off = _spread(to_kop(reward.value), lines, remaining, room)
    elif isinstance(reward, PriceReward):
        off = _price(reward, lines, basket, remaining, room, per_receipt)
    else:
        off = _free_items(reward, lines, basket, remaining, room, per_receipt)
    return {i: d for i, d in sorted(off.items()) if d > 0}


def _spread(
    total: int, lines: Sequence[int], remaining: Sequence[int], room: Mapping[int, int]
) -> dict[int, int]:
    # In proportion to what the lines still cost, never past any line's room.
    shares = allocate(total, [remaining[i] for i in lines], [room[i] for i in lines])
    return dict(zip(lines, shares, strict=True))


def _cap(off: dict[int, int], cap: int) -> dict[int, int]:
    # Shrink a promotion's discount to ``cap`` keeping the lines' proportions.
    if sum(off.values()) <= cap:
        return off
    lines = sorted(off)
    values = [off[i] for i in lines]
    return dict(zip(lines, allocate(cap, values, values), strict=True))


def _percent(
    reward: PercentReward,
    lines: Sequence[int],
    basket: Basket,
    remaining: Sequence[int],
    room: Mapping[int, int],
) -> dict[int, int]:
    cap = to_kop(reward.max) if reward.max is not None else None
    if reward.on == "order":
        total = percent_of(sum(remaining[i] for i in lines), reward.value)
        return _spread(total if cap is None else min(total, cap), lines, remaining, room)
    if reward.on == "matching":
        off = {i: min(percent_of(remaining[i], reward.value), room[i]) for i in lines}
        return off if cap is None else _cap(off, cap)
    # cheapest: one unit of the cheapest matching unit price (ties: the earlier line)
    priced = [(Fraction(remaining[i], basket.units[i]), i) for i in lines if basket.units[i] > 0]
    if not priced:
        return {}
    unit, i = min(priced)
    d = min(round_half_up(unit * Fraction(reward.value) / 100), room[i])
    return {i: d if cap is None else min(d, cap)}


def _unit_cost(value: Decimal, basket: Basket, i: int, k: int) -> int:
    # What ``k`` units of line ``i`` cost at the promotion price; a weighed line is one unit.
    line = basket.lines[i]
    return line_amount(value, line.qty if line.weighed else Decimal(k))


def _price(
    reward: PriceReward,
    matching: Sequence[int],
    basket: Basket,
    remaining: Sequence[int],
    room: Mapping[int, int],
    per_receipt: int,
) -> dict[int, int]:
    lines = [i for i in matching if basket.units[i] > 0]
    if per_receipt:
        # A capped offer goes to the units it saves most on (ties: the earlier line).
        value = Fraction(reward.value) * 100
        lines.sort(key=lambda i: (-(Fraction(remaining[i], basket.units[i]) - value), i))
    left = per_receipt or None
    off: dict[int, int] = {}
    for i in lines:
        units = basket.units[i]
        k = units if left is None else min(units, left)
        if k <= 0:
            break
        now = round_half_up(Fraction(remaining[i] * k, units))
        off[i] = min(max(now - _unit_cost(reward.value, basket, i, k), 0), room[i])
        if left is not None and off[i] > 0:
            left -= k
    return off


def _free_items(
    reward: FreeItemReward,
    matching: Sequence[int],
    basket: Basket,
    remaining: Sequence[int],
    room: Mapping[int, int],
    per_receipt: int,
) -> dict[int, int]:
    # Units are handled as runs (one per line) so a line of 10,000 units costs one step.
    runs = sorted(
        ((Fraction(remaining[i], basket.units[i]), i) for i in matching if basket.units[i] > 0),
        key=lambda run: (-run[0], run[1]),
    )
    size = reward.buy + reward.get
    total_units = sum(basket.units[i] for _, i in runs)
    groups = total_units // size
    if per_receipt:
        groups = min(groups, per_receipt)
    end = groups * size  # units past the last counted group are never free

    def free_before(x: int) -> int:
        # Free positions in [0, x): the last ``get`` of every group of ``size``.
        x = min(x, end)
        return (x // size) * reward.get + max(x % size - reward.buy, 0)

    off: dict[int, int] = {}
    start = 0
    for _, i in runs:
        units = basket.units[i]
        free = free_before(start + units) - free_before(start)
        start += units
        if free:
            d = round_half_up(Fraction(remaining[i] * free, units))
            off[i] = min(d, room[i])
    return off


def points_part(
    reward: PointReward,
    *,
    paid_matching: int,
    tier_percent: Decimal,
    point_value: int,
) -> Fraction:
    """Exact (unrounded) points a reward adds; ``paid_matching``, ``point_value`` in kopecks.

    Percent accruals are a share of the money paid, turned into points at ``point_value``.
    """
    if isinstance(reward, PointsReward):
        return Fraction(reward.value)
    money = Fraction(paid_matching, point_value)
    if isinstance(reward, PointsPercentReward):
        return money * Fraction(reward.value) / 100
    return money * Fraction(tier_percent) * (Fraction(reward.value) - 1) / 100
