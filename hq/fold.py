"""A card's points as head office sees them: a pure replay of its ledger entries.

:func:`fold` replays a card's entries from every till in HQ's order (the order they
arrived) with the rules of domain.md and returns the card's :class:`CardState` at ``now``:

* ``accrue`` makes a lot: pending until ``available_from``, expiring at ``expires_at``;
* ``adjust`` with points > 0 makes a lot (spendable at once and never expiring unless the
  entry says otherwise: an opening balance); < 0 consumes;
* ``redeem``, ``hold`` and ``expire`` consume, soonest expiry first (FIFO); ``expire``
  names the lot it empties (``ref`` = the lot's crediting entry), ``redeem`` first spends
  the lots its hold (``ref``) set aside, as the till did;
* ``release`` puts back what its hold (``ref``) took;
* ``reverse`` consumes first from the lot of the same receipt's ``accrue`` (pending points
  too);
* ``return`` refills the lots its receipt's ``redeem`` consumed, latest-expiring first.

A debit no lot can cover is a **debt**: the balance goes negative (offline redemptions are
facts, not refused). Points credited while a card is in debt pay the debt first, so points
never expire while the card owes them.

Each consumption happens at its entry's ``created_at``: a lot that was not yet spendable,
or had already expired, at that instant is not touched. ``now`` only decides what is
pending, spendable or expired in the result. Invariant (tested with hypothesis)::

    Σ points of the counted entries == balance + pending + Σ expired_due

Holds: by default ``hold`` and ``release`` entries are left out (``count_holds=False``), as
the sync protocol says: a hold reserves points only on the till that placed it, and its
release and redemption arrive in the same stream.

Pure: no I/O, no clock, no globals.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Stands in for "no expiry" in sort keys; never compared with a real expiry, because the
# key's ``expires_at is None`` element comes first and already differs.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class FoldEntry:
    """What the fold needs of one ledger entry."""

    id: str
    till: str
    kind: str
    points: int
    created_at: datetime
    receipt_id: str | None = None
    ref: str | None = None
    available_from: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Lot:
    """Points a crediting entry brought that are still there."""

    points: int
    available_from: datetime
    expires_at: datetime | None
    source: str  # the crediting entry's id


@dataclass(frozen=True, kw_only=True)
class CardState:
    """A card's points at ``now``: what it may spend, what is pending, what expired."""

    balance: int  # spendable now, less any debt (may be negative)
    pending: int  # in lots not yet spendable
    debt: int  # debits no lot covered (>= 0); already taken off ``balance``
    lots: tuple[Lot, ...]  # lots with points left, not expired at ``now``, FIFO order
    expired_due: tuple[Lot, ...]  # expired lots with points left: HQ writes their ``expire``

    @property
    def next_expiry(self) -> datetime | None:
        """When the next lot with points left expires (None: none will)."""
        dates = [lot.expires_at for lot in self.lots if lot.expires_at is not None]
        return min(dates) if dates else None


@dataclass
class _Lot:
    source: str
    remaining: int
    available_from: datetime
    expires_at: datetime | None
    order: int


@dataclass
class _State:
    lots: dict[str, _Lot] = field(default_factory=dict)
    debt: int = 0
    moves: dict[str, dict[str, int]] = field(default_factory=dict)  # entry id → lot → ±points
    accrue_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (till, receipt)
    redeems_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    returns_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def move(self, entry: str, lot: _Lot, points: int) -> None:
        lot.remaining += points
        per = self.moves.setdefault(entry, {})
        per[lot.source] = per.get(lot.source, 0) + points

    def credit(
        self, e: FoldEntry, points: int, available: datetime, expires: datetime | None
    ) -> None:
        """New points: pay any debt first, the rest becomes a lot named by the entry."""
        paid = min(self.debt, points)
        self.debt -= paid
        lot = _Lot(e.id, 0, available, expires, len(self.lots))
        self.lots[e.id] = lot
        self.move(e.id, lot, points - paid)

    def credit_rest(self, e: FoldEntry, points: int) -> None:
        """Points given back that no lot takes: pay debt, then a spendable, lasting lot."""
        if points <= 0:
            return
        paid = min(self.debt, points)
        self.debt -= paid
        if points > paid:
            key = e.id if e.id not in self.lots else f"{e.id}#rest"
            lot = _Lot(key, 0, e.created_at, None, len(self.lots))
            self.lots[key] = lot
            self.move(e.id, lot, points - paid)

    def consume(
        self,
        e: FoldEntry,
        points: int,
        *,
        first: Iterable[tuple[str, int]] = (),
        include_pending: bool = False,
    ) -> None:
        """Take ``points`` for entry ``e``: the ``first`` lots (up to each amount), then FIFO."""
        left = points
        for source, cap in first:
            lot = self.lots.get(source)
            if lot is None or left <= 0:
                continue
            take = min(left, cap, lot.remaining)
            if take > 0:
                self.move(e.id, lot, -take)
                left -= take
        at = e.created_at
        usable = [
            lot
            for lot in self.lots.values()
            if lot.remaining > 0
            and (lot.expires_at is None or lot.expires_at > at)
            and (include_pending or lot.available_from <= at)
        ]
        # The till's order: spendable first, then soonest expiry (never-expiring last).
        usable.sort(
            key=lambda lot: (
                lot.available_from > at,
                lot.expires_at is None,
                lot.expires_at or _NEVER,
                lot.available_from,
                lot.order,
            )
        )
        for lot in usable:
            if left <= 0:
                break
            take = min(left, lot.remaining)
            self.move(e.id, lot, -take)
            left -= take
        self.debt += left

    def taken_by(self, entries: Iterable[str]) -> dict[str, int]:
        """Points the given entries took out of each lot (net of what they put back)."""
        out: dict[str, int] = {}
        for entry in entries:
            for source, pts in self.moves.get(entry, {}).items():
                out[source] = out.get(source, 0) - pts
        return out


