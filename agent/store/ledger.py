"""The points ledger: append-only entries, accrual lots, holds, expiry and FIFO spending.

Every balance is derived from the entries. For a card at instant ``now``:

* ``total``   = Σ points of all its entries (holds and releases included);
* ``pending`` = points of lots not yet spendable (``available_from > now``);
* ``held``    = points reserved by open holds (placed by calculate, not yet resolved);
* ``balance`` = ``total - pending + held`` — the points the card owns and may spend;
* ``redeemable`` = ``balance - held`` — what a new receipt may spend now.

so ``total == balance + pending - held`` always holds. Lots whose ``expires_at`` has
passed still count until :func:`expire_due` writes their ``expire`` entries; readers use
:func:`balance`, which already leaves them out, so a balance is right between sweeps too.

Which lots a debit takes, a refund refills and a release puts back, and which lots are
expired, is decided by :mod:`tillgate.core.lots`, the code head office folds every till's
entries with: this module only reads the card's lots as core values (their order of
creation is the crediting entry's ``seq``, then its id) and writes the plan's
``lot_moves`` and ``lots.remaining``. So a till and head office spend the same lots.

All functions take an open connection inside a write (or read) transaction of
:class:`~tillgate.agent.store.db.Database`; none commits.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tillgate.core import lots

KINDS = ("accrue", "redeem", "hold", "release", "reverse", "return", "expire", "adjust")


@functools.lru_cache(maxsize=64)
def ts(when: datetime) -> str:
    """Instants are stored as UTC ISO-8601 with microseconds, so they sort as text.

    (A calculate writes the same instant a dozen times: the last few are remembered.)"""
    if when.tzinfo is None:
        raise ValueError("naive datetime given to the ledger")
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True, kw_only=True)
class Balance:
    total: int
    balance: int
    pending: int
    held: int

    @property
    def redeemable(self) -> int:
        return max(0, self.balance - self.held)


@dataclass(frozen=True, kw_only=True)
class Entry:
    id: str
    seq: int
    till: str
    card: str
    kind: str
    points: int
    receipt_id: str | None
    refund_id: str | None
    ref: str | None
    created_at: str


def append(
    conn: sqlite3.Connection,
    *,
    till: str,
    card: str,
    kind: str,
    points: int,
    at: datetime,
    receipt_id: str | None = None,
    refund_id: str | None = None,
    ref: str | None = None,
    note: str | None = None,
) -> str:
    """Append one entry with a till-made id and the next per-till sequence number."""
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r}")
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger").fetchone()[0]
    entry_id = uuid.uuid4().hex
    conn.execute(
        "INSERT INTO ledger (id, seq, till, card, kind, points, receipt_id, refund_id, ref, note,"
        " created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (entry_id, seq, till, card, kind, points, receipt_id, refund_id, ref, note, ts(at)),
    )
    return entry_id


def add_lot(
    conn: sqlite3.Connection,
    *,
    entry_id: str,
    card: str,
    points: int,
    available_from: datetime,
    expires_at: datetime | None,
) -> str:
    """Create the lot an ``accrue``, a positive ``adjust`` or an unplaced ``return`` brings.

    Points credited while the card owes pay its debt first (:func:`tillgate.core.lots.settle`,
    as head office folds them): the lot holds what is left, possibly nothing.
    """
    lot_id = entry_id  # one lot per crediting entry: the entry id names it
    _, points = lots.settle(debt(conn, card, leaving_out=entry_id), points)
    conn.execute(
        "INSERT INTO lots (id, card, entry_id, points, available_from, expires_at, remaining)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            lot_id,
            card,
            entry_id,
            points,
            ts(available_from),
            ts(expires_at) if expires_at else None,
            points,
        ),
    )
    return lot_id


def credit_many(
    conn: sqlite3.Connection,
    source: str,
    *,
    till: str,
    kind: str,
    at: datetime,
    available_from: datetime,
    expires_at: datetime | None,
    note: str | None = None,
) -> int:
    """:func:`append` and :func:`add_lot` of one crediting entry for each row of
    ``source`` (a query of ``ord, card, points``; entries numbered in ``ord`` order), in two
    statements instead of two a card (a first cards file of a million balances).

    Only for cards that owe nothing (the caller picks them: a card with no entry at all
    does not): each lot then holds the entry's whole points, as :func:`add_lot` gives
    them with no debt to settle. Returns how many entries.

    An id is 32 lowercase hex digits as :func:`append`'s (``uuid4().hex``): 64 random bits
    drawn once per call, then the row's number. Rising ids go at the end of the ledger's
    and the lots' id index; random ones dirtied a random page of each a card (23 → 8.5 µs
    of CPU a card at 300,000).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown ledger entry kind {kind!r}")
    first = int(conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM ledger").fetchone()[0])
    conn.execute(
        "INSERT INTO ledger (id, seq, till, card, kind, points, note, created_at)"
        " SELECT printf('%s%016x', ?, k), ? + k, ?, card, ?, points, ?, ?"
        " FROM (SELECT s.card, s.points, row_number() OVER (ORDER BY s.ord) - 1 AS k"
        f" FROM ({source}) AS s) ORDER BY k",
        (uuid.uuid4().hex[:16], first, till, kind, note, ts(at)),
    )
    conn.execute(
        "INSERT INTO lots (id, card, entry_id, points, available_from, expires_at, remaining)"
        " SELECT id, card, id, points, ?, ?, points FROM ledger WHERE seq >= ? ORDER BY seq",
        (ts(available_from), ts(expires_at) if expires_at else None, first),
    )
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0]) - first + 1


