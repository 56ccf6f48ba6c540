"""Points lots: the one implementation of how points are spent, given back and expire.

A crediting entry (an ``accrue``, a positive ``adjust``, a ``return`` no lot takes) brings
a :class:`Lot`: pending until ``available_from``, spendable until ``expires_at`` (None:
never expires). The till (over its SQLite rows) and head office (over its replay of every
till's entries) load their lots as these values, ask this module for a :class:`Plan`, and
apply the plan's moves to their own storage; so both choose the same lots, point for point.

The rules (domain.md, "Points life cycle"):

* **Spending** takes the lots that expire first (FIFO); lots that expire together go in
  order of creation — the crediting entry's till ``seq``, then its entry id — so the
  choice is the same on every till and at head office, never the accident of a uuid or of
  arrival order. Never-expiring lots go last. Only spendable lots are taken, unless a
  reversal reaches pending ones (after every spendable one). Some lots may be named to be
  drained first (a reversal's own accrual, a redemption's hold, an expiry's lot).
* **Giving back** (a refund returning redeemed points) refills the lots its receipt's
  redemptions took, latest-expiring first (ties: latest created first, the exact reverse
  of spending), each at most with what was taken from it net of earlier returns.
* **Releasing** a hold puts back exactly what the hold set aside, lot by lot.
* **Expiry**: a lot with points left is expired once ``expires_at <= at``.
* **Debt**: a debit no lot covers is a debt (the balance goes negative); points credited
  while a card owes pay the debt first (:func:`settle`), so owed points never expire.

Pure: no I/O, no clock reads, no globals. Instants are timezone-aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

# Stands in for "no expiry" in sort keys; never compared with a real expiry, because the
# key's ``expires_at is None`` element comes first and already differs.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Lot:
    """Points one crediting entry brought, as they stand now."""

    id: str  # names the lot: the crediting entry's id on the till
    remaining: int  # points still in the lot
    available_from: datetime  # pending before this instant
    expires_at: datetime | None  # expired from this instant on; None: never
    seq: int  # the crediting entry's till seq: with ``id``, the order of creation

    @property
    def created(self) -> tuple[int, str]:
        """The order of creation: the crediting entry's till seq, then its entry id."""
        return (self.seq, self.id)

    def expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at

    def pending(self, at: datetime) -> bool:
        return self.available_from > at

    def spendable(self, at: datetime) -> bool:
        return not self.pending(at) and not self.expired(at)


def expiry_key(lot: Lot) -> tuple[bool, datetime, int, str]:
    """Soonest expiry first, never-expiring last; ties in order of creation."""
    return (lot.expires_at is None, lot.expires_at or _NEVER, lot.seq, lot.id)


def spend_key(lot: Lot, at: datetime) -> tuple[bool, bool, datetime, int, str]:
    """The spending order at ``at``: spendable before pending, then :func:`expiry_key`."""
    return (lot.pending(at), *expiry_key(lot))


def spending_order(
    lots: Iterable[Lot], at: datetime, *, include_pending: bool = False
) -> list[Lot]:
    """The lots a debit at ``at`` may take, in the order it takes them."""
    usable = [
        lot
        for lot in lots
        if lot.remaining > 0 and not lot.expired(at) and (include_pending or not lot.pending(at))
    ]
    return sorted(usable, key=lambda lot: spend_key(lot, at))


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How one entry moves points: ``moves`` per lot (negative: taken, positive: put back).

    Each lot appears at most once, in the order the rules reached it. ``short`` is what no
    lot could take (a debit: debt) or take back (a give-back: for the caller to credit).
    """

    moves: tuple[tuple[str, int], ...] = ()
    short: int = 0

    @property
    def moved(self) -> int:
        """The points the plan moves, whichever the direction."""
        return sum(abs(points) for _, points in self.moves)


class _Moves:
    """Moves being planned, merged per lot, over the lots' remaining points."""

    def __init__(self, lots: Iterable[Lot]) -> None:
        self.lots = {lot.id: lot for lot in lots}
        self.left = {lot.id: lot.remaining for lot in self.lots.values()}
        self.moves: dict[str, int] = {}

    def move(self, lot_id: str, points: int) -> None:
        self.left[lot_id] += points
        self.moves[lot_id] = self.moves.get(lot_id, 0) + points

    def plan(self, short: int) -> Plan:
        return Plan(moves=tuple((k, v) for k, v in self.moves.items() if v), short=short)


