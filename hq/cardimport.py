"""Head office's import of a cards CSV of any size: all rows, or — if any row is bad — none.

The file is read row by row (:func:`tillgate.core.cardfile.read_values`, the tills' own
parser, as plain values) into a temporary table of the import's transaction (PostgreSQL
``COPY``, SQLite batched inserts), so memory does not grow with the file. Everything after
that is one statement per table over the staged rows::

    CSV rows ──COPY──▶ cards_import ──▶ a number twice? refuse (rollback)
                                    ├──▶ cards            locked; UPDATE … FROM the known
                                    │                     ones the file changes, INSERT …
                                    │                     SELECT the new, a lone opening
                                    │                     balance folded in
                                    ├──▶ entries          an opening balance, once per card
                                    ├──▶ quarantine       unknown_card entries now count
                                    ├──▶ cards.balance    the other credited cards folded
                                    └──▶ changes          one per card written, for the
                                                          tills' feed

A card the file names as head office has it, with no opening balance due, is left alone:
not rewritten, not moved in the feed, so tills are not sent it again.

A chain's first import (head office holds no card and no entry) skips the staging table
when the file can be read again (:mod:`.firstimport`). What both ways write alike (the
opening balances, the fold of a card whose only entry is one, the audit) is in
:mod:`.openings`.
"""

from __future__ import annotations

import codecs
import io
import logging
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import datetime
from typing import IO, Any

from tillgate.core.cardfile import KNOWN_COLUMNS, CardValues, json_list, read_values, twice
from tillgate.core.errors import InvalidCards

from . import firstimport, openings
from .db import Database, Row, Tx
from .dberrors import DuplicateKey
from .openings import FILE_COLUMNS, FOLDED, LOCK_CARDS, OPENING_NOTE
from .tills import HQ_TILL
from .wire import ts

logger = logging.getLogger(__name__)


STAGE = "cards_import"
# The staging table's columns: the file's row number, the file's columns, the opening balance.


_COLUMNS = ["row", *(c for c in KNOWN_COLUMNS if c != "balance"), "opening"]


_OPENED = (
    "EXISTS (SELECT 1 FROM entries AS e WHERE e.card = s.number AND e.kind = 'adjust'"
    f" AND e.till = '{HQ_TILL}' AND e.note = ?)"
)
# A staged card whose opening balance will be its only entry (so it folds to that balance).


_ENTRIES = "EXISTS (SELECT 1 FROM entries AS e WHERE e.card = s.number)"


_LONE = f"s.opening > 0 AND NOT {_ENTRIES}"


def import_cards(
    db: Database, lines: Iterable[str], now: datetime, *, pattern: str, operator: str | None
) -> dict[str, Any]:
    """Import or update the cards of a CSV read line by line (``lines``); returns the
    counts and the warnings (unknown columns). Raises :class:`InvalidCards` with every bad
    row, and imports nothing, if any row is bad; a reading error (``OSError``,
    ``UnicodeDecodeError``, ``csv.Error``) comes out as it is, and imports nothing.

    A chain's first import (no card, no entry yet) writes the rows straight into ``cards``
    (:mod:`.firstimport`) when the file can be read again; a number met twice then sends
    the file the staged way, which names every such row."""
    start = lines.tell() if isinstance(lines, io.TextIOBase) and lines.seekable() else None
    if start is not None:
        try:
            done = firstimport.import_fresh(db, lines, now, pattern=pattern, operator=operator)
        except DuplicateKey:
            done = None
        if done is not None:
            return _logged(done)
        lines.seek(start)  # type: ignore[attr-defined]
    problems: list[str] = []
    with db.write() as tx:
        openings.tune(tx)
        _stage(tx, read_values(lines, number_pattern=pattern, problems=problems))
        warnings = openings.refuse_bad(problems + _twice(tx))
        _lock(tx)
        total = int(tx.scalar(f"SELECT COUNT(*) FROM {STAGE}"))
        known = int(tx.scalar(f"SELECT COUNT(*) FROM {STAGE} AS s JOIN cards AS c USING (number)"))
        first, opening, lone = _openings(tx, now)
        _upsert(tx, now, lone, known=known)
        if opening:
            openings.credit(tx, now, first, _STAGED, [OPENING_NOTE])
        released = openings.release(tx, now, f"{STAGE} AS s ON s.number")
        openings.fold_others(tx, now, first_pos=first[1], released=released)
        _changes(tx, total, now, known=known)
        tx.execute(f"DROP TABLE {STAGE}")
        done = openings.done(tx, now, total, known, opening, warnings, operator)
    return _logged(done)


def _logged(done: dict[str, Any]) -> dict[str, Any]:
    """The import's answer (its counts and warnings), once it is committed, and logged."""
    opening = done.pop("opening_balances")
    logger.info(
        "cards imported: %d new, %d updated, %d opening balances",
        done["imported"],
        done["updated"],
        opening,
    )
    return done