def debt(conn: sqlite3.Connection, card: str, *, leaving_out: str | None = None) -> int:
    """Points the card owes: debits no lot covered, less credits that paid them (>= 0).

    Derived from the rows: every entry but holds and releases moved its points into or out
    of lots (``lots.points`` is what a crediting entry's lot got), except what was debt.
    ``leaving_out``: an entry whose lot is not made yet. A card head office reports on
    (``hq_cards``) is 0 here: this till holds only its own lots of such a card, so a debit
    they do not cover is not a debt of the card; head office settles debts as it folds.
    """
    if conn.execute("SELECT 1 FROM hq_cards WHERE number = ?", (card,)).fetchone():
        return 0
    row = conn.execute(
        "SELECT"
        " COALESCE((SELECT SUM(m.points) FROM lot_moves m JOIN ledger e ON e.id = m.entry_id"
        "   WHERE e.card = :card AND e.kind NOT IN ('hold', 'release')"
        "   AND e.id IS NOT :entry), 0)"
        " + COALESCE((SELECT SUM(points) FROM lots WHERE card = :card), 0)"
        " - COALESCE((SELECT SUM(points) FROM ledger WHERE card = :card"
        "   AND kind NOT IN ('hold', 'release') AND id IS NOT :entry), 0)",
        {"card": card, "entry": leaving_out},
    ).fetchone()
    return max(0, int(row[0]))


def _lot(row: sqlite3.Row | tuple[Any, ...]) -> lots.Lot:
    lot_id, remaining, available_from, expires_at, seq = row[:5]
    return lots.Lot(
        id=lot_id,
        remaining=int(remaining),
        available_from=parse_ts(available_from),
        expires_at=parse_ts(expires_at) if expires_at else None,
        seq=int(seq),
    )


# A lot as core values: its order of creation is its crediting entry's seq (then id).
_LOT_COLUMNS = "l.id, l.remaining, l.available_from, l.expires_at, e.seq"
_LOTS = f"SELECT {_LOT_COLUMNS} FROM lots l JOIN ledger e ON e.id = l.entry_id"


def _card_lots(conn: sqlite3.Connection, card: str, also: str | None = None) -> list[lots.Lot]:
    """The card's lots with points left (and lot ``also`` whatever it holds)."""
    rows = conn.execute(
        f"{_LOTS} WHERE l.card = ? AND (l.remaining > 0 OR l.id = ?)", (card, also)
    ).fetchall()
    return [_lot(r) for r in rows]


def _lots_by_id(conn: sqlite3.Connection, ids: list[str]) -> list[lots.Lot]:
    if not ids:
        return []
    marks = ",".join("?" * len(ids))
    return [_lot(r) for r in conn.execute(f"{_LOTS} WHERE l.id IN ({marks})", ids).fetchall()]


def _move(conn: sqlite3.Connection, entry_id: str, lot_id: str, points: int) -> None:
    conn.execute(
        "INSERT INTO lot_moves (entry_id, lot_id, points) VALUES (?,?,?)"
        " ON CONFLICT (entry_id, lot_id) DO UPDATE SET points = points + excluded.points",
        (entry_id, lot_id, points),
    )
    conn.execute("UPDATE lots SET remaining = remaining + ? WHERE id = ?", (points, lot_id))


def _apply(conn: sqlite3.Connection, entry_id: str, plan: lots.Plan) -> None:
    for lot_id, points in plan.moves:
        _move(conn, entry_id, lot_id, points)


