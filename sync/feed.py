"""Applying one page of head office's change feed to the till's data file.

A page and its cursor go in together, in the caller's one write transaction: a till
killed half-way through a page has either all of it and the new cursor or none of it and
the old one, and asks for the same page again. Everything in a page is an upsert, so
applying a page twice (a reply lost after the commit) changes nothing.

A card's ``uses`` (what the other tills counted of it) and the page's ``budgets`` (what
they gave from each budget) are stored as head office sent them; the till adds its own
counts when it reads them (:func:`tillgate.agent.store.points.customer`,
:func:`~tillgate.agent.store.points.budgets_used`).

A card is kept as a chain's till may hold it (docs/security.md, "Personal data"): the
holder's display name, the phone's keyed hash and the birthday's month and day; the page's
``lookup_key`` is the key those hashes were made with, kept beside the data file. If it
differs from the key kept before, every hash made with the old one is forgotten and the
next pull starts from the beginning, so each card's hash comes back made with the new key.

A page names the product list head office has in force when it changed (``products``);
the till keeps the version it wants, and downloads the list apart once the pages are in
(:meth:`tillgate.sync.engine.Syncer.pull_products`).

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
from typing import Any

from tillgate.agent.store import cards as card_store
from tillgate.agent.store import hqcache as store_hq
from tillgate.agent.store import meta, receipts, schema, syncstate
from tillgate.agent.store import products as store_products
from tillgate.agent.store import program as store_program
from tillgate.agent.store.db import Database
from tillgate.agent.store.ledger import ts
from tillgate.core.errors import HqBadReply, ProgramError, StoreError
from tillgate.core.keyfolder import KeyFolder
from tillgate.core.rules.program import ProgramFile, parse_program

from .wire import NO_COUNTS, CardChange, ChangePage

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Applied:
    cursor: int
    program: str | None  # the version put in force by this page, if any
    cards: int
    coupons_revoked: int
    coupons_used: int


# Cards written per transaction: a page's cards go in a few hundred at a time, so a sale
# (whose commit waits for the syncer's) never waits for a whole page of them.
WRITE_CHUNK = 250
NO_COUNTS_TEXT = json.dumps(NO_COUNTS.model_dump(mode="json"), ensure_ascii=False)


def _rows(card: CardChange) -> tuple[card_store.ChainCard, store_hq.HqCard]:
    """A card of the page as the till's two tables keep it (built outside the write)."""
    # "--03-14" from head office; a whole date from an older one (the till keeps month and day)
    own = card_store.ChainCard(card.number, card.holder, card.phone_hash, card.birthday,
                               card.tier, card.segments, card.clubs, card.status)  # fmt: skip
    lots = [
        (lot.points, ts(lot.available_from), ts(lot.expires_at) if lot.expires_at else None)
        for lot in card.lots
    ]
    uses = (
        NO_COUNTS_TEXT
        if card.uses is NO_COUNTS
        else json.dumps(card.uses.model_dump(mode="json"), ensure_ascii=False)
    )
    hq = store_hq.HqCard(card.number, card.balance, card.pending, store_hq.lots_text(lots),
                         card.through_seq, uses, card.held)  # fmt: skip
    return own, hq


def put_cards(
    conn: sqlite3.Connection,
    cards: list[CardChange | tuple[Any, ...]],
    *,
    now: datetime,
    own: bool = True,
) -> None:
    """Write a chunk of the page's cards: a compact page's plain rows (``page.plain``, in
    :data:`~tillgate.sync.cardrows.COLUMNS` order) as they are, the others as models.
    ``own`` False: head office's view of them alone (``hq_cards``; a card snapshot wrote
    their own rows already)."""
    plain = [c for c in cards if type(c) is tuple]
    if plain:
        if own:
            card_store.upsert_chain_rows(conn, plain, now=now)
        store_hq.put_cards(conn, [
            store_hq.HqCard(number, balance, pending, "[]", through_seq, NO_COUNTS_TEXT, held)
            for number, _, _, _, _, _, _, _, balance, pending, _, through_seq, _, held in plain
        ], now=now)  # fmt: skip
    if len(plain) == len(cards):
        return
    rows = [_rows(card) for card in cards if isinstance(card, CardChange)]
    if own:
        card_store.upsert_chain(conn, [r[0] for r in rows], now=now)
    store_hq.put_cards(conn, [r[1] for r in rows], now=now)