def fold(entries: Iterable[FoldEntry], now: datetime, *, count_holds: bool = False) -> CardState:
    """Replay a card's entries (in HQ order) and say what the card holds at ``now``."""
    st = _State()
    for e in entries:
        if e.kind in ("hold", "release") and not count_holds:
            continue
        receipt = (e.till, e.receipt_id) if e.receipt_id else None
        if e.kind == "accrue" or (e.kind == "adjust" and e.points > 0):
            if e.points <= 0:  # a zero accrual makes no lot; a negative one is a debit
                st.consume(e, -e.points)
                continue
            available = e.available_from or e.created_at
            st.credit(e, e.points, available, e.expires_at)
            if e.kind == "accrue" and receipt:
                st.accrue_of.setdefault(receipt, e.id)
        elif e.kind == "release":
            taken = st.taken_by([e.ref]) if e.ref else {}
            _give_back(st, e, taken, e.points, latest_first=False)
        elif e.kind == "return":
            given = 0
            if receipt:
                owed = st.taken_by(st.redeems_of.get(receipt, []))
                for source, back in st.taken_by(st.returns_of.get(receipt, [])).items():
                    if source in owed:
                        owed[source] += back  # what earlier returns gave back is owed no more
                given = _give_back(st, e, owed, e.points, latest_first=True, rest=False)
                st.returns_of.setdefault(receipt, []).append(e.id)
            st.credit_rest(e, e.points - given)
        elif e.points > 0:
            # Any other kind that adds points (not written by tillgate tills): a plain credit.
            st.credit_rest(e, e.points)
        elif e.points < 0:
            first: list[tuple[str, int]] = []
            include_pending = False
            if e.kind == "redeem" and e.ref and count_holds:
                first = list(st.taken_by([e.ref]).items())
            elif e.kind == "expire" and e.ref:
                first = [(e.ref, -e.points)]
            elif e.kind == "reverse":
                include_pending = True
                accrue = st.accrue_of.get(receipt) if receipt else None
                if accrue:
                    first = [(accrue, -e.points)]
            st.consume(e, -e.points, first=first, include_pending=include_pending)
            if e.kind == "redeem" and receipt:
                st.redeems_of.setdefault(receipt, []).append(e.id)
    return _state_at(st, now)


def _give_back(
    st: _State,
    e: FoldEntry,
    owed: dict[str, int],
    points: int,
    *,
    latest_first: bool,
    rest: bool = True,
) -> int:
    """Refill lots with what was taken from them (up to ``points``); returns points given."""
    lots = [st.lots[s] for s, n in owed.items() if n > 0 and s in st.lots]
    if latest_first:
        lots.sort(
            key=lambda lot: (
                lot.expires_at is None,
                lot.expires_at or _NEVER,
                lot.order,
            ),
            reverse=True,
        )
    else:
        lots.sort(key=lambda lot: lot.order)
    left = points
    for lot in lots:
        if left <= 0:
            break
        back = min(left, owed[lot.source])
        st.move(e.id, lot, back)
        left -= back
    if rest:
        st.credit_rest(e, left)
        return points
    return points - left


def _state_at(st: _State, now: datetime) -> CardState:
    spendable = pending = 0
    lots: list[_Lot] = []
    expired: list[_Lot] = []
    for lot in st.lots.values():
        if lot.remaining == 0:
            continue
        if lot.expires_at is not None and lot.expires_at <= now:
            expired.append(lot)
        elif lot.available_from > now:
            pending += lot.remaining
            lots.append(lot)
        else:
            spendable += lot.remaining
            lots.append(lot)

    def order(lot: _Lot) -> tuple[bool, bool, datetime, int]:
        return (
            lot.available_from > now,
            lot.expires_at is None,
            lot.expires_at or _NEVER,
            lot.order,
        )

    def public(lot: _Lot) -> Lot:
        return Lot(
            points=lot.remaining,
            available_from=lot.available_from,
            expires_at=lot.expires_at,
            source=lot.source,
        )

    return CardState(
        balance=spendable - st.debt,
        pending=pending,
        debt=st.debt,
        lots=tuple(public(lot) for lot in sorted(lots, key=order)),
        expired_due=tuple(public(lot) for lot in sorted(expired, key=lambda lot: lot.order)),
    )
