"""A card's points as head office sees them: a pure replay of its ledger entries.

:func:`fold` replays a card's entries from every till in HQ's order (the order they
arrived) and returns the card's :class:`CardState` at ``now``. Which lots each entry takes,
refills or puts back is decided by :mod:`tillgate.core.lots`, the very code a till runs
over its own lots, so a till's ledger folded here ends in the lots the till has:

* ``accrue`` makes a lot: pending until ``available_from``, expiring at ``expires_at``;
* ``adjust`` with points > 0 makes a lot (spendable at once and never expiring unless the
  entry says otherwise: an opening balance); < 0 consumes;
* ``redeem`` and ``expire`` consume, soonest expiry first (FIFO), lots expiring together in
  order of creation (the crediting entry's till ``seq``, then its id); ``expire`` names the
  lot it empties (``ref`` = the lot's crediting entry), ``redeem`` first spends the lots its
  hold (``ref``) set aside, as the till did;
* ``hold`` sets spendable lots aside, ``release`` puts back exactly what its hold (``ref``)
  set aside (see below);
* ``reverse`` consumes first from the lot of the same receipt's ``accrue`` (pending points
  too);
* ``return`` refills the lots its receipt's ``redeem`` consumed, latest-expiring first.

A debit no lot can cover is a **debt**: the balance goes negative (offline redemptions are
facts, not refused). Points credited while a card is in debt pay the debt first, so points
never expire while the card owes them (a standalone till does the same).

Each consumption happens at its entry's ``created_at``: a lot that was not yet spendable,
or had already expired, at that instant is not touched. ``now`` only decides what is
pending, spendable or expired in the result. Invariant (tested with hypothesis)::

    Σ points of the counted entries == balance + pending + Σ expired_due

Holds: by default (``count_holds=False``) ``hold`` and ``release`` entries are not counted
in the result, as the sync protocol says: a hold reserves points only on the till that
placed it, and its release and redemption arrive in the same stream. They are still
replayed as the till lived them — a hold sets its lots aside, so that other debits made
while it is open take other lots, and a lot expiring meanwhile keeps the held points —
and a hold still open at the end puts its points back. An ``expire`` entry written by head
office itself for a lot that an open hold drew on writes off the held points too.
``count_holds=True`` counts them: a hold is a debit, its release a credit.

Incremental: :func:`replay` folds entries onto a :class:`FoldState` (the lots, the debt
and what each entry moved, as after the entries folded so far), and :func:`state_at` says
what that state holds at ``now``; ``fold`` is the two over a whole history. Head office
keeps each card's state (:meth:`FoldState.dump`) and folds only its new entries onto it:
the same rules, the same result as a replay from the first entry (tested with hypothesis).

Pure: no I/O, no clock, no globals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from tillgate.core.lots import Lot as CoreLot
from tillgate.core.lots import (
    Plan,
    expired,
    plan_consume,
    plan_give_back,
    plan_release,
    plan_take,
    settle,
    spend_key,
    still_owed,
    tally,
)


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
    seq: int = 0  # the till's sequence number: with ``id``, the order its lot was created


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

    def balance_until(self, now: datetime) -> datetime | None:
        """Until when ``balance`` holds with no new entry: the next instant a pending lot
        becomes spendable or a lot expires (None: it holds until an entry comes)."""
        dates = [lot.available_from for lot in self.lots if lot.available_from > now]
        dates += [lot.expires_at for lot in self.lots if lot.expires_at is not None]
        return min(dates) if dates else None


# The kept state is read and written for every card of every push: msgspec's JSON, not
# json's, which took as long as the replay it saves for a card with a long history.
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder()


@dataclass
class FoldState:
    """A card's fold after the entries replayed so far: the rules' working state."""

    lots: dict[str, CoreLot] = field(default_factory=dict)
    debt: int = 0
    moves: dict[str, dict[str, int]] = field(default_factory=dict)  # entry id → lot → ±points
    held: dict[str, dict[str, int]] = field(default_factory=dict)  # open hold → lot → points
    accrue_of: dict[tuple[str, str], str] = field(default_factory=dict)  # (till, receipt)
    redeems_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    returns_of: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # Each lot's instants as text, as :meth:`load` read them: a lot's dates never change,
    # so :meth:`dump` writes them again without formatting them again.
    texts: dict[str, tuple[str, str | None]] = field(default_factory=dict, compare=False)

    def apply(self, entry: str, plan: Plan) -> None:
        per = self.moves.setdefault(entry, {})
        for source, points in plan.moves:
            self.lots[source] = _moved(self.lots[source], points)
            per[source] = per.get(source, 0) + points

    def new_lot(
        self, e: FoldEntry, key: str, points: int, available: datetime, expires: datetime | None
    ) -> None:
        """A lot named ``key`` holding the ``points`` entry ``e`` put in it (its move)."""
        self.texts.pop(key, None)  # a lot made anew has its own dates
        self.lots[key] = CoreLot(
            id=key, remaining=points, available_from=available, expires_at=expires, seq=e.seq
        )
        per = self.moves.setdefault(e.id, {})
        per[key] = per.get(key, 0) + points

    def credit(
        self, e: FoldEntry, points: int, available: datetime, expires: datetime | None
    ) -> None:
        """New points: pay any debt first, the rest becomes a lot named by the entry."""
        paid, rest = settle(self.debt, points)
        self.debt -= paid
        self.new_lot(e, e.id, rest, available, expires)

    def credit_rest(self, e: FoldEntry, points: int) -> None:
        """Points given back that no lot takes: pay debt, then a spendable, lasting lot."""
        if points <= 0:
            return
        paid, rest = settle(self.debt, points)
        self.debt -= paid
        if rest > 0:
            key = e.id if e.id not in self.lots else f"{e.id}#rest"
            self.new_lot(e, key, rest, e.created_at, None)

    def consume(
        self,
        e: FoldEntry,
        points: int,
        *,
        first: Iterable[tuple[str, int]] = (),
        include_pending: bool = False,
    ) -> None:
        """Take ``points`` for entry ``e``: the ``first`` lots (up to each amount), then FIFO."""
        plan = plan_consume(
            self.lots.values(),
            points,
            e.created_at,
            first=list(first),
            include_pending=include_pending,
        )
        self.apply(e.id, plan)
        self.debt += plan.short

    def taken_by(self, entries: Iterable[str]) -> dict[str, int]:
        """Points the given entries took out of each lot (net of what they put back)."""
        out: dict[str, int] = {}
        for entry in entries:
            for source, pts in self.moves.get(entry, {}).items():
                out[source] = out.get(source, 0) - pts
        return out

    def in_creation_order(self, points: Mapping[str, int]) -> dict[str, int]:
        """``points`` per lot, for the lots that exist and are owed some, oldest lot first."""
        known = [self.lots[s] for s, n in points.items() if n > 0 and s in self.lots]
        return {lot.id: points[lot.id] for lot in sorted(known, key=lambda lot: lot.created)}

    def dump(self) -> str:
        """The state as JSON text, every mapping in its order (:meth:`load` reads it back)."""
        texts = self.texts
        for lot in self.lots.values():
            if lot.id not in texts:
                expires = lot.expires_at.isoformat() if lot.expires_at else None
                texts[lot.id] = (lot.available_from.isoformat(), expires)
        lots = [[lot.id, lot.remaining, *texts[lot.id], lot.seq] for lot in self.lots.values()]
        return _ENCODER.encode(
            {
                "v": 1,
                "lots": lots,
                "debt": self.debt,
                "moves": self.moves,
                "held": self.held,
                "accrue_of": [[*k, v] for k, v in self.accrue_of.items()],
                "redeems_of": [[*k, v] for k, v in self.redeems_of.items()],
                "returns_of": [[*k, v] for k, v in self.returns_of.items()],
            },
        ).decode("utf-8")

    @classmethod
    def load(cls, text: str) -> FoldState:
        data: dict[str, Any] = _DECODER.decode(text)
        if data.get("v") != 1:
            raise ValueError(f"not a fold state this version reads: {text[:40]!r}")
        lots = {
            key: CoreLot(
                id=key,
                remaining=remaining,
                available_from=datetime.fromisoformat(available),
                expires_at=datetime.fromisoformat(expires) if expires else None,
                seq=seq,
            )
            for key, remaining, available, expires, seq in data["lots"]
        }
        texts = {key: (available, expires) for key, _, available, expires, _ in data["lots"]}
        return cls(
            lots=lots,
            debt=data["debt"],
            moves=data["moves"],
            held=data["held"],
            accrue_of={(t, r): v for t, r, v in data["accrue_of"]},
            redeems_of={(t, r): v for t, r, v in data["redeems_of"]},
            returns_of={(t, r): v for t, r, v in data["returns_of"]},
            texts=texts,
        )


def _moved(lot: CoreLot, points: int) -> CoreLot:
    """``lot`` with ``points`` more (or fewer) in it: ``dataclasses.replace``, without its
    generic look at every field (a push folds tens of thousands of moves)."""
    return CoreLot(
        id=lot.id,
        remaining=lot.remaining + points,
        available_from=lot.available_from,
        expires_at=lot.expires_at,
        seq=lot.seq,
    )


def fold(entries: Iterable[FoldEntry], now: datetime, *, count_holds: bool = False) -> CardState:
    """Replay a card's entries (in HQ order) and say what the card holds at ``now``."""
    return state_at(replay(entries, count_holds=count_holds), now)


