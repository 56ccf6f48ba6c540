"""What both ways of importing cards write alike (:mod:`.cardimport`, the staged way, and
:mod:`.firstimport`, a chain's first import): the opening balances (one ``adjust`` of
head office's a card, numbered in card order), the fold of a card whose only entry is its
opening balance, the release of the entries waiting for the imported cards, the audit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from tillgate.core.errors import InvalidCards

from . import audit, quarantine
from .db import Row, Tx
from .ledger import chunks, refresh_cards
from .tills import HQ_TILL
from .wire import ts

OPENING_NOTE = "opening balance"
# No other transaction writes a card until the import commits (see cardimport._lock).
LOCK_CARDS = "LOCK TABLE cards IN SHARE ROW EXCLUSIVE MODE"
FILE_COLUMNS = ("holder", "phone", "birthday", "tier", "segments", "clubs", "status")
FOLDED = ("balance", "next_expiry", "balance_until", "negative_since")
# Where a first import's opening balances come from, and a stand-in card's.
CREDITED = "SELECT number, balance AS opening FROM cards WHERE balance > 0"
ONE = "SELECT CAST(? AS TEXT) AS number, CAST(? AS BIGINT) AS opening"


def tune(tx: Tx) -> None:
    if tx.dialect == "postgresql":
        # The sorts of a million rows in memory; no JIT compiling (0.5 s a statement
        # once a million rows cost it in, for plans whose time is spent writing rows).
        tx.execute("SET LOCAL work_mem = '64MB'")
        tx.execute("SET LOCAL jit = off")


def refuse_bad(problems: list[str]) -> list[str]:
    """The warnings among the problems (an unknown column is ignored with one); raises
    :class:`InvalidCards` with the others, which refuse the file, in row order."""
    warnings = [p for p in problems if p.startswith("header: unknown column")]
    errors = [p for p in problems if p not in warnings]
    if errors:
        raise InvalidCards(
            f"{len(errors)} bad rows in the cards file; nothing was imported",
            details={"errors": sorted(errors, key=_row_order)},
        )
    return warnings


def release(tx: Tx, now: datetime, imported: str) -> list[str]:
    """Entries quarantined because head office did not know the card: released now that
    it does (``imported``: the join with the imported numbers)."""
    waiting = tx.all(
        f"SELECT DISTINCT q.card FROM quarantine AS q JOIN {imported} = q.card"
        f" WHERE q.code = 'unknown_card' AND q.status = '{quarantine.OPEN}' ORDER BY q.card"
    )
    return quarantine.release_known(
        tx, [r["card"] for r in waiting], now, till=None, why="head office imported the card"
    )


def done(
    tx: Tx,
    now: datetime,
    total: int,
    known: int,
    opening: int,
    warnings: list[str],
    operator: str | None,
) -> dict[str, Any]:
    counts = {"imported": total - known, "updated": known}
    audit.write(
        tx,
        action="cards.import",
        subject="cards",
        detail=counts | {"opening_balances": opening},
        reason="",
        operator=operator,
        now=now,
        after=counts,
    )
    return counts | {"opening_balances": opening, "warnings": warnings}


def lone_fold(
    tx: Tx, now: datetime, first: tuple[int, int], sample: str, source: str, args: list[Any]
) -> Row:
    """What ``refresh_cards`` folds a card whose only entry is its opening balance to:
    the same for every such card but its balance. Folded for card ``sample`` (credited as
    ``source`` says) in a savepoint, rolled back: the fold's own code, on the rows as the
    import writes them."""
    tx.execute("SAVEPOINT lone_fold")
    try:
        tx.execute(
            "INSERT INTO cards (number, origin, created_at, updated_at) VALUES (?, 'import', ?, ?)"
            " ON CONFLICT (number) DO NOTHING",
            (sample, ts(now), ts(now)),
        )
        credit(tx, now, first, source, args)
        refresh_cards(tx, [sample], now)
        folded = tx.one(
            "SELECT next_expiry, balance_until, negative_since FROM cards WHERE number = ?",
            (sample,),
        )
    finally:
        tx.execute("ROLLBACK TO SAVEPOINT lone_fold")
    tx.execute("RELEASE SAVEPOINT lone_fold")
    assert folded is not None
    return folded


def id_half() -> str:
    """An opening entry's id is this half, drawn once per import, then the entry's pos in
    16 hex digits. Unique as pos is, and ascending, so the id index takes the import's
    entries at one place, not at a random page each (a uuid4's second half starts 8-b,
    never 0 as these do)."""
    return uuid.uuid4().hex[:16]


def credit(tx: Tx, now: datetime, first: tuple[int, int], source: str, args: list[Any]) -> None:
    """The opening balances of ``source`` (its ``args``), numbered from ``first`` (``seq``,
    ``pos``) in card order."""
    seq, pos = first
    half = id_half()
    new_id = (
        "printf('%s%016x', ?, ? + k)"
        if tx.dialect == "sqlite"
        else "? || lpad(to_hex(? + k), 16, '0')"
    )
    with in_card_order(tx, source, args) as (numbered, numbered_args, order):
        tx.execute(
            "INSERT INTO entries (id, till, seq, card, kind, points, receipt_id, refund_id,"
            " ref, note, created_at, available_from, expires_at, pos, received_at, quarantine)"
            f" SELECT {new_id}, '{HQ_TILL}', ? + k, number, 'adjust', opening, NULL, NULL,"
            f" NULL, ?, ?, ?, NULL, ? + k, ?, NULL FROM {numbered}{order}",
            (half, pos, seq, OPENING_NOTE, ts(now), ts(now), pos, ts(now), *numbered_args),
        )


@contextmanager
def in_card_order(tx: Tx, source: str, args: Sequence[Any]) -> Iterator[tuple[str, list[Any], str]]:
    """The rows of ``source`` (its ``args``; a ``number`` column, and others) numbered in
    card order, ``k`` = 0, 1, …: a FROM item (``o``), the arguments it takes, and the
    ORDER BY that reads its rows in that order. PostgreSQL: ``row_number()``. SQLite:
    the rowids of a temporary table written in card order (a window's ``row_number()``
    over a million rows costs SQLite ≈ 0.7 s more, measured, docs/performance.md)."""
    if tx.dialect == "postgresql":
        numbered = (
            f"(SELECT o.*, row_number() OVER (ORDER BY o.number) - 1 AS k FROM ({source})"
            " AS o) AS o"
        )
        yield numbered, list(args), " ORDER BY o.number"
        return
    tx.execute(
        f"CREATE TEMP TABLE card_order AS SELECT o.* FROM ({source}) AS o ORDER BY o.number",
        args,
    )
    yield "(SELECT o.*, rowid - 1 AS k FROM temp.card_order AS o) AS o", [], ""
    tx.execute("DROP TABLE temp.card_order")  # a failure rolls it back with the rest


def fold_others(tx: Tx, now: datetime, *, first_pos: int, released: list[str]) -> None:
    """Fold again, whole, every card the import credited that has other entries than its
    opening balance (quarantined ones too, so every card the import released): the cards
    whose only entry it is were written folded (``cardimport._upsert``,
    ``firstimport._copy_fresh``)."""
    whole = set(released)
    if first_pos:
        credited = tx.all(
            f"SELECT e.card FROM entries AS e WHERE e.pos >= {int(first_pos)} AND EXISTS"
            f" (SELECT 1 FROM entries AS o WHERE o.card = e.card AND o.pos < {int(first_pos)})"
        )
        whole |= {r["card"] for r in credited}
    for part in chunks(sorted(whole), 1000):
        refresh_cards(tx, part, now)


def _row_order(problem: str) -> int:
    head = problem.split(":", 1)[0]
    return int(head[4:]) if head.startswith("row ") else 0
