"""Head office's view, cached on a chain's till: ``hq_cards`` and ``hq_budgets``.

Written only from the change feed (:mod:`tillgate.sync.feed`), in the page's transaction;
read by the ledger (a card's balance is HQ's view plus this till's entries HQ had not yet
included, see :func:`tillgate.agent.store.ledger.balance`) and by the budget limits.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime

from .ledger import ts

# One lot as HQ sees it: [points, available_from, expires_at | None] (ts() text).
HqLot = tuple[int, str, str | None]


def put_card(
    conn: sqlite3.Connection,
    *,
    number: str,
    balance: int,
    pending: int,
    lots: Sequence[HqLot],
    through_seq: int,
    uses: Mapping[str, object],
    now: datetime,
) -> None:
    """HQ's view of one card as of this page (replaces the one before)."""
    conn.execute(
        "INSERT INTO hq_cards (number, balance, pending, lots, through_seq, uses, updated_at)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT (number) DO UPDATE SET"
        " balance = excluded.balance, pending = excluded.pending, lots = excluded.lots,"
        " through_seq = excluded.through_seq, uses = excluded.uses,"
        " updated_at = excluded.updated_at",
        (
            number,
            balance,
            pending,
            json.dumps([list(lot) for lot in lots]),
            through_seq,
            json.dumps(uses, ensure_ascii=False),
            ts(now),
        ),
    )


def put_budget(conn: sqlite3.Connection, promotion_id: str, points: int, *, now: datetime) -> None:
    """Points a budgeted promotion has given across the chain, as HQ says."""
    conn.execute(
        "INSERT INTO hq_budgets (promotion_id, points, updated_at) VALUES (?,?,?)"
        " ON CONFLICT (promotion_id) DO UPDATE SET points = excluded.points,"
        " updated_at = excluded.updated_at",
        (promotion_id, points, ts(now)),
    )
