"""The outbox: what this till has not yet handed to head office, and marking it handed.

There is no separate queue to keep in step: the outbox *is* the ledger's suffix with
``synced_at`` NULL (every entry has a till-made id and a per-till ``seq``), plus the coupon
uses and first-use cards HQ has not confirmed. Entries are sent in ``seq`` order with no
holes and marked synced only after HQ's 200 names the ``through_seq`` it stored, in one
transaction — so a lost reply means a resend, which HQ counts as duplicates.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from .ledger import parse_ts, ts

# Entries HQ refused as a gap are resent from where HQ says; this many batches at most per
# push, so a confused HQ cannot keep a sync attempt (and its thread) busy for ever.
MAX_BATCHES = 10_000


def _wire_ts(value: str | None) -> str | None:
    # Stored as UTC microsecond text; the wire wants ISO-8601 with an offset (it has one).
    return None if value is None else parse_ts(value).isoformat()


def first_unsynced(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MIN(seq) FROM ledger WHERE synced_at IS NULL").fetchone()
    return None if row[0] is None else int(row[0])


def last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM ledger").fetchone()[0])


def entries(conn: sqlite3.Connection, *, from_seq: int, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` entries from ``from_seq`` on, in seq order, as the push sends them."""
    rows = conn.execute(
        "SELECT e.id, e.seq, e.till, e.card, e.kind, e.points, e.receipt_id, e.refund_id,"
        " e.ref, e.note, e.created_at, l.available_from, l.expires_at"
        " FROM ledger e LEFT JOIN lots l ON l.entry_id = e.id AND e.kind = 'accrue'"
        " WHERE e.seq >= ? ORDER BY e.seq LIMIT ?",
        (from_seq, limit),
    ).fetchall()
    return [
        {
            "id": r["id"],
            "seq": r["seq"],
            "till": r["till"],
            "card": r["card"],
            "kind": r["kind"],
            "points": r["points"],
            "receipt_id": r["receipt_id"],
            "refund_id": r["refund_id"],
            "ref": r["ref"],
            "note": r["note"],
            "created_at": _wire_ts(r["created_at"]),
            "available_from": _wire_ts(r["available_from"]),
            "expires_at": _wire_ts(r["expires_at"]),
        }
        for r in rows
    ]


def coupons_used(conn: sqlite3.Connection, *, limit: int) -> list[dict[str, Any]]:
    """This till's coupon uses HQ has not confirmed (uses learnt from HQ are never resent)."""
    rows = conn.execute(
        "SELECT code, promotion_id, receipt_id, card, used_at FROM coupons_used"
        " WHERE synced_at IS NULL AND till IS NULL ORDER BY used_at, code LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "code": r["code"],
            "promotion_id": r["promotion_id"],
            "receipt_id": r["receipt_id"],
            "card": r["card"],
            "used_at": _wire_ts(r["used_at"]),
        }
        for r in rows
    ]


def cards_new(conn: sqlite3.Connection, *, limit: int) -> list[dict[str, Any]]:
    """Cards first seen at this till (registered on first use) that HQ has not confirmed."""
    rows = conn.execute(
        "SELECT number, status, created_at FROM cards WHERE origin = 'till'"
        " AND synced_at IS NULL ORDER BY created_at, number LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {"number": r["number"], "status": r["status"], "created_at": _wire_ts(r["created_at"])}
        for r in rows
    ]


def backlog(conn: sqlite3.Connection) -> int:
    """Ledger entries not yet at HQ (the number ``/v1/status`` calls unsynced_entries)."""
    return int(conn.execute("SELECT COUNT(*) FROM ledger WHERE synced_at IS NULL").fetchone()[0])


def mark_synced(
    conn: sqlite3.Connection,
    *,
    through_seq: int,
    coupons: list[str],
    cards: list[str],
    now: datetime,
) -> int:
    """Record HQ's 200: entries up to ``through_seq`` and the sent coupons/cards are at HQ."""
    at = ts(now)
    marked = conn.execute(
        "UPDATE ledger SET synced_at = ? WHERE seq <= ? AND synced_at IS NULL", (at, through_seq)
    ).rowcount
    conn.executemany(
        "UPDATE coupons_used SET synced_at = ? WHERE code = ? AND synced_at IS NULL",
        [(at, c) for c in coupons],
    )
    conn.executemany(
        "UPDATE cards SET synced_at = ? WHERE number = ? AND synced_at IS NULL",
        [(at, n) for n in cards],
    )
    return int(marked)
