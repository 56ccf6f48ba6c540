"""Card snapshots: a fresh till's pull of every card, built once for every till.

A till's first start pulls every card of the chain. Paged, that costs head office ≈ 25 µs
of CPU a card for every till, and the till ≈ 20 µs to parse and write each: half a
minute at a million cards however the pages are trimmed (docs/performance.md). A snapshot
is that pull done once: head office writes every card as a page would bring it to a till
with nothing of its own (:func:`tillgate.hq.feed.fresh_rows`) into a SQLite file, with
the change id it holds every card as of, compresses it and keeps it in its database in
parts (``card_snapshots``, ``card_snapshot_parts``), so that every ``hq serve`` on the
database can send it. A fresh till downloads the parts, checks the file against its
checksum and its rows against the feed's bounds, copies them into its tables in SQL and
pulls the feed from there with ``cards_through`` (docs/sync-protocol.md, "Card snapshot";
the till's side is :mod:`tillgate.sync.snapshot`).

* **Consistent**: the change id is read before the first card; the cards are read after
  it, :data:`CHUNK` to a short read transaction (one long one would hold a SQLite head
  office's connection for the whole build). A card that changed meanwhile has a change
  above the snapshot's id: the till pulls it after the snapshot, and its row replaces
  the snapshot's. So the till holds every card at least as new as the snapshot's id, as
  it would after pulling pages to it.
* **Who gets one**: a till with nothing of its own at head office (``through_seq`` 0:
  nothing pushed, so nothing counted), the snapshot's ``uses`` and ``held`` being every
  till's; and only one made with the phone look-up key in force (``key_id``).
* **When**: the ``card snapshot`` job of ``hq serve`` (one process at a time) builds one
  when the chain has :data:`MIN_CARDS` cards or more and there is none yet, a tenth of
  the cards changed since the last (a fresh till pulls those as pages), or the last is a
  day old and a card changed; ``tillgate hq cards snapshot`` builds one now. The two
  newest are kept (a till may be downloading the older one).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from tillgate.core.clock import Clock
from tillgate.core.errors import NotFound, StoreError

from . import feed
from .db import Database, Row, Tx
from .wire import parse_ts, ts

logger = logging.getLogger(__name__)

FORMAT = 1
JOB = "card snapshot"  # its lock's name (hq/jobs.py): the job's runs and an admin's build
MIN_CARDS = 20_000  # fewer: the pages are as quick, and no file is kept
CHUNK = 2000  # cards read to a transaction
PART_BYTES = 1 << 20  # compressed bytes a part (a request of the till's)
KEEP = 2
STALE_SHARE = 0.1  # rebuilt when this share of the cards changed since the last one
MAX_AGE = timedelta(days=1)  # or when it is this old and any card changed
_PARTS_A_WRITE = 8

# The file's tables. A card's values as hq/feed.py CARD_COLUMNS has them, less the till's
# own through_seq (0 for every till a snapshot is for); segments, clubs, lots and uses as
# their JSON text, the phone's hash as its 32 bytes.
COLUMNS = ("number", "holder", "phone_hash", "birthday", "tier", "segments", "clubs",
           "status", "balance", "pending", "lots", "uses", "held")  # fmt: skip
_SCHEMA = (
    "CREATE TABLE snapshot (name TEXT PRIMARY KEY, value) WITHOUT ROWID",
    "CREATE TABLE cards (number TEXT PRIMARY KEY, holder TEXT, phone_hash BLOB, birthday TEXT,"
    " tier TEXT, segments TEXT, clubs TEXT, status TEXT, balance INTEGER, pending INTEGER,"
    " lots TEXT, uses TEXT, held INTEGER) WITHOUT ROWID",
)
_INSERT = f"INSERT INTO cards VALUES ({','.join('?' * len(COLUMNS))})"
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    """A snapshot as ``card_snapshots`` holds it, and as a till is told of it."""

    id: int
    change_id: int
    cards: int
    parts: int
    size: int  # compressed bytes, all parts
    file_size: int  # the SQLite file's bytes
    sha256: str  # of the compressed bytes, all parts in order
    built_at: str

    def wire(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}


def key_id(lookup_key: bytes) -> str:
    """Which phone look-up key a snapshot's hashes are made with (the key not given away)."""
    return hmac.new(lookup_key, b"tillgate card snapshot", hashlib.sha256).hexdigest()[:16]


def _of(row: Row) -> Snapshot:
    return Snapshot(**{f: row[f] for f in Snapshot.__dataclass_fields__})


