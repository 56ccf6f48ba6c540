"""What a confirmed receipt leaves behind besides points: promotion uses, stamps, coupons.

Limits (per card per day, per card, budgets) count the uses; stamps count purchases per
card; coupon uses make every code single-use on the till.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .ledger import ts


def record_uses(
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    card: str | None,
    day: str,
    uses: Sequence[str],
    budget: Mapping[str, int],
) -> None:
    """One row per promotion that had an effect on the receipt (with points from a budget)."""
    conn.executemany(
        "INSERT OR IGNORE INTO promotion_uses (receipt_id, promotion_id, card, day, points)"
        " VALUES (?,?,?,?,?)",
        [(receipt_id, pid, card, day, budget.get(pid, 0)) for pid in uses],
    )


def add_stamps(conn: sqlite3.Connection, card: str, promotion_id: str, n: int = 1) -> None:
    """Count ``n`` more stamps of a promotion on a card at this till.

    ``stamps`` holds this till's own stamps only; the other tills' come from head office
    and are added when the card is read (:func:`tillgate.agent.store.points.customer`).
    A standalone till's own count is the card's whole count.
    """
    conn.execute(
        "INSERT INTO stamps (card, promotion_id, count) VALUES (?,?,?)"
        " ON CONFLICT (card, promotion_id) DO UPDATE SET count = count + excluded.count",
        (card, promotion_id, n),
    )


def record_coupons(
    conn: sqlite3.Connection,
    *,
    receipt_id: str,
    card: str | None,
    now: datetime,
    used: Mapping[str, str],
    issued: Sequence[Mapping[str, Any]],
) -> str | None:
    """Mark honoured codes used and remember printed ones.

    Returns the first code some other receipt used meanwhile (nothing is marked then; the
    caller rolls the transaction back), else None.
    """
    for code, promotion_id in used.items():
        try:
            conn.execute(
                "INSERT INTO coupons_used (code, promotion_id, receipt_id, card, used_at)"
                " VALUES (?,?,?,?,?)",
                (code, promotion_id, receipt_id, card, ts(now)),
            )
        except sqlite3.IntegrityError:
            return code
    conn.executemany(
        "INSERT OR IGNORE INTO coupons_issued (code, promotion_id, receipt_id, valid_until,"
        " created_at) VALUES (?,?,?,?,?)",
        [(c["code"], c["promotion"], receipt_id, c["valid_until"], ts(now)) for c in issued],
    )
    return None


def coupon_state(conn: sqlite3.Connection, code: str) -> str | None:
    """Why a code cannot be honoured here: ``"revoked"``, ``"used"``; None if it can."""
    if conn.execute("SELECT 1 FROM coupons_revoked WHERE code = ?", (code,)).fetchone():
        return "revoked"
    if conn.execute("SELECT 1 FROM coupons_used WHERE code = ?", (code,)).fetchone():
        return "used"
    return None


def revoke_coupon(
    conn: sqlite3.Connection, *, code: str, reason: str, revoked_at: datetime
) -> None:
    """Head office revoked a code: no till honours it from now on."""
    conn.execute(
        "INSERT INTO coupons_revoked (code, reason, revoked_at) VALUES (?,?,?)"
        " ON CONFLICT (code) DO UPDATE SET reason = excluded.reason,"
        " revoked_at = excluded.revoked_at",
        (code, reason, ts(revoked_at)),
    )


def used_elsewhere(
    conn: sqlite3.Connection,
    *,
    code: str,
    promotion_id: str,
    receipt_id: str,
    till: str,
    used_at: datetime,
    now: datetime,
) -> bool:
    """A code another till used (learnt from HQ); False if this till already has a use.

    The first use stands: a code this till used itself keeps this till's row (HQ reports
    the double use from both pushes).
    """
    return (
        conn.execute(
            "INSERT OR IGNORE INTO coupons_used"
            " (code, promotion_id, receipt_id, card, used_at, synced_at, till)"
            " VALUES (?,?,?,NULL,?,?,?)",
            (code, promotion_id, receipt_id, ts(used_at), ts(now), till),
        ).rowcount
        > 0
    )