async def spool(body: AsyncIterator[bytes]) -> IO[bytes]:
    """An uploaded cards file, kept in an unnamed temporary file (0600, gone when closed)
    as it arrives, and checked to be UTF-8 text on the way: the import then reads it row by
    row. Raises :class:`InvalidCards` naming the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    out = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it, after the import)
    offset = 0
    try:
        async for chunk in body:
            held = len(decoder.getstate()[0])  # an unfinished character from the last chunk
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise _not_utf8(offset - held + exc.start) from exc
            out.write(chunk)
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise _not_utf8(offset - len(decoder.getstate()[0]) + exc.start) from exc
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return out


def _not_utf8(at: int) -> InvalidCards:
    return InvalidCards(
        "the cards file is not UTF-8 text", details={"errors": [f"byte {at}: not UTF-8"]}
    )


def lines_of(file: IO[bytes]) -> IO[str]:
    """A spooled file's text, line by line as the CSV reader wants it."""
    return io.TextIOWrapper(file, encoding="utf-8", newline="")


def _stage(tx: Tx, rows: Iterator[CardValues]) -> None:
    """The good rows, as they are read, into the staging table (then indexed by number)."""
    if tx.dialect == "sqlite":
        tx.execute(f"DROP TABLE IF EXISTS temp.{STAGE}")
        # INTEGER PRIMARY KEY: the row number is the rowid, with no index of its own.
        index, key = f"INDEX temp.{STAGE}_number ON {STAGE}", "INTEGER"
    else:
        index, key = f"INDEX ON {STAGE}", "BIGINT"
    tx.execute(
        f"CREATE TEMP TABLE {STAGE} (row {key} PRIMARY KEY, number TEXT NOT NULL, holder TEXT"
        " NOT NULL, phone TEXT, birthday TEXT, tier TEXT, segments TEXT NOT NULL, clubs TEXT"
        " NOT NULL, status TEXT NOT NULL, opening BIGINT NOT NULL)"
        + (" ON COMMIT DROP" if tx.dialect == "postgresql" else "")
    )
    tx.copy_in(
        STAGE,
        _COLUMNS,
        (
            (n, number, holder, phone, birthday, tier, json_list(seg), json_list(clubs), st, op)
            for n, number, holder, phone, birthday, tier, seg, clubs, st, op in rows
        ),
    )
    tx.execute(f"CREATE {index} (number, row)")
    if tx.dialect == "postgresql":
        tx.execute(f"ANALYZE {STAGE}")  # no autovacuum for a temporary table: plans need it


def _lock(tx: Tx) -> None:
    """PostgreSQL: no other transaction writes a card until the import commits (waiting
    for those under way), so the cards it does not find it can insert without ``ON
    CONFLICT``. Readers are not held up (tills' pulls, the admin's reads); a push waits
    for the import's writes (as it waited, before, for the row of any card the file named),
    and takes no counter before it has its cards: the import's counters cannot deadlock it.
    SQLite: the write transaction already excludes every other writer."""
    if tx.dialect == "postgresql":
        tx.execute(LOCK_CARDS)
        # The tables' statistics as they are now: a big import just before (or cards written
        # by other means) leaves the planner taking the ledger or the feed for a handful of
        # rows until autovacuum gets to them, and it then read the whole ledger (or sorted
        # the whole file) once per staged row: a 60,000-card re-import straight after its
        # import ran for minutes. ≈ 0.1 s each.
        tx.execute("ANALYZE cards, entries, changes")


def _twice(tx: Tx) -> list[str]:
    """A problem for each row whose number an earlier good row has."""
    rows = tx.all(
        f"SELECT s.row, s.number FROM {STAGE} AS s WHERE EXISTS (SELECT 1 FROM {STAGE} AS t"
        " WHERE t.number = s.number AND t.row < s.row) ORDER BY s.row"
    )
    return [twice(int(r["row"]), str(r["number"])) for r in rows]


def _openings(tx: Tx, now: datetime) -> tuple[tuple[int, int], int, Row | None]:
    """An opening balance is credited once per card, however often the file is imported:
    one ``adjust`` of head office's each, numbered in card order as ``hq_entries`` and
    ``insert_entries`` number them. Reserves their ``seq`` and ``pos``; returns the first
    of each, how many, and the folded fields of a card whose only entry is its opening
    balance (None if no card is such), for :func:`_upsert` to write with the card."""
    n = int(tx.scalar(f"SELECT COUNT(*) FROM {STAGE} AS s WHERE {_TODO}", (OPENING_NOTE,)))
    if not n:
        return (0, 0), 0, None
    first = tx.next_ids("hq_seq", n), tx.next_ids("entry", n)
    sample = tx.scalar(f"SELECT s.number FROM {STAGE} AS s WHERE {_LONE} ORDER BY s.number LIMIT 1")
    if sample is None:
        return first, n, None
    only = f"{_STAGED} AND s.number = ?"
    return (
        first,
        n,
        openings.lone_fold(tx, now, first, sample, only, [OPENING_NOTE, sample]),
    )