def replay(
    entries: Iterable[FoldEntry], *, count_holds: bool = False, onto: FoldState | None = None
) -> FoldState:
    """Fold a card's entries (in HQ order) onto ``onto`` (changed in place; None: a card
    with no entries yet), with the ``count_holds`` it was folded with; returns the state."""
    st = FoldState() if onto is None else onto
    for e in entries:
        if e.kind in ("hold", "release") and not count_holds:
            _set_aside(st, e)
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
            back = plan_release(
                st.in_creation_order(st.taken_by([e.ref]) if e.ref else {}), e.points
            )
            st.apply(e.id, back)
            st.credit_rest(e, back.short)
        elif e.kind == "return":
            given = 0
            if receipt:
                given_back = st.taken_by(st.returns_of.get(receipt, []))
                owed = still_owed(
                    st.taken_by(st.redeems_of.get(receipt, [])),
                    {source: -n for source, n in given_back.items()},
                )
                plan = plan_give_back([st.lots[s] for s in owed if s in st.lots], owed, e.points)
                st.apply(e.id, plan)
                given = e.points - plan.short
                st.returns_of.setdefault(receipt, []).append(e.id)
            st.credit_rest(e, e.points - given)
        elif e.points > 0:
            # Any other kind that adds points (not written by tillgate tills): a plain credit.
            st.credit_rest(e, e.points)
        elif e.kind == "expire" and e.ref and e.points < 0:
            _expire(st, e, write_off_held=not count_holds)
        elif e.points < 0:
            first: list[tuple[str, int]] = []
            include_pending = False
            if e.kind == "redeem" and e.ref:
                first = list(st.taken_by([e.ref]).items())
            elif e.kind == "reverse":
                include_pending = True
                accrue = st.accrue_of.get(receipt) if receipt else None
                if accrue:
                    first = [(accrue, -e.points)]
            st.consume(e, -e.points, first=first, include_pending=include_pending)
            if e.kind == "redeem" and receipt:
                st.redeems_of.setdefault(receipt, []).append(e.id)
    return st