def latest(tx: Tx, lookup_key: bytes) -> Snapshot | None:
    """The newest snapshot made with ``lookup_key``, if any."""
    row = tx.one(
        "SELECT * FROM card_snapshots WHERE key_id = ? ORDER BY id DESC LIMIT 1",
        (key_id(lookup_key),),
    )
    return _of(row) if row is not None else None


def offer(tx: Tx, lookup_key: bytes, *, through_seq: int) -> Snapshot:
    """The snapshot for a till whose ``through_seq`` is that (NotFound: pull pages)."""
    if through_seq:
        raise NotFound("no card snapshot for a till that has pushed: pull the change pages")
    found = latest(tx, lookup_key)
    if found is None:
        raise NotFound("no card snapshot: pull the change pages")
    return found


def part(tx: Tx, snapshot: int, seq: int) -> bytes:
    """Part ``seq`` (from 0) of snapshot ``snapshot``'s compressed bytes."""
    data = tx.scalar(
        "SELECT data FROM card_snapshot_parts WHERE snapshot = ? AND seq = ?", (snapshot, seq)
    )
    if data is None:
        raise NotFound(f"no part {seq} of card snapshot {snapshot} (a newer one replaced it?)")
    return bytes(data)


def due(db: Database, now: datetime, *, min_cards: int = MIN_CARDS) -> str | None:
    """Why a snapshot is to be built now, or None."""
    with db.read() as tx:
        cards = int(tx.scalar("SELECT COUNT(*) FROM cards"))
        if cards < min_cards:
            return None
        last = tx.one("SELECT change_id, built_at FROM card_snapshots ORDER BY id DESC LIMIT 1")
        if last is None:
            return f"{cards} cards and no snapshot"
        changed = int(
            tx.scalar(
                "SELECT COUNT(*) FROM changes WHERE id > ? AND kind = 'card'", (last["change_id"],)
            )
        )
    if changed >= cards * STALE_SHARE:
        return f"{changed} of {cards} cards changed since the last snapshot"
    if changed and now - parse_ts(last["built_at"]) >= MAX_AGE:
        return f"the last snapshot is a day old and {changed} cards changed since"
    return None


Progress = Callable[[int, int], None]


def build(
    db: Database,
    *,
    lookup_key: bytes,
    clock: Clock,
    workdir: Path | None = None,
    progress: Progress | None = None,
) -> Snapshot:
    """Build a snapshot of every card, keep it in the database and drop the older ones
    but the newest before it; ``progress(done, total)`` is told as the cards are read."""
    with db.read() as tx:
        change_id = int(tx.scalar("SELECT COALESCE(MAX(id), 0) FROM changes"))
        total = int(tx.scalar("SELECT COUNT(*) FROM cards"))
    try:
        fd, name = tempfile.mkstemp(prefix="card-snapshot-", suffix=".sqlite3", dir=workdir)
    except OSError as exc:
        raise StoreError(f"cannot make the card snapshot's file: {exc}") from exc
    os.close(fd)
    path = Path(name)
    try:
        cards = _write_file(db, path, change_id, lookup_key, clock, total, progress)
        return _keep(db, path, change_id=change_id, cards=cards, lookup_key=lookup_key,
                     now=clock.now())  # fmt: skip
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot build the card snapshot in {path.parent}: {exc}") from exc
    finally:
        path.unlink(missing_ok=True)


def _write_file(
    db: Database,
    path: Path,
    change_id: int,
    lookup_key: bytes,
    clock: Clock,
    total: int,
    progress: Progress | None,
) -> int:
    out = sqlite3.connect(path, isolation_level=None)
    try:
        out.execute("PRAGMA journal_mode = OFF")
        out.execute("PRAGMA synchronous = OFF")
        out.execute("BEGIN")
        for statement in _SCHEMA:
            out.execute(statement)
        now = clock.now()
        out.executemany(
            "INSERT INTO snapshot VALUES (?, ?)",
            [("format", FORMAT), ("change_id", change_id), ("lookup_key", lookup_key.hex()),
             ("built_at", ts(now))],
        )  # fmt: skip
        done, after = 0, ""
        while True:
            with db.read() as tx:
                rows = tx.tuples(
                    f"SELECT {feed.CARD_SQL} FROM cards WHERE number > ? ORDER BY number LIMIT ?",
                    (after, CHUNK),
                )
                values = feed.fresh_rows(tx, rows, clock.now(), lookup_key) if rows else []
            if not values:
                break
            out.executemany(_INSERT, [_file_row(v) for v in values])
            done += len(values)
            after = values[-1][0]
            if progress is not None:
                progress(done, max(total, done))
        out.execute("INSERT INTO snapshot VALUES ('cards', ?)", (done,))
        out.execute("COMMIT")
        return done
    finally:
        out.close()


