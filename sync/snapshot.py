"""A fresh till's start from head office's card snapshot (``hq/snapshots.py``;
docs/sync-protocol.md, "Card snapshot").

A till whose data file has no card yet, pulling from cursor 0, first asks head office for
a snapshot. If there is one, it downloads its parts into a file beside the data file
(each part an exchange of its own, retried as any), inflating them as they come, never to
more than the file's announced size, and checks the whole against its size and checksum;
:mod:`tillgate.agent.store.cardsnapshot` checks the file's rows and copies them in SQL. In
the same transaction the till keeps the snapshot's phone look-up key and the change id it
holds every card as of (``sync.cards_through``), and then pulls the change pages after
cursor 0 with ``cards_through``: everything but the cards it has, then every change after.

Anything wrong with a snapshot (none offered, a head office from before, a part that does
not come, a checksum or a row that is wrong, a full disk) is one warning, and the till
pulls every card in pages as it did before: a snapshot only ever saves time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
import zlib
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from tillgate.agent.store import cards as card_store
from tillgate.agent.store import cardsnapshot, meta, syncstate
from tillgate.agent.store import hqcache as store_hq
from tillgate.agent.store.db import Database
from tillgate.core.cards import mask
from tillgate.core.errors import HqBadReply, TillgateError

from . import cardrows, feed
from .client import HqClient
from .wire import CardSnapshotInfo

logger = logging.getLogger(__name__)

# A card's row is ≈ 100 bytes in the file; more than this a card is no true snapshot.
MAX_BYTES_A_CARD = 4096
CHUNK = 1000  # cards with lots or counts checked and written at a time
PROGRESS_SECONDS = 5.0  # a download says how far it got this often
SPARE_BYTES = 256 << 20  # what the disk must keep free beyond the snapshot's needs


def wanted(db: Database) -> bool:
    """Whether a till pulling from the beginning (the caller knows its cursor) would start
    from a snapshot: a data file on disk with no card of any kind yet."""
    if str(db.path) == ":memory:" or not db.path.parent.is_dir():
        return False
    with db.read() as conn:
        row = conn.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM cards) AND NOT EXISTS (SELECT 1 FROM hq_cards)"
        ).fetchone()
    return bool(row[0])


def start(db: Database, client: HqClient, *, now: Callable[[], datetime]) -> int:
    """Start from head office's snapshot if it offers one: the change id the till then
    holds every card as of (0: none, pull every card in pages)."""
    try:
        info = client.card_snapshot()
        if info is None:
            return 0
        if info.format != cardsnapshot.FORMAT:
            logger.info("head office's card snapshot is of format %d; pulling pages", info.format)
            return 0
        if info.file_size > info.cards * MAX_BYTES_A_CARD + (1 << 20):
            raise HqBadReply(f"a card snapshot of {info.cards} cards said {info.file_size} bytes")
        path = db.path.with_name(db.path.name + ".cards")
        free = shutil.disk_usage(path.parent).free
        if free < 3 * info.file_size + SPARE_BYTES:  # the file, its copy and the log
            logger.warning(
                "head office's card snapshot (%d MiB) left for want of disk (%d MiB free); "
                "pulling every card in pages",
                info.file_size >> 20,
                free >> 20,
            )
            return 0
        started = time.monotonic()
        try:
            _download(client, info, path)
            cards = _apply(db, path, info, now())
        finally:
            with suppress(OSError):
                path.unlink()
    except (TillgateError, OSError) as exc:
        logger.warning(
            "head office's card snapshot could not be used (%s); pulling every card in pages",
            exc,
        )
        return 0
    logger.info(
        "%d cards from head office's card snapshot %d (as of change %d) in %.1f s",
        cards,
        info.id,
        info.change_id,
        time.monotonic() - started,
    )
    return info.change_id


def _download(client: HqClient, info: CardSnapshotInfo, path: Path) -> None:
    """The snapshot's parts, inflated into ``path`` (never beyond ``info.file_size``),
    checked against its size and checksum."""
    digest = hashlib.sha256()
    inflate = zlib.decompressobj()
    sent = written = 0
    told = time.monotonic()
    # 0600 from its first byte: the cards are the chain's customers (docs/security.md);
    # one a crash left behind is made anew, not reopened with the mode it had.
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        for seq in range(info.parts):
            data = client.card_snapshot_part(info.id, seq)
            sent += len(data)
            if sent > info.size:
                raise HqBadReply(f"card snapshot {info.id}: more bytes than its {info.size}")
            digest.update(data)
            while data:
                try:
                    plain = inflate.decompress(data, info.file_size - written + 1)
                except zlib.error as exc:
                    raise HqBadReply(f"card snapshot {info.id} does not inflate: {exc}") from exc
                written += len(plain)
                if written > info.file_size:
                    raise HqBadReply(
                        f"card snapshot {info.id} inflates past its {info.file_size} bytes"
                    )
                out.write(plain)
                data = inflate.unconsumed_tail
            if time.monotonic() - told >= PROGRESS_SECONDS:  # a slow line: say how far
                told = time.monotonic()
                logger.info(
                    "downloading head office's card snapshot %d: %d of %d parts (%.1f MiB)",
                    info.id,
                    seq + 1,
                    info.parts,
                    sent / (1 << 20),
                )
    if sent != info.size or digest.hexdigest() != info.sha256:
        raise HqBadReply(f"card snapshot {info.id} is not what head office said (size, sha256)")
    if not inflate.eof or written != info.file_size:
        raise HqBadReply(f"card snapshot {info.id} inflates to {written} bytes, not its own")


def _apply(db: Database, path: Path, info: CardSnapshotInfo, now: datetime) -> int:
    """The checked file's cards into the till's tables, with the look-up key and
    ``sync.cards_through``, in one transaction."""
    with db.attached(path, cardsnapshot.SCHEMA), db.write(durable=False) as conn:
        try:
            values = cardsnapshot.check(conn)
        except cardsnapshot.BadSnapshot as exc:
            raise HqBadReply(f"card snapshot {info.id}: {exc}") from exc
        if values["change_id"] != info.change_id:
            raise HqBadReply(f"card snapshot {info.id} is of another change than it said")
        card_store.put_lookup_key(conn, values["lookup_key"])
        cards = cardsnapshot.copy_cards(conn, now=now, no_counts=feed.NO_COUNTS_TEXT)
        for rows in cardsnapshot.others(conn, CHUNK):
            _put_others(conn, rows, now)
        meta.put(conn, syncstate.CARDS_THROUGH, info.change_id)
    return cards


def _put_others(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], now: datetime) -> None:
    """Head office's view of a chunk of the file's cards with counts (or lots in another
    shape): the counts decoded in C as the model bounds them, the lots as SQL kept them;
    any other card through the page's model, which names what is wrong."""
    quick, slow = [], []
    for row in rows:
        lots = row[13]  # None: not in head office's shape
        counts = cardrows.counts_text(row[11]) if lots is not None else None
        if counts is None:
            slow.append(_values(row[:13]))
        else:
            quick.append(store_hq.HqCard(row[0], row[8], row[9], lots, 0, counts, row[12]))
    store_hq.put_cards(conn, quick, now=now)
    if slow:
        plain, models = cardrows.cards_of(list(cardrows.COLUMNS), slow)
        feed.put_cards(conn, [*plain, *models], now=now, own=False)


def _values(row: tuple[Any, ...]) -> list[Any]:
    """A file's card with lots or counts as a compact page's row (:mod:`.cardrows` then
    checks it as a page's: the model, or a plain row if its lots and counts are empty all
    the same, ``[ ]``)."""
    number, holder, phone, birthday, tier, segments, clubs, status, balance, pending = row[:10]
    try:
        lots, uses = json.loads(row[10]), json.loads(row[11])
        names = json.loads(segments), json.loads(clubs)
    except ValueError as exc:
        raise HqBadReply(f"card {mask(str(number))} of the snapshot: {exc}") from exc
    return [number, holder, phone, birthday, tier, *names, status, balance, pending, lots, 0,
            uses, row[12]]  # fmt: skip
