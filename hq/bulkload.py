"""A bulk load into tables of head office's that are empty: their keys and indexes built
once, after the rows, instead of kept row by row as the rows go in (PostgreSQL).

Kept row by row, 667k opening entries cost PostgreSQL ≈ 5 WAL records a row (the row and
its four index entries, 400 MB) and 5.5 s; written bare, then each index built by one
sort, 3.3 s; 1M changes 3.1 → 1.8 s (docs/performance.md, "cards"). ``pg_restore`` loads
a dump the same way.

Dropping an index takes its table for the transaction (``ACCESS EXCLUSIVE``: no reader
either), so :func:`take` asks for the tables first, before anything else of the
transaction, and waits for them at most :data:`WAIT`. A transaction that holds one of
them (a till's pull reading the feed, a push) and would wait for another one of them
cannot then deadlock with the load: the load gives up its locks, the other goes on, and
the load runs with the indexes kept, as before; so it does when head office's role does
not own the tables (only an owner may drop a key). Everything is in the transaction: a load
that fails leaves the keys and indexes as they were. SQLite gains nothing from it
(an index it keeps in key order costs it no more than building it after, measured) and
keeps its indexes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .db import Tx
from .dberrors import LockBusy

WAIT = "100ms"  # shorter than PostgreSQL's deadlock_timeout (1 s)

_CONSTRAINTS = (
    "SELECT c.conrelid::regclass::text AS tbl, c.conname AS name,"
    " pg_get_constraintdef(c.oid) AS def FROM pg_constraint AS c"
    " WHERE c.conrelid IN (SELECT to_regclass(t) FROM unnest(?::text[]) AS t)"
    " AND c.contype IN ('p', 'u') ORDER BY c.conrelid, c.conname"
)
# The other indexes (those of the constraints above go and come with them).
_INDEXES = (
    "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def"
    " FROM pg_index AS i WHERE i.indrelid IN (SELECT to_regclass(t) FROM unnest(?::text[]) AS t)"
    " AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)"
    " ORDER BY i.indrelid, i.indexrelid"
)


# Only a table's owner may drop and build its keys: head office run by another role (its
# tables' rights granted to it) keeps the indexes.
_OWNED = (
    "SELECT bool_and(pg_has_role(c.relowner, 'USAGE')) FROM pg_class AS c"
    " WHERE c.oid IN (SELECT to_regclass(t) FROM unnest(?::text[]) AS t)"
)


def take(tx: Tx, tables: Sequence[str], *, then: str) -> bool:
    """PostgreSQL, as the transaction's first statements: take ``tables`` for the
    transaction, then the lock statement ``then``, each waited for at most :data:`WAIT`.
    True if taken; False, holding none of them, if another transaction holds one or
    head office's role does not own them all (the caller then takes ``then`` as it
    would have, and keeps the indexes). SQLite: False."""
    if tx.dialect != "postgresql" or not tx.scalar(_OWNED, [list(tables)]):
        return False
    tx.execute("SAVEPOINT bulk_load")
    try:
        tx.execute(f"SET LOCAL lock_timeout = '{WAIT}'")
        tx.execute(f"LOCK TABLE {', '.join(tables)} IN ACCESS EXCLUSIVE MODE")
        tx.execute(then)
    except LockBusy:
        tx.execute("ROLLBACK TO SAVEPOINT bulk_load")  # the locks, and the timeout, go
        tx.execute("RELEASE SAVEPOINT bulk_load")
        return False
    tx.execute("RELEASE SAVEPOINT bulk_load")
    tx.execute("SET LOCAL lock_timeout = DEFAULT")
    return True


@contextmanager
def indexes_after(tx: Tx, tables: Sequence[str]) -> Iterator[None]:
    """PostgreSQL: the tables' unique constraints (primary keys included) and indexes
    dropped for the block and built again, as they were, after it; the tables must be
    held (:func:`take`). An exception in the block leaves them dropped: the transaction
    is then rolled back, and they with it."""
    names = [list(tables)]
    constraints = tx.all(_CONSTRAINTS, names)
    indexes = tx.all(_INDEXES, names)
    for c in constraints:
        tx.execute(f"ALTER TABLE {c['tbl']} DROP CONSTRAINT {c['name']}")
    for i in indexes:
        tx.execute(f"DROP INDEX {i['name']}")
    yield
    # Each built by one sort of its rows, in memory, by parallel workers where the
    # planner sees a gain.
    tx.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for c in constraints:
        tx.execute(f"ALTER TABLE {c['tbl']} ADD CONSTRAINT {c['name']} {c['def']}")
    for i in indexes:
        tx.execute(i["def"])
