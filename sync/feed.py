"""Applying one page of head office's change feed to the till's data file.

A page and its cursor go in together, in the caller's one write transaction: a till
killed half-way through a page has either all of it and the new cursor or none of it and
the old one, and asks for the same page again. Everything in a page is an upsert, so
applying a page twice (a reply lost after the commit) changes nothing.

In a chain the program comes only from head office. It is stored like a standalone
program (the ``program`` row); the till service notices the new version on its next
request and rebuilds its catalog.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from tillgate.agent.store import cards as card_store
from tillgate.agent.store import syncstate
from tillgate.agent.store.ledger import ts
from tillgate.core.errors import HqBadReply, ProgramError
from tillgate.core.rules.program import parse_program

from .wire import CardChange, ChangePage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Applied:
    cursor: int
    program: str | None  # the version put in force by this page, if any
    cards: int
    coupons_revoked: int
    coupons_used: int


def _card(conn: sqlite3.Connection, card: CardChange, *, now: datetime) -> None:
    rec = card_store.CardRecord(
        number=card.number,
        holder=card.holder,
        phone=card.phone,
        birthday=card.birthday,
        tier=card.tier,
        segments=tuple(card.segments),
        clubs=tuple(card.clubs),
        status=card.status,
    )
    card_store.upsert(conn, rec, now=now, origin="hq")
    lots = [
        [lot.points, ts(lot.available_from), ts(lot.expires_at) if lot.expires_at else None]
        for lot in card.lots
    ]
    conn.execute(
        "INSERT INTO hq_cards (number, balance, pending, lots, through_seq, uses, updated_at)"
        " VALUES (?,?,?,?,?,?,?) ON CONFLICT (number) DO UPDATE SET"
        " balance = excluded.balance, pending = excluded.pending, lots = excluded.lots,"
        " through_seq = excluded.through_seq, uses = excluded.uses,"
        " updated_at = excluded.updated_at",
        (
            card.number,
            card.balance,
            card.pending,
            json.dumps(lots),
            card.through_seq,
            json.dumps(card.uses, ensure_ascii=False),
            ts(now),
        ),
    )


def _program(conn: sqlite3.Connection, page: ChangePage, *, now: datetime) -> str | None:
    if page.program is None:
        return None
    version = page.program.version
    row = conn.execute("SELECT version FROM program WHERE id = 1").fetchone()
    if row is not None and row[0] == version:
        return None
    try:
        program = parse_program(page.program.body, source=f"program version {version}")
    except ProgramError as exc:
        # HQ validates with the same code, so this is a version skew: keep the old program.
        raise HqBadReply(f"head office sent a program this till cannot use: {exc}") from exc
    conn.execute(
        "INSERT INTO program (id, version, body, loaded_at) VALUES (1, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
        " body = excluded.body, loaded_at = excluded.loaded_at",
        (version, program.model_dump_json(by_alias=True), ts(now)),
    )
    logger.info(
        "program %r version %s from head office (%d promotions)",
        program.program.name,
        version,
        len(program.promotions),
    )
    return version


def apply(
    conn: sqlite3.Connection, page: ChangePage, *, till: str, cursor: int, now: datetime
) -> Applied:
    """Apply ``page`` (asked for after ``cursor``) and store its cursor; the caller commits."""
    if page.cursor < cursor:
        raise HqBadReply(
            f"head office answered cursor {page.cursor} to a request after cursor {cursor}"
        )
    for card in page.cards:
        _card(conn, card, now=now)
    for rev in page.coupons_revoked:
        conn.execute(
            "INSERT INTO coupons_revoked (code, reason, revoked_at) VALUES (?,?,?)"
            " ON CONFLICT (code) DO UPDATE SET reason = excluded.reason,"
            " revoked_at = excluded.revoked_at",
            (rev.code, rev.reason, ts(rev.revoked_at)),
        )
    used = 0
    for use in page.coupons_used:
        if use.till == till:
            continue  # our own use, already here
        # The first use stands: a code this till used itself keeps this till's row (HQ
        # reports the double use from both pushes).
        used += conn.execute(
            "INSERT OR IGNORE INTO coupons_used"
            " (code, promotion_id, receipt_id, card, used_at, synced_at, till)"
            " VALUES (?,?,?,NULL,?,?,?)",
            (use.code, use.promotion_id, use.receipt_id, ts(use.used_at), ts(now), use.till),
        ).rowcount
    for promotion_id, points in page.budgets.items():
        conn.execute(
            "INSERT INTO hq_budgets (promotion_id, points, updated_at) VALUES (?,?,?)"
            " ON CONFLICT (promotion_id) DO UPDATE SET points = excluded.points,"
            " updated_at = excluded.updated_at",
            (promotion_id, points, ts(now)),
        )
    # The program last: if HQ sent one this till cannot use, the whole page is refused.
    version = _program(conn, page, now=now)
    syncstate.put(conn, syncstate.CURSOR, page.cursor)
    return Applied(
        cursor=page.cursor,
        program=version,
        cards=len(page.cards),
        coupons_revoked=len(page.coupons_revoked),
        coupons_used=used,
    )