def _file_row(v: list[Any]) -> tuple[Any, ...]:
    """A card's values (feed.fresh_rows) as the file's row (:data:`COLUMNS`)."""
    (
        number,
        holder,
        phone_hash,
        birthday,
        tier,
        segments,
        clubs,
        status,
        balance,
        pending,
        lots,
        uses,
        held,
    ) = v
    return (number, holder, bytes.fromhex(phone_hash) if phone_hash else None, birthday, tier,
            _text(segments, "[]"), _text(clubs, "[]"), status, balance, pending,
            _text(lots, "[]"), _text(uses, "{}"), held)  # fmt: skip


def _text(value: Any, empty: str) -> str:
    return _encode(value).decode() if value else empty


def _keep(
    db: Database, path: Path, *, change_id: int, cards: int, lookup_key: bytes, now: datetime
) -> Snapshot:
    """Compress the file into the database's parts, then its row; drop the old ones."""
    with db.write() as tx:
        # A build cut off leaves parts with no row: theirs, and the ids after every row.
        tx.execute(
            "DELETE FROM card_snapshot_parts WHERE snapshot NOT IN (SELECT id FROM card_snapshots)"
        )
        new_id = int(tx.scalar("SELECT COALESCE(MAX(id), 0) FROM card_snapshots")) + 1
    digest = hashlib.sha256()
    size = seq = 0
    pending: list[tuple[int, int, bytes]] = []

    def put(chunk: bytes) -> None:
        nonlocal size, seq
        digest.update(chunk)
        size += len(chunk)
        pending.append((new_id, seq, chunk))
        seq += 1
        if len(pending) >= _PARTS_A_WRITE:
            flush()

    def flush() -> None:
        if pending:
            with db.write() as tx:
                tx.many("INSERT INTO card_snapshot_parts (snapshot, seq, data) VALUES (?,?,?)",
                        pending)  # fmt: skip
            pending.clear()

    packer = zlib.compressobj(6)
    buffer = b""
    with path.open("rb") as f:
        while block := f.read(PART_BYTES):
            buffer += packer.compress(block)
            while len(buffer) >= PART_BYTES:
                put(buffer[:PART_BYTES])
                buffer = buffer[PART_BYTES:]
    buffer += packer.flush()
    while buffer:
        put(buffer[:PART_BYTES])
        buffer = buffer[PART_BYTES:]
    flush()
    snapshot = Snapshot(id=new_id, change_id=change_id, cards=cards, parts=seq, size=size,
                        file_size=path.stat().st_size, sha256=digest.hexdigest(),
                        built_at=ts(now))  # fmt: skip
    with db.write() as tx:
        tx.execute(
            "INSERT INTO card_snapshots (id, change_id, cards, parts, size, file_size, sha256,"
            " key_id, built_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (snapshot.id, snapshot.change_id, snapshot.cards, snapshot.parts, snapshot.size,
             snapshot.file_size, snapshot.sha256, key_id(lookup_key), snapshot.built_at),
        )  # fmt: skip
        old = [r["id"] for r in tx.all("SELECT id FROM card_snapshots ORDER BY id DESC")][KEEP:]
        for gone in old:
            tx.execute("DELETE FROM card_snapshot_parts WHERE snapshot = ?", (gone,))
            tx.execute("DELETE FROM card_snapshots WHERE id = ?", (gone,))
    logger.info(
        "card snapshot %d: %d cards as of change %d, %.1f MiB in %d parts",
        snapshot.id, cards, change_id, size / (1 << 20), seq,
    )  # fmt: skip
    return snapshot


def refresh(
    db: Database,
    *,
    lookup_key: bytes,
    clock: Clock,
    workdir: Path | None = None,
    min_cards: int = MIN_CARDS,
) -> str | None:
    """The ``card snapshot`` job: build one if :func:`due` says so; what it did, or None."""
    why = due(db, clock.now(), min_cards=min_cards)
    if why is None:
        return None
    made = build(db, lookup_key=lookup_key, clock=clock, workdir=workdir)
    return f"snapshot {made.id} of {made.cards} cards built ({why})"