def _check_program(db: Database, page: ChangePage) -> ProgramFile | None:
    """The page's program if it is new here, parsed before anything of the page is
    written: one this till cannot use refuses the whole page."""
    if page.program is None:
        return None
    with db.read() as conn:
        if store_program.version(conn) == page.program.version:
            return None
    version = page.program.version
    try:
        return parse_program(page.program.body, source=f"program version {version}")
    except ProgramError as exc:
        # HQ validates with the same code, so this is a version skew: keep the old program.
        raise HqBadReply(f"head office sent a program this till cannot use: {exc}") from exc


def _program(
    conn: sqlite3.Connection, page: ChangePage, program: ProgramFile | None, *, now: datetime
) -> str | None:
    if page.program is None or program is None:
        return None
    version = page.program.version
    store_program.install(
        conn, version=version, body=program.model_dump_json(by_alias=True), now=now
    )
    logger.info(
        "program %r version %s from head office (%d promotions)",
        program.program.name,
        version,
        len(program.promotions),
    )
    return version


def _coupon_keys(conn: sqlite3.Connection, page: ChangePage) -> None:
    """Keep the chain's coupon keys in the till's key folder (files, never the data file).

    Written before the page commits: a page applied again writes nothing new, and a key
    kept for a page that then rolled back is a true key of the chain all the same.
    """
    if page.coupon_keys is None:
        return
    folder_path = meta.keys_folder(conn)
    if folder_path is None:
        logger.warning("coupon keys from head office not kept: the data file is in memory")
        return
    folder = KeyFolder(folder_path)
    try:
        added = [k.id for k in page.coupon_keys.keys if folder.add(k.id, bytes.fromhex(k.key))]
        revoked = [i for i in page.coupon_keys.revoked if folder.revoke(i)]
    except (StoreError, ValueError) as exc:
        raise HqBadReply(f"head office sent coupon keys this till cannot keep: {exc}") from exc
    if added or revoked:
        logger.info(
            "coupon keys from head office: %s new, %s revoked",
            ", ".join(map(str, added)) or "none",
            ", ".join(map(str, revoked)) or "none",
        )


def apply(
    db: Database,
    page: ChangePage,
    *,
    till: str,
    cursor: int,
    now: datetime,
    chunk: int = WRITE_CHUNK,
) -> Applied:
    """Apply ``page`` (asked for after ``cursor``) and store its cursor.

    The cards go in ``chunk`` at a time, each chunk its own short transaction; the rest of
    the page and its cursor go in with the last. Cut off half-way, the till keeps its old
    cursor and asks for the page again: the cards already in are upserts, written again
    unchanged. A new look-up key is kept with the first chunk, and with it the cursor 0
    that makes the till pull every card again.
    """
    if page.cursor < cursor:
        raise HqBadReply(
            f"head office answered cursor {page.cursor} to a request after cursor {cursor}"
        )
    program = _check_program(db, page)
    cards: list[CardChange | tuple[Any, ...]] = [*page.plain, *page.cards]
    rekeyed = False
    last = (len(cards) - 1) // chunk * chunk if cards else 0  # where the last chunk starts
    # None of a page's transactions waits for the disk (an fsync each cost 10-40 ms on a
    # busy disk, a third of a first start): a power cut takes back the last pages and
    # their cursor together (SQLite's log keeps commits in order), and the till pulls them
    # again. The sync's own last write (Syncer.run_once) waits, and puts them all on it.
    for start in range(0, last, chunk):
        with db.write(durable=False) as conn:
            rekeyed = _first(conn, page, cursor) if start == 0 else rekeyed
            put_cards(conn, cards[start : start + chunk], now=now)
    with db.write(durable=False) as conn:
        rekeyed = _first(conn, page, cursor) if last == 0 else rekeyed
        put_cards(conn, cards[last:], now=now)
        applied = _rest(conn, page, program, till=till, now=now)
        meta.put(conn, syncstate.CURSOR, 0 if rekeyed else page.cursor)
        if not page.more:
            _snapshot_end(conn)
    return applied


