"""A chain's first import: head office holds no card and no entry yet (:mod:`.cardimport`
sends such an import here when it can read the file again).

No staging table: the rows are written into ``cards`` as they are read (PostgreSQL: the
backend writes them while the next are parsed), each with its opening balance folded in;
then the opening entries and the changes. No join with the ledger, no check for numbers
met twice (the cards' key refuses one; :mod:`.cardimport` then reads the file again the
staged way, which names every such row). On PostgreSQL the ledger's and the feed's keys
and indexes are built once after their rows (:mod:`.bulkload`) when the import can have
those tables to itself, and a file in card order has its opening entries and changes
copied in (:class:`_Kept`). 1M cards in process: 18.3 → 13.4 s on PostgreSQL, 16.3 →
15.7 s on SQLite; then the keys after the rows, SQLite numbering without a window
function, the nine values a row on SQLite, a binary ``COPY`` and the copied entries and
changes: ≈ 7.4 s (PostgreSQL) and ≈ 8.8 s (SQLite) (docs/performance.md, "cards").
"""

from __future__ import annotations

import array
import itertools
import operator
from collections.abc import Iterable, Iterator
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from tillgate.core.cardfile import CardValues, json_list, read_values

from . import bulkload, openings
from .db import COPY_ROWS, Database, Row, Tx
from .ledger import ENTRY_COLUMNS
from .openings import FILE_COLUMNS, FOLDED, LOCK_CARDS, OPENING_NOTE
from .tills import HQ_TILL
from .wire import ts

_BUILT_AFTER = ("entries", "changes")  # the cards' key finds a number met twice as they go
# What a first import writes of a card: the file's columns, and the folded ones.
_CARD_COLUMNS = ("number", "origin", "created_at", "updated_at", *FILE_COLUMNS, *FOLDED)


def import_fresh(
    db: Database, lines: Iterable[str], now: datetime, *, pattern: str, operator: str | None
) -> dict[str, Any] | None:
    """A first import, into a head office with no card and no entry: the rows go straight
    into ``cards`` as they are read (no staging table, no join with the ledger), a card
    with an opening balance written with it, folded as :func:`openings.lone_fold` folds
    such a card; then its opening entries and the cards' changes (copied in from
    :class:`_Kept`, or one statement each from ``cards``). None (and nothing written) if
    head office has a card or an entry already. A number the file has twice raises
    :class:`DuplicateKey` (rolled back)."""
    problems: list[str] = []
    with db.write() as tx:
        openings.tune(tx)
        # PostgreSQL: the ledger and the feed to itself, to build their keys and indexes
        # after the rows (bulkload); no card appears until the commit, as _lock says.
        bare = bulkload.take(tx, _BUILT_AFTER, then=LOCK_CARDS)
        if tx.dialect == "postgresql" and not bare:
            tx.execute(LOCK_CARDS)
        if tx.scalar(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM cards) OR EXISTS (SELECT 1 FROM entries)"
            " OR EXISTS (SELECT 1 FROM changes WHERE kind = 'card')"
        ):
            return None
        # The card folds to the same fields whatever its number and balance: a stand-in.
        lone = openings.lone_fold(tx, now, (0, 0), "", openings.ONE, ["", 1])
        with bulkload.indexes_after(tx, _BUILT_AFTER) if bare else nullcontext():
            kept = _Kept() if tx.dialect == "postgresql" else None
            total, opening = _copy_fresh(tx, lines, now, lone, pattern, problems, kept)
            warnings = openings.refuse_bad(problems)
            if tx.dialect == "postgresql":
                # For the statements below, from a sample of 3,000 rows (not 30,000: 0.02 s,
                # not 0.25-0.45): autovacuum analyzes the million new rows again at its
                # own target once they are committed.
                tx.execute("SET LOCAL default_statistics_target = 10")
                tx.execute("ANALYZE cards")
                tx.execute("SET LOCAL default_statistics_target = DEFAULT")
            if opening:
                first = tx.next_ids("hq_seq", opening), tx.next_ids("entry", opening)
                if kept and kept.whole:
                    kept.credit(tx, now, first)
                else:
                    openings.credit(tx, now, first, openings.CREDITED, [])
            if total and kept and kept.whole:
                kept.feed(tx, now, tx.next_ids("change", total))
            elif total:
                first_change = tx.next_ids("change", total)
                with openings.in_card_order(tx, "SELECT number FROM cards", []) as (
                    numbered,
                    _,
                    order,
                ):
                    tx.execute(
                        "INSERT INTO changes (kind, key, id, at) SELECT 'card', number, ? + k,"
                        f" ? FROM {numbered}{order}",
                        (first_change, ts(now)),
                    )
        # Pushes quarantine entries of unknown cards while the import runs (they write
        # no card): those of the cards it added are released, and folded, now.
        openings.fold_others(
            tx, now, first_pos=0, released=openings.release(tx, now, "cards AS s ON s.number")
        )
        return openings.done(tx, now, total, 0, opening, warnings, operator)


def _copy_fresh(
    tx: Tx,
    lines: Iterable[str],
    now: datetime,
    lone: Row,
    pattern: str,
    problems: list[str],
    kept: _Kept | None,
) -> tuple[int, int]:
    """The good rows of the file into ``cards``, a card with an opening balance with
    ``lone``'s folded fields; the bad ones' problems added to ``problems``. Returns how
    many cards, and how many of them with an opening balance."""
    at, none = ts(now), (None, None, None)
    folded = tuple(lone[c] for c in FOLDED[1:])
    read = read_values(lines, number_pattern=pattern, problems=problems)
    if tx.dialect == "sqlite":
        return _insert_fresh(tx, read, (at, *folded))
    opening = 0

    def rows() -> Iterator[tuple[Any, ...]]:
        nonlocal opening
        keep = kept.add if kept else lambda number, op: None
        for _, number, holder, phone, birthday, tier, seg, clubs, st, op in read:
            keep(number, op)
            if op > 0:
                opening += 1
            yield (
                number,
                "import",
                at,
                at,
                holder,
                phone,
                birthday,
                tier,
                json_list(seg),
                json_list(clubs),
                st,
                op,
                *(folded if op > 0 else none),
            )

    total = tx.copy_in("cards", _CARD_COLUMNS, rows())
    if kept:
        kept.close()
    return total, opening


