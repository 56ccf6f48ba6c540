"""Putting the loyalty program, the cards and the product list into the till, and the
periodic sweep."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from tillgate.core.cardfile import CardRecord, twice
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


CARDS_FILE_KEY = "standalone.cards_file"  # meta: what the cards file in force was


def cards_file_in_force(ctx: TillContext) -> str | None:
    """What :func:`import_card_rows` was last given as ``source`` (None: nothing yet)."""
    with ctx.db.read() as conn:
        return meta.get(conn, CARDS_FILE_KEY)


def import_card_rows(
    ctx: TillContext, rows: Iterable[tuple[int, CardRecord]], *, problems: list[str], source: str
) -> int:
    """Put a shop's cards file into the cache as it is read (numbered good rows); returns
    how many cards it holds.

    One transaction: a file that cannot be read to its end changes nothing. Rows go to a
    staging table in batches, so memory does not grow with the file; a number met twice
    is found there and its later rows join ``problems`` (in row order, as the file's
    other problems). An opening balance is credited once per card. ``source`` (what the
    file was: its checksum) is kept with the cards, for :func:`cards_file_in_force`.
    """
    now = ctx.clock.now()
    with ctx.db.write() as conn:
        program = ctx.catalog_in(conn).program
        card_store.stage_begin(conn)
        count = card_store.stage(conn, rows)
        repeated = [twice(n, number) for n, number in card_store.staged_twice(conn)]
        if repeated:
            problems[:] = sorted(problems + repeated, key=_row_order)
        card_store.stage_commit(conn, now=now)
        points.credit_openings(
            conn,
            card_store.STAGED_OPENINGS,
            till=ctx.settings.till,
            now=now,
            expiry_days=program.expiry_days,
        )
        card_store.stage_end(conn)
        meta.put(conn, CARDS_FILE_KEY, source)
    return count - len(repeated)


def _row_order(problem: str) -> int:
    """A problem's row number (``header: …`` first), to keep problems in file order."""
    head = problem.split(":", 1)[0]
    return int(head[4:]) if head.startswith("row ") else 0


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
            n = retention.prune_batch(
                conn,
                before=before,
                chain=ctx.settings.chain,
                now=ctx.clock.now(),
                timezone=ctx.settings.timezone,
            )
        total += n
        if n < retention.BATCH:
            break
    if total:
        ctx.db.checkpoint()
        logger.info("retention: %d receipts older than %s forgotten", total, before.date())
    return total