def _first(conn: sqlite3.Connection, page: ChangePage, cursor: int) -> bool:
    """The page's first transaction: a new look-up key, and a pull of every card begun
    or gone on with (its pages go without the late indexes; ``schema.LATE_INDEXES``).

    Only a pull of several pages from cursor 0 is a snapshot: a single page (a small
    chain, or a head office with no changes yet) is written with the indexes in place.
    """
    rekeyed = _rekey(conn, page)
    if cursor == 0 and page.more:
        meta.put(conn, syncstate.SNAPSHOT, 1)
    if meta.get(conn, syncstate.SNAPSHOT):
        schema.drop_late_indexes(conn)
    return rekeyed


def _snapshot_end(conn: sqlite3.Connection) -> None:
    """The last page of a pull: the late indexes built (once, sorted) with its cursor, and
    a card snapshot's change id forgotten (the cursor is past it)."""
    meta.put(conn, syncstate.SNAPSHOT, None)
    meta.put(conn, syncstate.CARDS_THROUGH, None)
    built = schema.build_late_indexes(conn)
    if built:
        logger.info("index %s built after the pull of every card", ", ".join(built))


def settle(db: Database) -> None:
    """A pull cut off (head office gone, a bad page): the late indexes back at once, so
    the till looks phones up with them while it waits; the next pull, going on with the
    snapshot, drops them again."""
    with db.read() as conn:
        missing = schema.missing_late_indexes(conn)
    if missing:
        with db.write(durable=False) as conn:
            schema.build_late_indexes(conn)


def _rekey(conn: sqlite3.Connection, page: ChangePage) -> bool:
    rekeyed = page.lookup_key is not None and card_store.put_lookup_key(conn, page.lookup_key)
    if rekeyed:
        logger.warning(
            "head office's phone look-up key changed: pulling every card again for its hash"
        )
        meta.put(conn, syncstate.CURSOR, 0)
        meta.put(conn, syncstate.CARDS_THROUGH, None)  # the snapshot's hashes are of the old key
    return rekeyed


def _rest(
    conn: sqlite3.Connection,
    page: ChangePage,
    program: ProgramFile | None,
    *,
    till: str,
    now: datetime,
) -> Applied:
    """Everything of the page but its cards, in its last transaction."""
    for rev in page.coupons_revoked:
        receipts.revoke_coupon(conn, code=rev.code, reason=rev.reason, revoked_at=rev.revoked_at)
    used = 0
    for use in page.coupons_used:
        if use.till == till:
            continue  # our own use, already here
        used += receipts.used_elsewhere(
            conn,
            code=use.code,
            promotion_id=use.promotion_id,
            receipt_id=use.receipt_id,
            till=use.till,
            used_at=use.used_at,
            now=now,
        )
    for promotion_id, points in page.budgets.items():
        store_hq.put_budget(conn, promotion_id, points, now=now)
    version = _program(conn, page, program, now=now)
    _coupon_keys(conn, page)
    if page.products is not None:
        # Only named here: the list itself is downloaded after the pages (sync/engine.py).
        store_products.set_wanted(conn, page.products.version)
    return Applied(
        cursor=page.cursor,
        program=version,
        cards=len(page.cards) + len(page.plain),
        coupons_revoked=len(page.coupons_revoked),
        coupons_used=used,
    )
