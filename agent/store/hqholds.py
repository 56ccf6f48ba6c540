"""What this till reserved at head office for each open receipt (``hq_holds``), and the
resolutions head office has yet to hear of.

A row is written by an online calculate in its own transaction: ``held`` with what head
office granted, or ``unknown`` when it did not answer in time (the receipt was priced
offline, and head office may or may not have made a hold). Confirm and cancel set the
``resolution`` in their transaction; it is sent straight after the commit and, if that
got no answer, with the next push (``sent_at`` stays NULL until head office has it). A
receipt left ``unknown`` and still open is sent as ``released`` at the next push, so no
hold head office made for it outlives the fallback.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .ledger import ts


@dataclass(frozen=True, kw_only=True)
class HqHold:
    receipt_id: str
    card: str | None
    granted: int
    coupons: tuple[str, ...]
    state: str  # held | unknown
    resolution: str | None
    redeemed: int
    sent: bool


def get(conn: sqlite3.Connection, receipt_id: str) -> HqHold | None:
    row = conn.execute("SELECT * FROM hq_holds WHERE receipt_id = ?", (receipt_id,)).fetchone()
    if row is None:
        return None
    return HqHold(
        receipt_id=row["receipt_id"],
        card=row["card"],
        granted=int(row["granted"]),
        coupons=tuple(json.loads(row["coupons"])),
        state=row["state"],
        resolution=row["resolution"],
        redeemed=int(row["redeemed"]),
        sent=row["sent_at"] is not None,
    )


def put(
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    card: str | None,
    granted: int,
    coupons: Sequence[str],
    state: str,
    expires_at: datetime | None,
    now: datetime,
) -> None:
    """The receipt's hold at head office as this calculate left it (replaces the last)."""
    conn.execute(
        "INSERT INTO hq_holds (receipt_id, card, granted, coupons, state, expires_at,"
        " resolution, redeemed, created_at, updated_at, sent_at)"
        " VALUES (?, ?, ?, ?, ?, ?, NULL, 0, ?, ?, NULL)"
        " ON CONFLICT (receipt_id) DO UPDATE SET card = excluded.card,"
        " granted = excluded.granted, coupons = excluded.coupons, state = excluded.state,"
        " expires_at = excluded.expires_at, resolution = NULL, redeemed = 0,"
        " updated_at = excluded.updated_at, sent_at = NULL",
        (
            receipt_id,
            card,
            granted,
            json.dumps(list(coupons)),
            state,
            ts(expires_at) if expires_at else None,
            ts(now),
            ts(now),
        ),
    )


def unknown(conn: sqlite3.Connection, *, receipt_id: str, card: str | None, now: datetime) -> None:
    """Head office may or may not hold something for the receipt: the next push releases it."""
    put(
        conn,
        receipt_id=receipt_id,
        card=card,
        granted=0,
        coupons=(),
        state="unknown",
        expires_at=None,
        now=now,
    )


def resolve(
    conn: sqlite3.Connection, receipt_id: str, *, resolution: str, redeemed: int, now: datetime
) -> HqHold | None:
    """Record how the receipt ended (to be sent); None if it never reserved at head office."""
    n = conn.execute(
        "UPDATE hq_holds SET resolution = ?, redeemed = ?, updated_at = ?, sent_at = NULL"
        " WHERE receipt_id = ?",
        (resolution, redeemed, ts(now), receipt_id),
    ).rowcount
    return get(conn, receipt_id) if n else None


def mark_sent(conn: sqlite3.Connection, receipt_ids: Sequence[str], *, now: datetime) -> None:
    """Head office has these receipts' resolutions (an open ``unknown`` one: released)."""
    conn.executemany(
        "UPDATE hq_holds SET sent_at = ?, state = CASE WHEN resolution IS NULL"
        " THEN 'released' ELSE state END WHERE receipt_id = ?",
        [(ts(now), r) for r in receipt_ids],
    )


def unsent(conn: sqlite3.Connection, *, limit: int) -> list[dict[str, Any]]:
    """The resolutions to push: ended receipts head office did not hear of, and open
    receipts whose calculate got no answer (released: their hold, if any, must go)."""
    rows = conn.execute(
        "SELECT * FROM hq_holds WHERE sent_at IS NULL"
        " AND (resolution IS NOT NULL OR state = 'unknown') ORDER BY updated_at LIMIT ?",
        (limit,),
    ).fetchall()
    return [
        {
            "receipt_id": r["receipt_id"],
            "resolution": r["resolution"] or "released",
            "redeemed": int(r["redeemed"]),
            "coupons": json.loads(r["coupons"]),
            "card": r["card"],
        }
        for r in rows
    ]


def waiting(conn: sqlite3.Connection) -> int:
    """How many resolutions head office has yet to hear of (for ``tillgate sync``)."""
    return int(
        conn.execute(
            "SELECT COUNT(*) FROM hq_holds WHERE sent_at IS NULL"
            " AND (resolution IS NOT NULL OR state = 'unknown')"
        ).fetchone()[0]
    )