def state_at(st: FoldState, now: datetime) -> CardState:
    """What a card with fold state ``st`` holds at ``now`` (``st`` is left as it is)."""
    lots = dict(st.lots)
    for held in st.held.values():  # holds still open are not counted: points go back
        for source, points in plan_release(held).moves:
            lots[source] = _moved(lots[source], points)
    return _state_at(lots, st.debt, now)


def _set_aside(st: FoldState, e: FoldEntry) -> None:
    """A hold or release when holds are not counted: lots set aside, then put back."""
    if e.kind == "hold" and e.points < 0:
        plan = plan_consume(st.lots.values(), -e.points, e.created_at)
        st.apply(e.id, plan)
        st.held[e.id] = {source: -n for source, n in plan.moves}
    elif e.kind == "release" and e.ref in st.held:
        st.apply(e.id, plan_release(st.held.pop(e.ref)))


def _expire(st: FoldState, e: FoldEntry, *, write_off_held: bool) -> None:
    """Empty the lot ``e.ref`` names; points it no longer holds are taken as any debit."""
    assert e.ref is not None
    want = -e.points
    plan = plan_take(st.lots.values(), {e.ref: want})
    st.apply(e.id, plan)
    left = plan.short
    if write_off_held:
        # Head office expired the lot with the points an open hold set aside in it: the
        # hold keeps them no more (its release puts back only what is left).
        for held in st.held.values():
            take = min(left, held.get(e.ref, 0))
            if take > 0:
                held[e.ref] -= take
                left -= take
    if left > 0:
        st.consume(e, left)


def _state_at(lots: dict[str, CoreLot], debt: int, now: datetime) -> CardState:
    counts = tally(lots.values(), now)
    live = [lot for lot in lots.values() if lot.remaining != 0 and not lot.expired(now)]

    def public(lot: CoreLot) -> Lot:
        return Lot(
            points=lot.remaining,
            available_from=lot.available_from,
            expires_at=lot.expires_at,
            source=lot.id,
        )

    return CardState(
        balance=counts.spendable - debt,
        pending=counts.pending,
        debt=debt,
        lots=tuple(public(lot) for lot in sorted(live, key=lambda lot: spend_key(lot, now))),
        expired_due=tuple(public(lot) for lot in expired(lots.values(), now)),
    )