def consume(
    conn: sqlite3.Connection,
    *,
    entry_id: str,
    card: str,
    points: int,
    now: datetime,
    first_lot: str | None = None,
    include_pending: bool = False,
) -> int:
    """Take ``points`` out of the card's lots for an entry, soonest-to-expire first (FIFO).

    Lots expiring together go in order of creation (seq, then entry id): see
    :func:`tillgate.core.lots.plan_consume`. ``first_lot`` is drained before any other (a
    refund reverses its own accrual first); ``include_pending`` lets a reversal reach lots
    that are not yet spendable. Returns the points actually taken; any shortfall is debt
    the balance shows as negative.
    """
    if points <= 0:
        return points
    plan = lots.plan_consume(
        _card_lots(conn, card, first_lot),
        points,
        now,
        first=[(first_lot, points)] if first_lot is not None else (),
        include_pending=include_pending,
    )
    _apply(conn, entry_id, plan)
    return points - plan.short


def reserve(
    conn: sqlite3.Connection, *, hold_entry: str, card: str, points: int, now: datetime
) -> int:
    """Set aside spendable lots for a hold, so expiry cannot take points a receipt holds."""
    return consume(conn, entry_id=hold_entry, card=card, points=points, now=now)


def _reserved(conn: sqlite3.Connection, hold_entry: str) -> dict[str, int]:
    return {
        r[0]: -int(r[1])
        for r in conn.execute(
            "SELECT lot_id, points FROM lot_moves WHERE entry_id = ? AND points < 0"
            " ORDER BY lot_id",
            (hold_entry,),
        )
    }


def unreserve(conn: sqlite3.Connection, *, release_entry: str, hold_entry: str) -> None:
    """A released hold puts back exactly what it set aside, lot by lot (expired or not)."""
    _apply(conn, release_entry, lots.plan_release(_reserved(conn, hold_entry)))


def spend_reserved(conn: sqlite3.Connection, *, redeem_entry: str, hold_entry: str) -> int:
    """A confirmed hold's redemption spends the very lots the hold set aside.

    Called right after :func:`unreserve` of the same hold in one transaction, so the lots
    end as the hold left them; the points were the customer's when they were held, even
    if a lot has expired since. Returns the points taken.
    """
    reserved = _reserved(conn, hold_entry)
    plan = lots.plan_take(_lots_by_id(conn, list(reserved)), reserved)
    _apply(conn, redeem_entry, plan)
    return plan.moved


def give_back(
    conn: sqlite3.Connection,
    *,
    entry_id: str,
    from_entries: list[str],
    back_entries: list[str],
    points: int,
) -> int:
    """Return ``points`` to the lots that ``from_entries`` consumed, keeping their expiry.

    What ``back_entries`` (earlier returns for the same receipt) already gave a lot is owed
    to it no more, so repeated partial refunds refill each lot at most with what was taken
    from it. The lots expiring last are refilled first (kindest to the customer): see
    :func:`tillgate.core.lots.plan_give_back`.
    """
    if points <= 0 or not from_entries:
        return 0
    owed = lots.still_owed(
        _moved(conn, from_entries, taken=True), _moved(conn, back_entries, taken=False)
    )
    plan = lots.plan_give_back(_lots_by_id(conn, list(owed)), owed, points)
    _apply(conn, entry_id, plan)
    return points - plan.short


def _moved(conn: sqlite3.Connection, entries: list[str], *, taken: bool) -> dict[str, int]:
    """Points the entries took out of (``taken``) or put back into each lot."""
    if not entries:
        return {}
    marks = ",".join("?" * len(entries))
    sign = "<" if taken else ">"
    return {
        lot_id: abs(int(points))
        for lot_id, points in conn.execute(
            f"SELECT lot_id, SUM(points) FROM lot_moves WHERE entry_id IN ({marks})"
            f" AND points {sign} 0 GROUP BY lot_id",
            entries,
        )
    }


def balance(conn: sqlite3.Connection, card: str, now: datetime) -> Balance:
    """The card's balance at ``now``, derived from its entries and lots.

    A card head office has told this till about (a row in ``hq_cards``) is balanced as
    HQ's view plus this till's own entries HQ had not included yet: see
    :func:`_chain_balance`. Any other card is balanced from this till's ledger alone.
    """
    hq = conn.execute(
        "SELECT balance, pending, lots, through_seq, held FROM hq_cards WHERE number = ?", (card,)
    ).fetchone()
    if hq is not None:
        return _chain_balance(conn, card, now, hq)
    total = conn.execute(
        "SELECT COALESCE(SUM(points), 0) FROM ledger WHERE card = ?", (card,)
    ).fetchone()[0]
    own = lots.tally(_card_lots(conn, card), now)
    held = open_held(conn, card)
    # Expired lots not yet swept are already gone for the customer.
    return Balance(
        total=total,
        balance=total - own.pending - own.expired + held,
        pending=own.pending,
        held=held,
    )


