"""One SQLite file per till: connection, pragmas, migrations and write transactions.

WAL lets the POS API read while a write is in progress; writes are serialized by one
process-wide lock per file and ``BEGIN IMMEDIATE`` (so a write never upgrades a read lock
and deadlocks). The lock is the process's, not the connection's: the sync has a
connection of its own, and a write that met another connection's at SQLite's level would
wait in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20 … ms between tries (a
calculate that came during a push's write took 50 ms). ``synchronous=FULL`` makes a
committed confirm durable before the API answers. Every transaction either commits whole
or rolls back whole, so a crash at any instant leaves a consistent file.

A calculate's transaction does not wait for the disk (``write(durable=False)``): what it
writes is the open receipt's working state, which a power cut may take back (the POS
then calculates again; docs/architecture.md, "Durability and crashes"). The WAL is
written in order, so the next durable commit — a confirm, a cancel, the sync's read of
what it sends — puts every earlier transaction on the disk with its own.

The WAL stays bounded (issue 15): ``journal_size_limit`` cuts the file back to 64 MiB
each time a checkpoint lets it start over, and the checkpoints themselves run off the POS
path: the agent calls :meth:`Database.checkpoint` every 2 seconds from its scheduler, on a
connection of its own that takes neither lock, so it copies the WAL into the file while
the POS writes. SQLite's own checkpoint, which would run inside whichever commit crossed
its threshold (a POS request's), is kept only as a backstop at 8,000 pages (32 MiB).

The file holds the holders' personal data: it is made 0600 in a 0700 folder before SQLite
first opens it, so the ``-wal`` and ``-shm`` files SQLite makes with its mode are private
too (:mod:`tillgate.core.files`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tillgate.core.errors import StorageFullError, StoreError
from tillgate.core.files import private_dir, private_file

from .schema import MIGRATIONS, build_late_indexes, missing_late_indexes

logger = logging.getLogger(__name__)

_WRITERS: dict[str, threading.RLock] = {}  # the write lock of each file, by its real path
_WRITERS_LOCK = threading.Lock()


def _writers_of(path: Path) -> threading.RLock:
    with _WRITERS_LOCK:
        return _WRITERS.setdefault(os.path.realpath(path), threading.RLock())


WAL_LIMIT_BYTES = 64 * 1024 * 1024  # journal_size_limit
AUTOCHECKPOINT_PAGES = 8000  # the backstop; the scheduler checkpoints long before

_FULL_CODES = {sqlite3.SQLITE_FULL} if hasattr(sqlite3, "SQLITE_FULL") else {13}


def _translate(exc: sqlite3.Error, what: str) -> StoreError:
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc).lower()
    if code in _FULL_CODES or "database or disk is full" in text or "disk full" in text:
        return StorageFullError(f"{what}: the disk is full; nothing was written ({exc})")
    return StoreError(f"{what}: {exc}")


class Database:
    """The till's SQLite file. Thread-safe: one connection, guarded by one lock."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()  # this connection's
        self._writers = _writers_of(self.path)  # the file's, across the process
        self._depth = 0
        self._readonly = readonly
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        try:
            if not readonly:
                private_dir(self.path.parent)
                private_file(self.path)
            uri = f"file:{self.path}?mode=ro" if readonly else str(self.path)
            self._conn = sqlite3.connect(
                uri, uri=readonly, isolation_level=None, check_same_thread=False, timeout=10.0
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the data file {self.path}: {exc}") from exc
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA busy_timeout = 10000")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    logger.warning("SQLite refused WAL mode (%s); continuing with %s", mode, mode)
                self._conn.execute("PRAGMA synchronous = FULL")
                self._conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
                self._conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
                self._migrate()
                self._late_indexes()
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(
                f"{self.path} is not a usable tillgate data file ({exc}); "
                "restore it from a backup or move it aside"
            ) from exc

    # ------------------------------------------------------------ schema

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this tillgate "
                f"understands ({len(MIGRATIONS)}); upgrade tillgate"
            )
        for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
            try:
                with self.write():
                    if callable(script):
                        script(self._conn)
                    else:
                        for statement in _statements(script):
                            self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {version}")
            except (ValueError, KeyError, TypeError) as exc:
                # A migration function met a row it cannot read: its transaction rolled
                # back, so the file is whole at the version before it.
                raise StoreError(
                    f"cannot upgrade the data file {self.path} to schema version {version}: "
                    f"{exc}; it is left unchanged at version {version - 1}: restore it from "
                    "a backup or move it aside"
                ) from exc
            logger.info("data file migrated to schema version %d", version)

    def _late_indexes(self) -> None:
        """Build the indexes a pull of every card goes without, if a till killed in one
        left the file without them (schema.LATE_INDEXES): the till looks phones up with
        them at once; the pull, when it goes on, drops them again."""
        if not missing_late_indexes(self._conn):
            return
        with self.write():
            built = build_late_indexes(self._conn)
        if built:
            logger.warning(
                "index %s built again: a pull of every card from head office was cut off",
                ", ".join(built),
            )

    # ------------------------------------------------------------ transactions

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``); nested calls join the outer one.

        ``durable`` False: the commit does not wait for the disk (``synchronous=NORMAL``
        for this transaction; see the module's docstring).
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            with self._writers:
                if durable:
                    yield from self._transaction()
                    return
                self._conn.execute("PRAGMA synchronous = NORMAL")  # not allowed inside one
                try:
                    yield from self._transaction()
                finally:
                    self._conn.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def attached(self, path: Path, name: str) -> Iterator[None]:
        """Another SQLite file attached to this connection as ``name`` while the block runs
        (its transactions may read it); not inside a transaction (SQLite refuses)."""
        with self._lock:
            if self._depth:
                raise StoreError(f"cannot attach {path} inside a transaction")
            try:
                self._conn.execute(f"ATTACH DATABASE ? AS {name}", (str(path),))
            except sqlite3.Error as exc:
                raise _translate(exc, f"cannot open {path}") from exc
            try:
                yield
            finally:
                with suppress(sqlite3.Error):
                    self._conn.execute(f"DETACH DATABASE {name}")

    def idle(self) -> bool:
        """Whether no thread is writing to the file at this moment (a hint, not a promise:
        another may start the next instant, and a write then waits as any write does)."""
        if not self._writers.acquire(blocking=False):
            return False
        self._writers.release()
        return True

    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT (or ROLLBACK), under the lock the caller holds."""
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _translate(exc, "cannot start a write") from exc
        self._depth = 1
        try:
            yield self._conn
        except BaseException as exc:
            self._depth = 0
            with suppress(sqlite3.Error):  # SQLite may have rolled back already
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise _translate(exc, "write failed") from exc
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._depth = 0
            with suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
            raise _translate(exc, "cannot commit") from exc
        finally:
            self._depth = 0

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read (a deferred transaction, so several SELECTs see one state)."""
        with self._lock:
            if self._depth:
                yield self._conn
                return
            self._conn.execute("BEGIN")
            self._depth = 1
            try:
                yield self._conn
            finally:
                self._depth = 0
                self._conn.execute("COMMIT")

    def checkpoint(self, *, truncate: bool = False) -> tuple[int, int]:
        """Copy the WAL into the file (PASSIVE: waits for no one, the POS keeps writing);
        returns the WAL's frames and how many of them are in the file now.

        ``truncate``: wait for the writers and readers and cut the WAL to nothing (for
        after a bulk write, such as retention's; it holds the POS up while it runs).
        """
        if self._readonly:
            return (0, 0)
        with self._checkpoint_lock:
            try:
                if self._checkpointer is None:
                    self._checkpointer = sqlite3.connect(
                        str(self.path), isolation_level=None, check_same_thread=False
                    )
                    self._checkpointer.execute("PRAGMA busy_timeout = 10000")
                    self._checkpointer.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
                mode = "TRUNCATE" if truncate else "PASSIVE"
                if truncate:
                    with self._writers:  # a POS write waits for it, not the other way
                        row = self._checkpointer.execute(
                            f"PRAGMA wal_checkpoint({mode})"
                        ).fetchone()
                else:
                    row = self._checkpointer.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc, "checkpoint failed") from exc
        return int(row[1]), int(row[2])

    def integrity_check(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        with self._lock:
            with suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()


def _statements(script: str) -> Iterator[str]:
    # executescript() would COMMIT our transaction; run statements one by one instead.
    buf: list[str] = []
    for line in script.splitlines():
        buf.append(line)
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            if joined.strip():
                yield joined
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        yield rest
