"""Head office's own corrections of points: decide a quarantined entry, adjust a card.

Each is one transaction with its audit row (:mod:`tillgate.hq.audit`), and ends by folding
the card again, which moves it in the change feed: every till gets head office's balance
at its next pull, like any other balance change. ``adjust`` entries are head office's
alone (till ``hq``); a till that pushes one has it quarantined.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from tillgate.core.cards import mask
from tillgate.core.errors import CardNotFound, InvalidRequest, NotFound

from . import audit, quarantine
from .db import Database
from .ledger import hq_entries, insert_entries, policy_of, refresh_cards
from .wire import BIGINT, CardAdjustIn, ts

logger = logging.getLogger(__name__)

DETAIL = ("entry_id", "till", "seq", "card", "kind", "points", "code")  # of a decided flag


def decide(
    db: Database,
    flag: int,
    *,
    release: bool,
    reason: str | None,
    operator: str | None,
    now: datetime,
) -> dict[str, Any]:
    """An admin's release (the entry counts) or reject (it never will); final either way.

    See :mod:`tillgate.hq.quarantine` for why a reject needs no compensating entry.
    """
    status = quarantine.RELEASED if release else quarantine.REJECTED
    by = operator or audit.ADMIN
    with db.write() as tx:
        row = quarantine.get(tx, flag) if 0 < flag <= BIGINT else None
        if row is None:
            raise NotFound(f"no quarantined entry {flag}; see 'tillgate hq flags list'")
        bound = policy_of(tx).max_points
        if release and abs(row["points"]) > bound:
            # Counted, it could overflow the card's sums; no till makes such an entry.
            raise InvalidRequest(
                f"quarantined entry {flag} moves {row['points']} points, beyond ±{bound}: "
                "it cannot be released; reject it, and credit what the card is owed with "
                "'tillgate hq cards adjust'"
            )
        card = row["card"]
        # The card first (the lock order of every write), made known if it was not.
        tx.execute(
            "INSERT INTO cards (number, status, origin, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (number) DO UPDATE SET updated_at = cards.updated_at",
            (card, "new" if release else "blocked", f"flag:{flag}", ts(now), ts(now)),
        )
        if not quarantine.mark_decided(tx, flag, status=status, by=by, reason=reason, now=now):
            raise InvalidRequest(
                f"quarantined entry {flag} was already {row['status']} at "
                f"{row['decided_at']}; a decision is final"
            )
        tx.execute(
            "UPDATE entries SET quarantine = ? WHERE id = ?",
            (None if release else quarantine.REJECTED, row["entry_id"]),
        )
        state = refresh_cards(tx, [card], now)[card]
        audit.write(
            tx,
            action=f"flag.{'release' if release else 'reject'}",
            subject=str(flag),
            detail={
                k: row[k] for k in ("entry_id", "till", "seq", "card", "kind", "points", "code")
            },
            reason=reason or "",
            operator=operator,
            now=now,
        )
    logger.info(
        "quarantined entry %d (%s seq %d, %s %+d on card %s) %s; balance now %d",
        flag,
        row["till"],
        row["seq"],
        row["kind"],
        row["points"],
        mask(card),
        status,
        state.balance,
    )
    return row | {
        "status": status,
        "decided_at": ts(now),
        "decided_by": by,
        "decision": reason,
        "balance": state.balance,
    }


def adjust(
    db: Database, number: str, req: CardAdjustIn, *, operator: str | None, now: datetime
) -> dict[str, Any]:
    """Head office's own credit (spendable at once, never expiring) or debit of a card."""
    with db.write() as tx:
        if not tx.scalar("SELECT 1 FROM cards WHERE number = ?", (number,)):
            raise CardNotFound(f"card {mask(number)} is not known at head office")
        tx.lock_rows("cards", "number", [number])
        row = {
            "card": number,
            "kind": "adjust",
            "points": req.points,
            "note": req.reason[:1000],
            "created_at": ts(now),
            "available_from": ts(now) if req.points > 0 else None,
        }
        (entry,) = hq_entries(tx, [row])
        insert_entries(tx, [entry], now)
        state = refresh_cards(tx, [number], now)[number]
        audit.write(
            tx,
            action="card.adjust",
            subject=number,
            detail={"points": req.points, "entry_id": entry["id"], "balance": state.balance},
            reason=req.reason,
            operator=operator,
            now=now,
        )
    logger.info(
        "card %s adjusted by head office: %+d points (%s); balance now %d",
        mask(number),
        req.points,
        req.reason,
        state.balance,
    )
    return {
        "card": number,
        "entry_id": entry["id"],
        "points": req.points,
        "balance": state.balance,
        "pending": state.pending,
    }
