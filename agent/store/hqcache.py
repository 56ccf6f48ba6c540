"""Head office's view, cached on a chain's till: ``hq_cards`` and ``hq_budgets``.

Written only from the change feed (:mod:`tillgate.sync.feed`), in the page's transaction;
read by the ledger (a card's balance is HQ's view plus this till's entries HQ had not yet
included, see :func:`tillgate.agent.store.ledger.balance`) and by the limits: a card's
``uses`` and the budgets are what the chain's *other* tills counted (docs/sync-protocol.md,
"Chain-wide counters"), to which this till adds its own.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from .ledger import ts

logger = logging.getLogger(__name__)

# One lot as HQ sees it: [points, available_from, expires_at | None] (ts() text).
HqLot = tuple[int, str, str | None]


_PUT_CARD = (
    "INSERT INTO hq_cards (number, balance, pending, lots, through_seq, uses, held,"
    " updated_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (number) DO UPDATE SET"
    " balance = excluded.balance, pending = excluded.pending, lots = excluded.lots,"
    " through_seq = excluded.through_seq, uses = excluded.uses, held = excluded.held,"
    " updated_at = excluded.updated_at"
)


class HqCard(NamedTuple):
    """HQ's view of one card as a page of the change feed brings it (:func:`put_cards`);
    ``lots`` and ``uses`` are the JSON text kept in ``hq_cards``. A tuple in the order of
    :data:`_PUT_CARD`'s values: a page's rows are these, with the time after them."""

    number: str
    balance: int
    pending: int
    lots: str
    through_seq: int
    uses: str
    held: int


def lots_text(lots: Sequence[HqLot]) -> str:
    return json.dumps([list(lot) for lot in lots]) if lots else "[]"


def put_cards(conn: sqlite3.Connection, cards: Sequence[HqCard], *, now: datetime) -> None:
    """HQ's view of each card of a page (each replaces the one before), in one statement."""
    at = ts(now)
    conn.executemany(_PUT_CARD, [(*card, at) for card in cards])


def put_budget(conn: sqlite3.Connection, promotion_id: str, points: int, *, now: datetime) -> None:
    """Points a budgeted promotion has given across the chain, as HQ says."""
    conn.execute(
        "INSERT INTO hq_budgets (promotion_id, points, updated_at) VALUES (?,?,?)"
        " ON CONFLICT (promotion_id) DO UPDATE SET points = excluded.points,"
        " updated_at = excluded.updated_at",
        (promotion_id, points, ts(now)),
    )


def budgets(conn: sqlite3.Connection, promotion_ids: Sequence[str]) -> dict[str, int]:
    """Points each promotion gave from its budget at the other tills, as HQ last said."""
    if not promotion_ids:
        return {}
    marks = ",".join("?" * len(promotion_ids))
    return {
        r[0]: r[1]
        for r in conn.execute(
            f"SELECT promotion_id, points FROM hq_budgets WHERE promotion_id IN ({marks})",
            list(promotion_ids),
        )
    }


@dataclass(frozen=True, kw_only=True)
class OtherTills:
    """What the chain's other tills counted of a card, as head office last said.

    Empty on a standalone till and for a card head office never sent: the till's own
    counts are then the whole count.
    """

    visits: int = 0
    spend: tuple[tuple[str, int], ...] = ()  # (local day YYYY-MM-DD, kopecks)
    uses_total: Mapping[str, int] = field(default_factory=dict)
    uses_by_day: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    stamps: Mapping[str, int] = field(default_factory=dict)

    def spend_since(self, day: str) -> int:
        """Kopecks paid on ``day`` and after (never below 0: see :func:`other_tills`)."""
        return max(0, sum(kop for d, kop in self.spend if d >= day))

    def uses_on(self, day: str) -> dict[str, int]:
        return {pid: days[day] for pid, days in self.uses_by_day.items() if day in days}


def other_tills(conn: sqlite3.Connection, number: str) -> OtherTills:
    """A card's counts at the other tills (stored from the feed, checked there).

    A day's spend may be negative (a refund of a sale head office never counted), so a
    sum is floored at 0: others' refunds never take this till's own spend away.
    """
    row = conn.execute("SELECT uses FROM hq_cards WHERE number = ?", (number,)).fetchone()
    if row is None:
        return OtherTills()
    try:
        return _parse(json.loads(row[0]))
    except (ValueError, TypeError, KeyError, AttributeError):
        # Written by this till from a checked reply: only a hand-edited file gets here.
        logger.warning("hq_cards.uses of a card is unreadable; the other tills' counts ignored")
        return OtherTills()


def _parse(data: Any) -> OtherTills:
    uses: Mapping[str, Any] = data.get("uses", {})
    return OtherTills(
        visits=int(data.get("visits", 0)),
        spend=tuple((str(day), int(kop)) for day, kop in data.get("spend", [])),
        uses_total={pid: int(u.get("total", 0)) for pid, u in uses.items()},
        uses_by_day={
            pid: {str(d): int(n) for d, n in u.get("days", {}).items()} for pid, u in uses.items()
        },
        stamps={pid: int(n) for pid, n in data.get("stamps", {}).items()},
    )
