"""Putting the loyalty program and the cards into the till, and the periodic sweep."""

from __future__ import annotations

import logging

from tillgate.core.cardfile import CardRecord
from tillgate.core.rules.engine import Catalog
from tillgate.core.rules.program import ProgramFile

from ..store import cards as card_store
from ..store import points
from ..store import program as store_program
from .context import TillContext

logger = logging.getLogger(__name__)


def install_program(ctx: TillContext, program: ProgramFile, *, version: str) -> bool:
    """Put a validated program in force; returns False if that version is already in."""
    with ctx.db.write() as conn:
        if store_program.version(conn) == version:
            ctx.catalog_in(conn)
            return False
        store_program.install(
            conn, version=version, body=program.model_dump_json(by_alias=True), now=ctx.clock.now()
        )
        ctx.catalogs.put(Catalog.build(program), version)
    logger.info(
        "program %r version %s in force (%d promotions)",
        program.program.name,
        version,
        len(program.promotions),
    )
    return True


def import_cards(ctx: TillContext, records: list[CardRecord]) -> int:
    """Put cards into the cache; an opening balance is credited once per card."""
    now = ctx.clock.now()
    with ctx.db.write() as conn:
        program = ctx.catalog_in(conn).program
        for rec in records:
            card_store.upsert(conn, rec, now=now)
            if rec.opening_balance > 0 and not points.has_opening_balance(conn, rec.number):
                points.credit(
                    conn,
                    till=ctx.settings.till,
                    card=rec.number,
                    kind="adjust",
                    points=rec.opening_balance,
                    now=now,
                    delay_days=0,
                    expiry_days=program.expiry_days,
                    note=points.OPENING_BALANCE,
                )
    return len(records)


def sweep(ctx: TillContext) -> None:
    """Periodic housekeeping: timed-out holds and expired lots of every card."""
    now = ctx.clock.now()
    with ctx.db.write() as conn:
        ctx.sweep_in(conn, now, None)
