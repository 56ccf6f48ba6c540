"""Re-pricing: head office runs the same pure engine again on each receipt's facts.

After ingest — never in the push request — :func:`reprice_pending` takes the sale facts not
yet re-priced and builds the catalog of the program version the till priced with. It checks
the basket against the program's bounds (``[program.limits]``, the very check the till's
calculate makes), asks :func:`tillgate.core.rules.facts.reprice` what disagrees, and checks
that the points the till's ledger moved for the receipt are the ones the facts say.

A receipt that disagrees has its counted ``accrue`` entries quarantined (code
``repricing``; the reason names every disagreement): they stay stored and flagged, their
points are spendable nowhere until an admin releases or rejects them (``tillgate hq
flags``). A redemption is never quarantined that way: leaving it out would give the points
back.

A receipt calculated before the till recorded facts, or priced with a program head office
does not have (a standalone till's own file), is marked ``unpriceable`` and left alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tillgate.core.errors import TillgateError
from tillgate.core.rules.bounds import check_bounds
from tillgate.core.rules.engine import Catalog
from tillgate.core.rules.facts import decode_inputs, reprice
from tillgate.core.rules.program import ProgramFile

from . import quarantine
from .db import Database, Tx
from .ledger import refresh_cards

logger = logging.getLogger(__name__)

AGREES, DISAGREES, UNPRICEABLE = "agrees", "disagrees", "unpriceable"
CODE = "repricing"


@dataclass
class Report:
    agrees: int = 0
    disagrees: int = 0
    unpriceable: int = 0
    quarantined: list[str] = field(default_factory=list)  # entry ids


def reprice_pending(db: Database, now: datetime, *, limit: int = 200) -> Report:
    """Re-price up to ``limit`` sale facts not yet re-priced (oldest first), in one write."""
    report = Report()
    catalogs: dict[int, Catalog | None] = {}
    with db.write() as tx:
        rows = tx.all(
            "SELECT till, id, receipt_id, card, body FROM receipt_facts"
            " WHERE repriced IS NULL AND kind = 'sale' ORDER BY received_at, till, id LIMIT ?",
            (limit,),
        )
        # Every card a disagreement may fold again, locked first and in order, as a push
        # locks its cards before any counter row: one at a time, after the first
        # quarantine took the counters, two transactions deadlocked on PostgreSQL.
        tx.lock_rows("cards", "number", sorted({r["card"] for r in rows if r["card"]}))
        for row in rows:
            status, problems = _check(tx, row, catalogs)
            if status == DISAGREES and row["card"]:
                report.quarantined += _quarantine(tx, row, problems, now)
            setattr(report, status, getattr(report, status) + 1)
            tx.execute(
                "UPDATE receipt_facts SET repriced = ?, problems = ? WHERE till = ? AND id = ?",
                (status, "; ".join(problems) or None, row["till"], row["id"]),
            )
        # Refund facts are kept for analytics; the refund arithmetic is checked at push.
        tx.execute(
            "UPDATE receipt_facts SET repriced = ? WHERE repriced IS NULL AND kind = 'refund'",
            (UNPRICEABLE,),
        )
    if report.disagrees:
        logger.warning(
            "re-pricing: %d receipt(s) disagree with the engine; %d entries quarantined",
            report.disagrees,
            len(report.quarantined),
        )
    return report


def _check(
    tx: Tx, row: dict[str, Any], catalogs: dict[int, Catalog | None]
) -> tuple[str, list[str]]:
    body = json.loads(row["body"])
    calc = body.get("calculation")
    if not isinstance(calc, dict):
        return UNPRICEABLE, []
    catalog = _catalog(tx, calc.get("program_version"), catalogs)
    if catalog is None:
        return UNPRICEABLE, []
    try:
        # The same bounds the till's calculate applies ([program.limits]), then the engine.
        request, _ = decode_inputs(calc["inputs"])
        problems = [str(b) for b in check_bounds(catalog.program.limits, request.lines)]
        problems += reprice(catalog, calc["inputs"], calc["outcome"])
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        return DISAGREES, [f"facts cannot be read: {type(exc).__name__}: {exc}"]
    if row["card"]:
        problems += _ledger_disagrees(tx, row, calc["outcome"])
    return (DISAGREES if problems else AGREES), problems


def _catalog(tx: Tx, version: Any, cache: dict[int, Catalog | None]) -> Catalog | None:
    """The catalog of a program version head office published (None: not one of its)."""
    try:
        number = int(version)
    except (TypeError, ValueError):
        return None
    if number not in cache:
        body = tx.scalar("SELECT body FROM programs WHERE version = ?", (number,))
        try:
            cache[number] = Catalog.build(ProgramFile.model_validate_json(body)) if body else None
        except (TillgateError, ValueError):
            cache[number] = None
    return cache[number]


def _ledger_disagrees(tx: Tx, row: dict[str, Any], outcome: dict[str, Any]) -> list[str]:
    """The receipt's own entries against its facts: accrued and redeemed points."""
    moved = tx.all(
        "SELECT kind, SUM(points) AS points FROM entries WHERE till = ? AND receipt_id = ?"
        " AND refund_id IS NULL AND kind IN ('accrue', 'redeem') GROUP BY kind",
        (row["till"], row["receipt_id"]),
    )
    got = {r["kind"]: int(r["points"]) for r in moved}
    problems = []
    if got.get("accrue", 0) != int(outcome["accrued_points"]):
        problems.append(
            f"accrue entries: {got.get('accrue', 0)}, the facts {outcome['accrued_points']}"
        )
    if -got.get("redeem", 0) != int(outcome["redeemed_points"]):
        problems.append(
            f"redeem entries: {-got.get('redeem', 0)}, the facts {outcome['redeemed_points']}"
        )
    return problems


def _quarantine(tx: Tx, row: dict[str, Any], problems: list[str], now: datetime) -> list[str]:
    """Leave the receipt's counted accruals out of every balance, flagged with why."""
    card = row["card"]
    tx.lock_rows("cards", "number", [card])
    entries = tx.all(
        "SELECT id, seq, card, kind, points, created_at FROM entries WHERE till = ?"
        " AND receipt_id = ? AND refund_id IS NULL AND kind = 'accrue' AND points > 0"
        " AND quarantine IS NULL ORDER BY seq",
        (row["till"], row["receipt_id"]),
    )
    if not entries:
        return []
    reason = f"receipt {row['receipt_id']} re-priced: " + "; ".join(problems)
    quarantine.flag_stored(tx, row["till"], entries, code=CODE, reason=reason[:500], now=now)
    refresh_cards(tx, [card], now)
    logger.warning(
        "re-pricing quarantined %d entries of till %s: %s", len(entries), row["till"], reason
    )
    return [e["id"] for e in entries]