def plan_consume(
    lots: Iterable[Lot],
    points: int,
    at: datetime,
    *,
    first: Sequence[tuple[str, int]] = (),
    include_pending: bool = False,
) -> Plan:
    """Take ``points`` out of ``lots`` for a debit made at ``at``.

    ``first`` names lots to drain before any other, each up to its cap (whatever the lot's
    state: a hold's lots are spent even if one expired since it was placed); then FIFO
    over :func:`spending_order`. ``short`` is what no lot covered.
    """
    plan = _Moves(lots)
    left = points
    for lot_id, cap in first:
        if left <= 0:
            break
        if lot_id not in plan.lots:
            continue
        take = min(left, cap, plan.left[lot_id])
        if take > 0:
            plan.move(lot_id, -take)
            left -= take
    if left > 0:
        current = [
            lot if plan.left[lot.id] == lot.remaining else replace(lot, remaining=plan.left[lot.id])
            for lot in plan.lots.values()
        ]
        for lot in spending_order(current, at, include_pending=include_pending):
            if left <= 0:
                break
            take = min(left, lot.remaining)
            plan.move(lot.id, -take)
            left -= take
    return plan.plan(max(left, 0))


def plan_take(lots: Iterable[Lot], reserved: Mapping[str, int]) -> Plan:
    """Spend exactly the points named per lot (a confirmed hold's), as far as they are there."""
    plan = _Moves(lots)
    short = 0
    for lot_id, points in reserved.items():
        take = max(0, min(points, plan.left.get(lot_id, 0)))
        if take:
            plan.move(lot_id, -take)
        short += max(points, 0) - take
    return plan.plan(short)


def plan_release(reserved: Mapping[str, int], points: int | None = None) -> Plan:
    """Put back what a hold set aside (``reserved``: lot → points), lot by lot.

    ``points`` caps the total (None: all of it, as a release always does on a till).
    """
    moves: list[tuple[str, int]] = []
    left = sum(max(n, 0) for n in reserved.values()) if points is None else points
    for lot_id, n in reserved.items():
        back = min(left, n)
        if back > 0:
            moves.append((lot_id, back))
            left -= back
    return Plan(moves=tuple(moves), short=max(left, 0))


def still_owed(taken: Mapping[str, int], given: Mapping[str, int]) -> dict[str, int]:
    """What each lot is still owed: what redemptions ``taken`` less what returns ``given``."""
    return {lot_id: n - given.get(lot_id, 0) for lot_id, n in taken.items()}


def plan_give_back(lots: Iterable[Lot], owed: Mapping[str, int], points: int) -> Plan:
    """Return ``points`` to the lots they were taken from, latest-expiring first.

    A lot gets at most what it is ``owed``; ``short`` is what no lot takes back (points
    spent while the card was in debt: the caller credits them as a fresh lot).
    """
    back_to = sorted((lot for lot in lots if owed.get(lot.id, 0) > 0), key=expiry_key, reverse=True)
    moves: list[tuple[str, int]] = []
    left = points
    for lot in back_to:
        if left <= 0:
            break
        back = min(left, owed[lot.id])
        moves.append((lot.id, back))
        left -= back
    return Plan(moves=tuple(moves), short=max(left, 0))


def expired(lots: Iterable[Lot], at: datetime) -> list[Lot]:
    """Lots with points left that are expired at ``at``, soonest expiry first."""
    return sorted((lot for lot in lots if lot.remaining > 0 and lot.expired(at)), key=expiry_key)


def settle(debt: int, points: int) -> tuple[int, int]:
    """Credit ``points`` to a card owing ``debt``: (points paying the debt, points for a lot)."""
    paid = min(max(debt, 0), max(points, 0))
    return paid, points - paid


@dataclass(frozen=True, kw_only=True)
class Tally:
    """The points of a card's lots at an instant, by state."""

    spendable: int
    pending: int
    expired: int  # expired, not yet written off by an ``expire`` entry


def tally(lots: Iterable[Lot], at: datetime) -> Tally:
    """Sum the lots' remaining points by their state at ``at``."""
    spendable = pending = gone = 0
    for lot in lots:
        if lot.remaining == 0:
            continue
        if lot.expired(at):
            gone += max(lot.remaining, 0)
        elif lot.pending(at):
            pending += lot.remaining
        else:
            spendable += lot.remaining
    return Tally(spendable=spendable, pending=pending, expired=gone)