class _Kept:
    """PostgreSQL: a first import's card numbers and opening balances as the file gives
    them, kept compact (4,096 numbers a string, the balances in an array: ≈ 22 MB at 1M
    cards; :attr:`MOST` cards at most) while the file is in card order (numbers of ASCII
    digits, ascending: as the C and libc collations order them too). ``whole`` then: their
    opening entries and changes are written by ``COPY``, numbered as
    :func:`openings.credit` and the staged import's changes are, instead of selected from
    ``cards`` (PostgreSQL inserts a COPY's rows a page at a time, an ``INSERT … SELECT``'s
    one at a time: 1M cards, the entries 1.6 → 0.9 s, the changes 1.3 → 0.5 s). SQLite
    selects them from ``cards``: inserting them from here measured 1.10× slower."""

    BLOCK = 4096
    MOST = 4_000_000  # cards kept at most (≈ 90 MB): past that, selected from cards as before

    def __init__(self) -> None:
        self.whole = True
        self._blocks: list[str] = []
        self._block: list[str] = []
        self._openings = array.array("q")
        self._last = ""

    def add(self, number: str, opening: int) -> None:
        if not self.whole:
            return
        self._block.append(number)
        self._openings.append(opening)
        if len(self._block) == self.BLOCK:
            self.close()
            if len(self._openings) >= self.MOST:
                self._drop()

    def close(self) -> None:
        block, self._block = self._block, []
        if not block or not self.whole:
            return
        joined = "".join(block)
        if (
            joined.isascii()
            and joined.isdigit()
            and self._last < block[0]
            and all(map(operator.lt, block, block[1:]))
        ):
            self._blocks.append("\n".join(block))
            self._last = block[-1]
            return
        self._drop()

    def _drop(self) -> None:
        self.whole, self._blocks, self._openings = False, [], array.array("q")

    def _cards(self) -> Iterator[tuple[str, int]]:
        numbers = itertools.chain.from_iterable(b.split("\n") for b in self._blocks)
        return zip(numbers, self._openings, strict=True)

    def credit(self, tx: Tx, now: datetime, first: tuple[int, int]) -> None:
        (seq, pos), at, half = first, ts(now), openings.id_half()

        def rows() -> Iterator[tuple[Any, ...]]:
            k = 0
            for number, opening in self._cards():
                if opening > 0:
                    p = pos + k
                    yield (
                        f"{half}{p:016x}",
                        HQ_TILL,
                        seq + k,
                        number,
                        "adjust",
                        opening,
                        OPENING_NOTE,
                        at,
                        at,
                        p,
                        at,
                    )
                    k += 1

        tx.copy_in("entries", _OPENING_COLUMNS, rows())

    def feed(self, tx: Tx, now: datetime, first: int) -> None:
        at = ts(now)
        rows = (("card", number, first + k, at) for k, (number, _) in enumerate(self._cards()))
        tx.copy_in("changes", ("kind", "key", "id", "at"), rows)


# An entry's columns but those an opening balance leaves NULL, then its pos and arrival.
_NULL = ("receipt_id", "refund_id", "ref", "expires_at")
_OPENING_COLUMNS = (*(c for c in ENTRY_COLUMNS if c not in _NULL), "pos", "received_at")


def _insert_fresh(tx: Tx, read: Iterator[CardValues], same: tuple[Any, ...]) -> tuple[int, int]:
    """:func:`_copy_fresh` on SQLite: :data:`COPY_ROWS` cards a statement, each row binding
    the nine values the file gives it (``?5`` on), the others written by the statement
    from the four every row shares (the import's time, the credited cards' folded
    fields). A row's 15 values bound each, as ``Tx.copy_in`` does, cost ≈ 1 s more at 1M
    cards (docs/performance.md, "cards")."""
    total = opening = 0
    batch: list[Any] = list(same)
    full = len(same) + COPY_ROWS * _VALUES
    many = _insert_statement(COPY_ROWS)
    for _, number, holder, phone, birthday, tier, seg, clubs, st, op in read:
        batch += (number, holder, phone, birthday, tier, json_list(seg), json_list(clubs), st, op)
        if op > 0:
            opening += 1
        if len(batch) == full:
            tx.execute(many, batch)
            total, batch = total + COPY_ROWS, list(same)
    left = (len(batch) - len(same)) // _VALUES
    if left:
        tx.execute(_insert_statement(left), batch)
    return total + left, opening


_VALUES = 9  # the values of a row of _insert_fresh's: the number, the file's, the opening


def _insert_statement(n: int) -> str:
    """SQLite: the insert of ``n`` new cards of :func:`_insert_fresh`'s."""
    rows = []
    for i in range(n):
        number, *file, opening = (f"?{5 + _VALUES * i + j}" for j in range(_VALUES))
        credited = (f"CASE WHEN {opening} > 0 THEN ?{k} END" for k in (2, 3, 4))
        rows.append(
            f"({number}, 'import', ?1, ?1, {', '.join(file)}, {opening}, {', '.join(credited)})"
        )
    return f"INSERT INTO cards ({', '.join(_CARD_COLUMNS)}) VALUES {', '.join(rows)}"
