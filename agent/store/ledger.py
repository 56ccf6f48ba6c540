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

All functions take an open connection inside a write (or read) transaction of
:class:`~tillgate.agent.store.db.Database`; none commits.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KINDS = ("accrue", "redeem", "hold", "release", "reverse", "return", "expire", "adjust")


def ts(when: datetime) -> str:
    """Instants are stored as UTC ISO-8601 with microseconds, so they sort as text."""
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
    """Create the lot an ``accrue`` or positive ``adjust`` entry brings."""
    lot_id = entry_id  # one lot per crediting entry: the entry id names it
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


def _move(conn: sqlite3.Connection, entry_id: str, lot_id: str, points: int) -> None:
    conn.execute(
        "INSERT INTO lot_moves (entry_id, lot_id, points) VALUES (?,?,?)"
        " ON CONFLICT (entry_id, lot_id) DO UPDATE SET points = points + excluded.points",
        (entry_id, lot_id, points),
    )
    conn.execute("UPDATE lots SET remaining = remaining + ? WHERE id = ?", (points, lot_id))


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

    ``first_lot`` is drained before any other (a refund reverses its own accrual first);
    ``include_pending`` lets a reversal reach lots that are not yet spendable. Returns the
    points actually taken; any shortfall is debt the balance shows as negative.
    """
    left = points
    now_s = ts(now)
    if first_lot is not None and left > 0:
        row = conn.execute("SELECT remaining FROM lots WHERE id = ?", (first_lot,)).fetchone()
        if row and row[0] > 0:
            take = min(left, row[0])
            _move(conn, entry_id, first_lot, -take)
            left -= take
    if left <= 0:
        return points
    cond = "" if include_pending else " AND available_from <= :now"
    rows = conn.execute(
        "SELECT id, remaining FROM lots WHERE card = :card AND remaining > 0"
        " AND (expires_at IS NULL OR expires_at > :now)"
        + cond
        + " ORDER BY available_from > :now, expires_at IS NULL, expires_at, available_from, id",
        {"card": card, "now": now_s},
    ).fetchall()
    for lot_id, remaining in rows:
        if left <= 0:
            break
        take = min(left, remaining)
        _move(conn, entry_id, lot_id, -take)
        left -= take
    return points - left


def reserve(
    conn: sqlite3.Connection, *, hold_entry: str, card: str, points: int, now: datetime
) -> int:
    """Set aside spendable lots for a hold, so expiry cannot take points a receipt holds."""
    return consume(conn, entry_id=hold_entry, card=card, points=points, now=now)


def _reserved(conn: sqlite3.Connection, hold_entry: str) -> list[tuple[str, int]]:
    return [
        (r[0], -int(r[1]))
        for r in conn.execute(
            "SELECT lot_id, points FROM lot_moves WHERE entry_id = ? AND points < 0"
            " ORDER BY lot_id",
            (hold_entry,),
        )
    ]


def unreserve(conn: sqlite3.Connection, *, release_entry: str, hold_entry: str) -> None:
    """A released hold puts back exactly what it set aside, lot by lot (expired or not)."""
    for lot_id, taken in _reserved(conn, hold_entry):
        _move(conn, release_entry, lot_id, taken)


def spend_reserved(conn: sqlite3.Connection, *, redeem_entry: str, hold_entry: str) -> int:
    """A confirmed hold's redemption spends the very lots the hold set aside.

    Called right after :func:`unreserve` of the same hold in one transaction, so the lots
    end as the hold left them; the points were the customer's when they were held, even
    if a lot has expired since. Returns the points taken.
    """
    total = 0
    for lot_id, taken in _reserved(conn, hold_entry):
        _move(conn, redeem_entry, lot_id, -taken)
        total += taken
    return total


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
    from it. The lots expiring last are refilled first (kindest to the customer).
    """
    if points <= 0 or not from_entries:
        return 0
    owed: dict[str, int] = {}
    marks = ",".join("?" * len(from_entries))
    for lot_id, taken in conn.execute(
        f"SELECT lot_id, -SUM(points) FROM lot_moves WHERE entry_id IN ({marks})"
        " AND points < 0 GROUP BY lot_id",
        from_entries,
    ):
        owed[lot_id] = int(taken)
    if back_entries:
        marks = ",".join("?" * len(back_entries))
        for lot_id, given in conn.execute(
            f"SELECT lot_id, SUM(points) FROM lot_moves WHERE entry_id IN ({marks})"
            " AND points > 0 GROUP BY lot_id",
            back_entries,
        ):
            if lot_id in owed:
                owed[lot_id] -= int(given)
    order = (
        conn.execute(
            f"SELECT id FROM lots WHERE id IN ({','.join('?' * len(owed))})"
            " ORDER BY expires_at IS NULL DESC, expires_at DESC, id DESC",
            list(owed),
        ).fetchall()
        if owed
        else []
    )
    left = points
    for (lot_id,) in order:
        if left <= 0:
            break
        back = min(left, owed[lot_id])
        if back > 0:
            _move(conn, entry_id, lot_id, back)
            left -= back
    return points - left


