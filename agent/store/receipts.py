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


def set_stamps(conn: sqlite3.Connection, *, card: str, promotion_id: str, count: int) -> None:
    conn.execute(
        "INSERT INTO stamps (card, promotion_id, count) VALUES (?,?,?)"
        " ON CONFLICT (card, promotion_id) DO UPDATE SET count = excluded.count",
        (card, promotion_id, count),
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