def _chain_balance(conn: sqlite3.Connection, card: str, now: datetime, hq: sqlite3.Row) -> Balance:
    """HQ's view of a card re-evaluated at ``now`` plus this till's entries HQ has not seen.

    HQ's lots are re-read at the till's ``now`` (pending ones become spendable, expired ones
    drop out); ``balance + pending - Σ lots`` of HQ's view is what no lot backs (a debt) and
    carries over as it is. This till's own entries with ``seq > through_seq`` are added
    (holds and releases aside: open holds are counted by :func:`open_held`), minus what of
    them is still pending or already expired in the lots they made.
    """
    hq_lots = [
        lots.Lot(
            id=f"hq{i}",
            remaining=int(points),
            available_from=parse_ts(available_from),
            expires_at=parse_ts(expires_at) if expires_at else None,
            seq=0,
        )
        for i, (points, available_from, expires_at) in enumerate(json.loads(hq["lots"]))
    ]
    unbacked = hq["balance"] + hq["pending"] - sum(lot.remaining for lot in hq_lots)
    theirs = lots.tally(hq_lots, now)
    own = conn.execute(
        "SELECT COALESCE(SUM(points), 0) FROM ledger WHERE card = ? AND seq > ?"
        " AND kind NOT IN ('hold', 'release')",
        (card, hq["through_seq"]),
    ).fetchone()[0]
    mine = lots.tally(
        [
            _lot(r)
            for r in conn.execute(
                f"{_LOTS} WHERE l.card = ? AND e.seq > ?", (card, hq["through_seq"])
            ).fetchall()
        ],
        now,
    )
    held = open_held(conn, card)
    spendable = unbacked + theirs.spendable + own - mine.pending - mine.expired
    pending = theirs.pending + mine.pending
    # What other tills' open receipts hold at head office is not this till's to spend
    # either (as of the last pull): it counts as held, never as spent.
    return Balance(
        total=spendable + pending - held,
        balance=spendable,
        pending=pending,
        held=held + int(hq["held"]),
    )


def held(conn: sqlite3.Connection, card: str) -> int:
    """Points of the card no new receipt here may spend: this till's open holds, and what
    other tills' open receipts hold at head office (as of the last pull)."""
    row = conn.execute("SELECT held FROM hq_cards WHERE number = ?", (card,)).fetchone()
    return open_held(conn, card) + (int(row[0]) if row is not None else 0)


def open_held(conn: sqlite3.Connection, card: str) -> int:
    """Points reserved by the card's unresolved holds."""
    return -int(
        conn.execute(
            "SELECT COALESCE(SUM(points), 0) FROM ledger WHERE card = ? AND kind IN"
            " ('hold', 'release')",
            (card,),
        ).fetchone()[0]
    )


def expire_due(
    conn: sqlite3.Connection, *, till: str, now: datetime, card: str | None = None
) -> int:
    """Write ``expire`` entries for every lot past its expiry with points left; returns count.

    The entries are written soonest expiry first, lots expiring together in order of
    creation (seq, then entry id), so every run writes them in the same order.
    """
    args: dict[str, str] = {"now": ts(now)}
    where = "l.expires_at IS NOT NULL AND l.expires_at <= :now AND l.remaining > 0"
    if card is not None:
        where += " AND l.card = :card"
        args["card"] = card
    rows = conn.execute(
        f"SELECT {_LOT_COLUMNS}, l.card FROM lots l JOIN ledger e ON e.id = l.entry_id"
        f" WHERE {where}",
        args,
    ).fetchall()
    card_of = {r[0]: r[5] for r in rows}
    due = lots.expired([_lot(r) for r in rows], now)
    for lot in due:
        assert lot.expires_at is not None
        entry = append(
            conn,
            till=till,
            card=card_of[lot.id],
            kind="expire",
            points=-lot.remaining,
            at=now,
            ref=lot.id,
            note=f"lot expired at {ts(lot.expires_at)}",
        )
        _move(conn, entry, lot.id, -lot.remaining)
    return len(due)


def entries(conn: sqlite3.Connection, card: str, *, limit: int | None = None) -> list[Entry]:
    """The card's entries, newest first."""
    sql = (
        "SELECT id, seq, till, card, kind, points, receipt_id, refund_id, ref, created_at"
        " FROM ledger WHERE card = ? ORDER BY seq DESC"
    )
    params: tuple[object, ...] = (card,)
    if limit is not None:
        sql += " LIMIT ?"
        params = (card, limit)
    return [Entry(**dict(r)) for r in conn.execute(sql, params).fetchall()]