def balance(conn: sqlite3.Connection, card: str, now: datetime) -> Balance:
    """The card's balance at ``now``, derived from its entries and lots.

    A card head office has told this till about (a row in ``hq_cards``) is balanced as
    HQ's view plus this till's own entries HQ had not included yet: see
    :func:`_chain_balance`. Any other card is balanced from this till's ledger alone.
    """
    now_s = ts(now)
    hq = conn.execute(
        "SELECT balance, pending, lots, through_seq FROM hq_cards WHERE number = ?", (card,)
    ).fetchone()
    if hq is not None:
        return _chain_balance(conn, card, now_s, hq)
    total = conn.execute(
        "SELECT COALESCE(SUM(points), 0) FROM ledger WHERE card = ?", (card,)
    ).fetchone()[0]
    pending, expired = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN available_from > :now THEN remaining END), 0),"
        " COALESCE(SUM(CASE WHEN available_from <= :now AND expires_at IS NOT NULL"
        "   AND expires_at <= :now AND remaining > 0 THEN remaining END), 0)"
        " FROM lots WHERE card = :card",
        {"card": card, "now": now_s},
    ).fetchone()
    held = open_held(conn, card)
    # Expired lots not yet swept are already gone for the customer.
    return Balance(
        total=total, balance=total - pending - expired + held, pending=pending, held=held
    )


def _chain_balance(conn: sqlite3.Connection, card: str, now_s: str, hq: sqlite3.Row) -> Balance:
    """HQ's view of a card re-evaluated at ``now`` plus this till's entries HQ has not seen.

    HQ's lots are re-read at the till's ``now`` (pending ones become spendable, expired ones
    drop out); ``balance + pending - Σ lots`` of HQ's view is what no lot backs (a debt) and
    carries over as it is. This till's own entries with ``seq > through_seq`` are added
    (holds and releases aside: open holds are counted by :func:`open_held`), minus what of
    them is still pending or already expired in the lots they made.
    """
    lots: list[list[Any]] = json.loads(hq["lots"])
    unbacked = hq["balance"] + hq["pending"] - sum(int(lot[0]) for lot in lots)
    hq_available = hq_pending = 0
    for points, available_from, expires_at in lots:
        if available_from > now_s:
            hq_pending += int(points)
        elif expires_at is None or expires_at > now_s:
            hq_available += int(points)
    own = conn.execute(
        "SELECT COALESCE(SUM(points), 0) FROM ledger WHERE card = ? AND seq > ?"
        " AND kind NOT IN ('hold', 'release')",
        (card, hq["through_seq"]),
    ).fetchone()[0]
    own_pending, own_expired = conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN l.available_from > :now THEN l.remaining END), 0),"
        " COALESCE(SUM(CASE WHEN l.available_from <= :now AND l.expires_at IS NOT NULL"
        "   AND l.expires_at <= :now AND l.remaining > 0 THEN l.remaining END), 0)"
        " FROM lots l JOIN ledger e ON e.id = l.entry_id"
        " WHERE l.card = :card AND e.seq > :seq",
        {"card": card, "now": now_s, "seq": hq["through_seq"]},
    ).fetchone()
    held = open_held(conn, card)
    spendable = unbacked + hq_available + own - own_pending - own_expired
    pending = hq_pending + own_pending
    return Balance(total=spendable + pending - held, balance=spendable, pending=pending, held=held)


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
    """Write ``expire`` entries for every lot past its expiry with points left; returns count."""
    args: dict[str, str] = {"now": ts(now)}
    where = "expires_at IS NOT NULL AND expires_at <= :now AND remaining > 0"
    if card is not None:
        where += " AND card = :card"
        args["card"] = card
    rows = conn.execute(
        f"SELECT id, card, remaining, expires_at FROM lots WHERE {where} ORDER BY expires_at, id",
        args,
    ).fetchall()
    for lot_id, lot_card, remaining, expires_at in rows:
        entry = append(
            conn,
            till=till,
            card=lot_card,
            kind="expire",
            points=-remaining,
            at=now,
            ref=lot_id,
            note=f"lot expired at {expires_at}",
        )
        _move(conn, entry, lot_id, -remaining)
    return len(rows)


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
