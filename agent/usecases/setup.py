"""Putting the loyalty program, the cards and the product list into the till, and the
periodic sweep."""

from __future__ import annotations

import logging
from datetime import timedelta

from tillgate.core.cardfile import CardRecord
from tillgate.core.products import Product
from tillgate.core.rules.engine import Catalog
from tillgate.core.rules.program import ProgramFile

from ..store import cards as card_store
from ..store import meta, points, retention
from ..store import products as store_products
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


def install_products(ctx: TillContext, products: list[Product], *, version: str | None) -> bool:
    """Put a validated product list in force whole (``version`` None: no list at all);
    returns False if that version is already in force.

    One transaction: a sale priced meanwhile sees the old list or the new one, never part
    of either. The list is built aside and swapped in (as a download from head office is),
    so the write lock is held for the building, not for a delete and an upsert per row.
    """
    with ctx.db.write() as conn:
        if meta.get(conn, store_products.VERSION_KEY) == version:
            return False
        if version is None:
            store_products.clear(conn)
        else:
            state = store_products.stage_begin(conn, version=version, count=len(products))
            for start in range(0, len(products), 5000):
                state = store_products.stage(
                    conn, state, products[start : start + 5000], after=start + 5000
                )
            store_products.stage_commit(conn, state)
    if version is None:
        logger.info("product list removed: lines get their category from the POS and rules")
    else:
        logger.info("product list version %s in force (%d products)", version, len(products))
    return True


def sweep(ctx: TillContext) -> None:
    """Periodic housekeeping: timed-out holds and expired lots of every card."""
    now = ctx.clock.now()
    with ctx.db.write() as conn:
        ctx.sweep_in(conn, now, None)


def prune(ctx: TillContext) -> int:
    """Retention: forget receipts older than ``till.retention_days`` (store/retention.py),
    a batch per transaction; returns how many went."""
    before = ctx.clock.now() - timedelta(days=ctx.settings.retention_days)
    total = 0
    while True:
        with ctx.db.write() as conn:
            n = retention.prune_batch(conn, before=before, chain=ctx.settings.chain)
        total += n
        if n < retention.BATCH:
            break
    if total:
        ctx.db.checkpoint()
        logger.info("retention: %d receipts older than %s forgotten", total, before.date())
    return total
