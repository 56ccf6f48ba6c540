"""A receipt's point movements in the till's cache: holds, releases, credits, sweeps.

These combine the ledger with the receipts table, inside the caller's write
transaction; the till service decides when each happens.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from decimal import Decimal

from tillgate.core.cardfile import CardRecord
from tillgate.core.rules import model as m

from . import hqcache, ledger


def hold(
    conn: sqlite3.Connection, *, till: str, card: str, points: int, receipt_id: str, now: datetime
) -> str:
    """Reserve points for a receipt: a ``hold`` entry that sets its lots aside."""
    entry = ledger.append(
        conn, till=till, card=card, kind="hold", points=-points, at=now, receipt_id=receipt_id
    )
    ledger.reserve(conn, hold_entry=entry, card=card, points=points, now=now)
    return entry


def release(
    conn: sqlite3.Connection,
    *,
    till: str,
    card: str,
    hold_entry: str,
    points: int,
    receipt_id: str,
    now: datetime,
    note: str,
) -> str:
    """Resolve a hold (once: a unique index refuses a second release of it)."""
    entry = ledger.append(
        conn,
        till=till,
        card=card,
        kind="release",
        points=points,
        at=now,
        receipt_id=receipt_id,
        ref=hold_entry,
        note=note,
    )
    ledger.unreserve(conn, release_entry=entry, hold_entry=hold_entry)
    return entry


def sweep(
    conn: sqlite3.Connection, *, till: str, now: datetime, card: str | None, expire: bool = True
) -> frozenset[str]:
    """Release timed-out holds (all cards) and expire lots (of one card, or all); returns
    the receipts whose holds it released (a caller holding one of them reads it again).

    ``expire`` False: a till with a head office writes no ``expire`` entries (HQ does, from
    every till's entries); its balances simply stop counting expired lots.
    """
    rows = conn.execute(
        "SELECT receipt_id, card, hold_entry, hold_points FROM receipts"
        " WHERE hold_entry IS NOT NULL AND hold_expires_at <= ?",
        (ledger.ts(now),),
    ).fetchall()
    for r in rows:
        release(
            conn,
            till=till,
            card=r["card"],
            hold_entry=r["hold_entry"],
            points=r["hold_points"],
            receipt_id=r["receipt_id"],
            now=now,
            note="hold timed out",
        )
        conn.execute(
            "UPDATE receipts SET hold_entry = NULL, hold_points = 0,"
            " hold_expires_at = NULL WHERE receipt_id = ?",
            (r["receipt_id"],),
        )
    if expire:
        ledger.expire_due(conn, till=till, now=now, card=card)
    return frozenset(r["receipt_id"] for r in rows)


def credit(
    conn: sqlite3.Connection,
    *,
    till: str,
    card: str,
    kind: str,
    points: int,
    now: datetime,
    delay_days: int,
    expiry_days: int,
    note: str | None = None,
    receipt_id: str | None = None,
) -> tuple[str, datetime]:
    """A crediting entry and its lot: spendable after ``delay_days``, for ``expiry_days``."""
    entry = ledger.append(
        conn,
        till=till,
        card=card,
        kind=kind,
        points=points,
        at=now,
        receipt_id=receipt_id,
        note=note,
    )
    available = now + timedelta(days=delay_days)
    expires = available + timedelta(days=expiry_days) if expiry_days else None
    ledger.add_lot(
        conn, entry_id=entry, card=card, points=points, available_from=available, expires_at=expires
    )
    return entry, available


# A receipt that counts as a card's visit (and its paid amount as spend): sold, refunded or
# not. Retention keeps the counts of those it forgets by the same test (store/retention.py).
VISIT = "confirmed_at IS NOT NULL AND status IN ('confirmed', 'refunded')"


def customer(
    conn: sqlite3.Connection,
    rec: CardRecord,
    *,
    now: datetime,
    now_local: datetime,
    window_days: int,
    own_hold: int = 0,
) -> m.Customer:
    """What the rules engine needs to know of a card, as of ``now``.

    Visits, rolling spend, promotion uses and stamps are counted over the chain: this
    till's own (its receipts, ``promotion_uses``, ``stamps``) plus what head office says
    the other tills counted (:func:`hqcache.other_tills`; nothing on a standalone till).

    ``own_hold`` is the hold this very receipt already has: its points are still the
    receipt's to spend, so they do not count against it.
    """
    bal = ledger.balance(conn, rec.number, now)
    others = hqcache.other_tills(conn, rec.number)
    # One walk of the card's confirmed receipts in its (card, confirmed_at) index: every sold
    # receipt has its confirmed_at, and the card's open calculations are skipped unread.
    visits, spend_kop = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN confirmed_at >= ?"
        f" THEN paid_kop - returned_kop END), 0) FROM receipts WHERE card = ? AND {VISIT}",
        (ledger.ts(now - timedelta(days=window_days)), rec.number),
    ).fetchone()
    # The other tills' spend is by their receipts' local days, as is that of this till's
    # receipts retention forgot (store/retention.py).
    since = (now_local - timedelta(days=window_days)).date().isoformat()
    spend_kop += others.spend_since(since)
    old_visits, old_kop = conn.execute(
        "SELECT COALESCE(SUM(visits), 0), COALESCE(SUM(CASE WHEN day >= ? THEN spend_kop END), 0)"
        " FROM card_days WHERE card = ?",
        (since, rec.number),
    ).fetchone()
    visits += old_visits
    spend_kop += old_kop
    today = now_local.date().isoformat()
    uses_today = others.uses_on(today)
    uses_total = dict(others.uses_total)
    for row in conn.execute(
        "SELECT promotion_id, SUM(uses) AS n, SUM((day = ?) * uses) AS t FROM promotion_uses"
        " WHERE card = ? GROUP BY promotion_id",
        (today, rec.number),
    ):
        pid = row["promotion_id"]
        uses_total[pid] = uses_total.get(pid, 0) + row["n"]
        uses_today[pid] = uses_today.get(pid, 0) + (row["t"] or 0)
    stamps = dict(others.stamps)
    for pid, count in conn.execute(
        "SELECT promotion_id, count FROM stamps WHERE card = ?", (rec.number,)
    ):
        stamps[pid] = stamps.get(pid, 0) + count
    held_by_others = bal.held - own_hold
    return m.Customer(
        number=rec.number,
        holder=rec.holder,
        status=rec.status,
        tier=rec.tier,
        segments=frozenset(rec.segments),
        clubs=frozenset(rec.clubs),
        birthday=rec.birthday,
        visits=visits + others.visits,
        rolling_spend=Decimal(spend_kop) / 100,
        balance=bal.balance,
        pending=bal.pending,
        redeemable=max(0, bal.balance - held_by_others),
        last_birthday_bonus=rec.last_birthday_bonus,
        uses_today=uses_today,
        uses_total=uses_total,
        stamps=stamps,
    )


def budgets_used(conn: sqlite3.Connection, promotion_ids: list[str]) -> dict[str, int]:
    """Points each promotion with a budget has given so far: on this till, plus on the
    chain's other tills as head office last said (nothing on a standalone till)."""
    if not promotion_ids:
        return {}
    marks = ",".join("?" * len(promotion_ids))
    used = hqcache.budgets(conn, promotion_ids)
    for pid, points in conn.execute(  # kept by promotion_uses' triggers (schema.py)
        f"SELECT promotion_id, points FROM budget_points WHERE promotion_id IN ({marks})",
        promotion_ids,
    ):
        used[pid] = used.get(pid, 0) + points
    return used


def reverse_accrual(
    conn: sqlite3.Connection,
    *,
    till: str,
    card: str,
    receipt_id: str,
    refund_id: str,
    points: int,
    now: datetime,
) -> str:
    """Take back accrued points (a refund): the receipt's own lot first, then others.

    Pending lots count too; what no lot can cover is debt, shown as a negative balance.
    """
    accrue = conn.execute(
        "SELECT id FROM ledger WHERE receipt_id = ? AND kind = 'accrue'", (receipt_id,)
    ).fetchone()
    entry = ledger.append(
        conn,
        till=till,
        card=card,
        kind="reverse",
        points=-points,
        at=now,
        receipt_id=receipt_id,
        refund_id=refund_id,
        ref=accrue[0] if accrue else None,
    )
    ledger.consume(
        conn,
        entry_id=entry,
        card=card,
        points=points,
        now=now,
        first_lot=accrue[0] if accrue else None,
        include_pending=True,
    )
    return entry


def return_redeemed(
    conn: sqlite3.Connection,
    *,
    till: str,
    card: str,
    receipt_id: str,
    refund_id: str,
    points: int,
    now: datetime,
) -> str:
    """Give redeemed points back (a refund) into the lots they were spent from."""
    redeems: list[str] = []
    earlier: list[str] = []
    for entry_id, kind in conn.execute(
        "SELECT id, kind FROM ledger WHERE receipt_id = ? AND kind IN ('redeem', 'return')"
        " ORDER BY seq",
        (receipt_id,),
    ):
        (redeems if kind == "redeem" else earlier).append(entry_id)
    entry = ledger.append(
        conn,
        till=till,
        card=card,
        kind="return",
        points=points,
        at=now,
        receipt_id=receipt_id,
        refund_id=refund_id,
    )
    given = ledger.give_back(
        conn, entry_id=entry, from_entries=redeems, back_entries=earlier, points=points
    )
    if given < points:
        # Spent while the card was in debt (no lot behind them): a fresh, spendable lot.
        ledger.add_lot(
            conn,
            entry_id=entry,
            card=card,
            points=points - given,
            available_from=now,
            expires_at=None,
        )
    return entry


OPENING_BALANCE = "opening balance"  # the note of the adjust that carries a card's balance in


def credit_openings(
    conn: sqlite3.Connection, staged: str, *, till: str, now: datetime, expiry_days: int
) -> int:
    """Credit the opening balance of each card ``staged`` names (a query of ``ord, card,
    points``, in file order), once per card, as :func:`credit` does one: an ``adjust``
    spendable now, for ``expiry_days``. Returns how many were credited.

    A card with no entry yet (every card of a first load) owes nothing: those go in two
    statements (:func:`tillgate.agent.store.ledger.credit_many`). A card with entries
    and no opening balance yet (one the till registered before the file had it) goes
    through :func:`credit`, which settles what it owes first.
    """
    known = "EXISTS (SELECT 1 FROM ledger AS l WHERE l.card = s.card)"
    with_entries = conn.execute(
        f"SELECT s.card, s.points FROM ({staged}) AS s WHERE {known} ORDER BY s.ord"
    ).fetchall()
    done = 0
    for card, opening in with_entries:
        if not has_opening_balance(conn, card):
            credit(conn, till=till, card=card, kind="adjust", points=opening, now=now,
                   delay_days=0, expiry_days=expiry_days, note=OPENING_BALANCE)  # fmt: skip
            done += 1
    fresh = f"SELECT s.ord, s.card, s.points FROM ({staged}) AS s WHERE NOT {known}"
    return done + ledger.credit_many(
        conn,
        fresh,
        till=till,
        kind="adjust",
        at=now,
        available_from=now,  # as credit() with delay_days=0
        expires_at=now + timedelta(days=expiry_days) if expiry_days else None,
        note=OPENING_BALANCE,
    )


def has_opening_balance(conn: sqlite3.Connection, card: str) -> bool:
    """Whether the card's opening balance was already credited (it is, once per card)."""
    return (
        conn.execute(
            "SELECT 1 FROM ledger WHERE card = ? AND kind = 'adjust' AND note = ?",
            (card, OPENING_BALANCE),
        ).fetchone()
        is not None
    )