def _upsert(tx: Tx, now: datetime, lone: Row | None, *, known: int) -> None:
    """The staged cards, new or updated: those whose only entry will be their opening
    balance with that balance and ``lone``'s folded fields, the others with their balance
    left as it is. Each an anti or semi join of the staged rows with the entries (a
    condition per row in the columns would probe the entries once per column)."""
    if lone is None:  # no card's only entry is its opening balance
        _upsert_some(tx, now, "true", folded=None, known=known)
        return
    _upsert_some(tx, now, _LONE, folded=lone, known=known)
    _upsert_some(tx, now, f"(s.opening = 0 OR {_ENTRIES})", folded=None, known=known)


def _upsert_some(tx: Tx, now: datetime, which: str, *, folded: Row | None, known: int) -> None:
    """The staged cards ``which`` selects: the file's columns, and with ``folded`` the
    opening balance and the other folded fields. The ``known`` cards (how many the table
    held) are updated, the others inserted: a plain insert, not ``ON CONFLICT`` (whose
    speculative insertion cost PostgreSQL 1.9 µs more a row); the table's lock
    (:func:`_lock`) keeps a new card from appearing in between."""
    columns = FILE_COLUMNS + (FOLDED if folded else ())
    values = [f"s.{c}" for c in FILE_COLUMNS]
    args: list[Any] = []
    if folded:
        values += ["s.opening", "CAST(? AS TEXT)", "CAST(? AS TEXT)", "CAST(? AS TEXT)"]
        args += [folded["next_expiry"], folded["balance_until"], folded["negative_since"]]
    if known:
        # Only the cards the file changes (or credits), so a card the file names as it was
        # keeps its place in the change feed (:func:`_changes`): tills are not sent it again.
        same = "IS NOT DISTINCT FROM" if tx.dialect == "postgresql" else "IS"
        tx.execute(
            "UPDATE cards SET updated_at = ?, "
            + ", ".join(f"{c} = {v}" for c, v in zip(columns, values, strict=True))
            + f" FROM {STAGE} AS s WHERE cards.number = s.number AND {which} AND NOT ("
            + " AND ".join(f"cards.{c} {same} s.{c}" for c in FILE_COLUMNS)
            + f" AND NOT (s.opening > 0 AND NOT {_OPENED}))",
            [ts(now), *args, OPENING_NOTE],
        )
        which += " AND NOT EXISTS (SELECT 1 FROM cards AS c WHERE c.number = s.number)"
    tx.execute(
        f"INSERT INTO cards (number, origin, created_at, updated_at, {', '.join(columns)})"
        f" SELECT s.number, 'import', ?, ?, {', '.join(values)}"
        f" FROM {STAGE} AS s WHERE {which} ORDER BY s.number",
        [ts(now), ts(now), *args],
    )


_TODO = f"s.opening > 0 AND NOT {_OPENED}"


_STAGED = f"SELECT s.number, s.opening FROM {STAGE} AS s WHERE {_TODO}"


def _changes(tx: Tx, n: int, now: datetime, *, known: int) -> None:
    """Move every card the import wrote (the new ones, and the ``known`` ones it changed:
    their ``updated_at`` is the import's) to the head of the change feed, in card order.
    PostgreSQL: the rows the feed holds updated, the others inserted, with no ``ON
    CONFLICT`` (see :func:`_upsert_some`): every writer of the feed takes the ``change``
    counter first and holds it to its commit, as :meth:`~tillgate.hq.db.Tx.next_ids` does
    here, so no card's row appears between the two statements. SQLite: one upsert."""
    if not n:
        return
    first = tx.next_ids("change", n)
    written, source_args = "", []
    if known:
        written = " JOIN cards AS c ON c.number = s.number AND c.updated_at = ?"
        source_args.append(ts(now))
    source = f"SELECT s.number FROM {STAGE} AS s{written}"
    with openings.in_card_order(tx, source, source_args) as (numbered, numbered_args, order):
        args = [first, ts(now), *numbered_args]
        if tx.dialect == "sqlite":
            tx.execute(
                f"INSERT INTO changes (kind, key, id, at) SELECT 'card', o.number, ? + o.k, ?"
                f" FROM {numbered} WHERE true ON CONFLICT (kind, key) DO UPDATE SET"
                " id = excluded.id, at = excluded.at",
                args,
            )
            return
        tx.execute(
            f"UPDATE changes SET id = ? + o.k, at = ? FROM {numbered}"
            " WHERE changes.kind = 'card' AND changes.key = o.number",
            args,
        )
        tx.execute(
            f"INSERT INTO changes (kind, key, id, at) SELECT 'card', o.number, ? + o.k, ? FROM"
            f" {numbered} WHERE NOT EXISTS (SELECT 1 FROM changes AS c WHERE c.kind = 'card'"
            f" AND c.key = o.number){order}",
            args,
        )
