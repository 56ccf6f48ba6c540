"""Head office's database: one small interface over SQLite and PostgreSQL.

A single shop or a small chain runs HQ on a SQLite file; a chain runs it on PostgreSQL
(``--db postgresql://…``). Both run the same SQL and the same migrations
(:mod:`tillgate.hq.schema`): statements are written with ``?`` placeholders and portable
types (TEXT, BIGINT, ISO-8601 UTC text for instants), and this module turns ``?`` into
psycopg's ``%s``.

Transactions, and why they are safe on both:

* **SQLite**: one connection behind a lock, WAL journal, every write ``BEGIN IMMEDIATE``,
  so writers are serialized whole (several HQ processes on one file wait on the busy
  timeout). A read is a deferred transaction: one consistent snapshot.
* **PostgreSQL**: a small pool of autocommit connections; a write is ``BEGIN`` (READ
  COMMITTED) and serializes what must be serialized with row locks (``SELECT … FOR
  UPDATE`` on a till's row, on the cards it touches, and on the counter rows of
  :meth:`Tx.next_ids`); a read is ``REPEATABLE READ READ ONLY``, one snapshot for a whole
  feed page.

Foreign exceptions (``sqlite3.Error``, ``psycopg.Error``) become
:class:`~tillgate.core.errors.StoreError` here and nowhere else.
"""

from __future__ import annotations

import logging
import queue
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from tillgate.core.errors import ConfigError, StoreError
from tillgate.core.files import DIR_MODE, private_file
from tillgate.hq import dbrows
from tillgate.hq.dberrors import first_line, translate
from tillgate.hq.walcheckpoint import Checkpointer

if TYPE_CHECKING:
    import psycopg

logger = logging.getLogger(__name__)

Row = dict[str, Any]
Dialect = Literal["sqlite", "postgresql"]
DEFAULT_SQLITE_NAME = "hq.sqlite3"
# Parameters of one :meth:`Tx.values` statement: under SQLite's 32,766 and PostgreSQL's 65,535.
VALUES_PARAMS = 30_000
COPY_ROWS = 200  # rows per statement of Tx.copy_in on SQLite (200 x 15 columns: 3,000 of 32,766)


def _of_width(rows: Iterable[Sequence[Any]], width: int) -> Iterator[Sequence[Any]]:
    """``rows``, each checked to hold ``width`` values: one that does not is a ValueError
    (a multi-row statement would take its values for the next row's)."""
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for {width} columns")
        yield row


def marks(n: int) -> str:
    """``?, ?, ?`` for an ``IN (…)`` list of ``n`` values."""
    return ", ".join("?" * n)


_pg_sql = dbrows.pg_sql  # ``?`` as psycopg's placeholders (hq/dbrows.py)


def _sqlite_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


class Pending:
    """The rows of a statement :meth:`Tx.ahead` queued; reading them sends it if not yet."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx
        self.rows: list[Row] | None = None  # once read
        self.cursor: Any = None  # PostgreSQL: set when the statement was sent

    def all(self) -> list[Row]:
        if self.rows is None:
            if self.cursor is None:
                self._tx.flush()
            try:
                self.rows = [dict(r) for r in self.cursor.fetchall()]
            except Exception as exc:
                raise translate(exc, "database statement failed") from exc
        return self.rows

    def one(self) -> Row | None:
        rows = self.all()
        return rows[0] if rows else None

    def scalar(self) -> Any:
        row = self.one()
        return None if row is None else next(iter(row.values()))


class Tx:
    """One open transaction. Rows are dicts; SQL uses ``?`` placeholders on both dialects."""

    def __init__(self, dialect: Dialect, conn: Any, begin: Sequence[str] = ()) -> None:
        self.dialect: Dialect = dialect
        self._conn = conn
        # PostgreSQL: statements not sent yet (the BEGIN, then any :meth:`later` or
        # :meth:`ahead`). They go in the round trip of the next statement or of COMMIT
        # (psycopg's pipeline mode: sent together, answered together, run one after the
        # other as if sent one by one); a transaction that runs nothing sends nothing.
        self._queue: list[tuple[str, tuple[Any, ...], Pending | None]] = [
            (b, (), None) for b in begin
        ]
        self.sent = False  # something went to the server: ROLLBACK on failure
        self.wrote = False  # a statement beyond BEGIN ran or waits: COMMIT at the end

    def ahead(self, sql: str, params: Sequence[Any] | None = None) -> Pending:
        """Queue a statement whose rows are read later: on PostgreSQL it goes in one round
        trip with the others queued and whatever is sent next. Only for a statement whose
        parameters do not hang on another's rows. On SQLite, at once."""
        pending = Pending(self)
        if self.dialect == "sqlite":
            # Read whole now: a later write in this transaction must not change them.
            pending.rows = [dict(r) for r in self._run(sql, params).fetchall()]
            return pending
        self._queue.append((_pg_sql(sql), tuple(params or ()), pending))
        self.wrote = True
        return pending

    def flush(self) -> None:
        """PostgreSQL: send what waits, in one round trip (nothing more)."""
        if self.dialect == "sqlite" or not self._queue:
            return
        try:
            self._send(None, ())
        except Exception as exc:
            raise translate(exc, "database statement failed") from exc

    def later(self, sql: str, params: Sequence[Any] | None = None) -> None:
        """Run a statement whose result (row count) nobody reads. On PostgreSQL it waits
        for whatever is sent next (the next statement, or COMMIT) and goes in its round
        trip; an error in it is that one's error. On SQLite, at once."""
        if self.dialect == "sqlite":
            self._run(sql, params)
            return
        self._queue.append((_pg_sql(sql), tuple(params or ()), None))
        self.wrote = True

    def commit(self) -> None:
        """PostgreSQL: COMMIT, with what waits in the same round trip."""
        try:
            self._send("COMMIT", ())
        except Exception as exc:
            raise translate(exc, "cannot commit") from exc

    def _send(self, sql: str | None, params: tuple[Any, ...]) -> Any:
        """PostgreSQL: ``sql`` (if any) after what waits, in one round trip; its cursor."""
        queued, self._queue = self._queue, []
        self.sent = True
        if not queued:
            return self._conn.execute(sql, params) if sql is not None else None
        cursor = None
        with self._conn.pipeline():
            for statement, args, pending in queued:
                sent = self._conn.execute(statement, args)
                if pending is not None:
                    pending.cursor = sent
            if sql is not None:
                cursor = self._conn.execute(sql, params)
        return cursor

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        try:
            if self.dialect == "sqlite":
                return self._conn.execute(sql, tuple(params or ()))
            self.wrote = True
            # psycopg prepares a statement on the server once it has run a few times on a
            # connection (``prepare_threshold``): no parse and plan per call after that.
            return self._send(_pg_sql(sql), tuple(params or ()))
        except Exception as exc:
            raise translate(exc, "database statement failed") from exc

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> int:
        """Run one statement; returns the number of rows it changed."""
        return int(self._run(sql, params).rowcount)

    def one(self, sql: str, params: Sequence[Any] | None = None) -> Row | None:
        row = self._run(sql, params).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Sequence[Any] | None = None) -> list[Row]:
        return [dict(r) for r in self._run(sql, params).fetchall()]

    def tuples(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return dbrows.tuples(self, self._conn, sql, params)  # :meth:`all`'s, as tuples

    def scalar(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        row = self._run(sql, params).fetchone()
        if row is None:
            return None
        return next(iter(dict(row).values()))

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (bulk inserts)."""
        data = [tuple(r) for r in rows]
        if not data:
            return
        try:
            if self.dialect == "sqlite":
                self._conn.executemany(sql, data)
            else:
                self.wrote = self.sent = True
                self.flush()  # what waits goes first
                with self._conn.cursor() as cur:
                    cur.executemany(_pg_sql(sql), data)
        except Exception as exc:
            raise translate(exc, "database statement failed") from exc

    def values(self, sql: str, rows: Iterable[Sequence[Any]], types: Sequence[str]) -> None:
        """Run ``sql`` with its ``VALUES ?`` standing for all ``rows``: one statement and one
        round trip for the lot, where :meth:`many` runs a statement per row.

        For set-based writes: ``INSERT … VALUES ? ON CONFLICT …``, ``UPDATE t SET … FROM
        (VALUES ?) AS v WHERE …`` (its columns are ``v.column1``, ``v.column2``, … on both
        dialects). Rows go in the order given, so sorted keys lock in sorted order; they
        must not update one row twice. ``types``: each column's PostgreSQL type.

        SQLite runs multi-row ``VALUES`` lists (up to :data:`VALUES_PARAMS` parameters a
        statement); PostgreSQL gets one array per column, ``unnest``-ed: a parameter per
        column, not per value, which psycopg's query parsing would pay for per value.
        """
        data = [tuple(r) for r in rows]
        if not data:
            return
        width = len(types)
        if self.dialect == "postgresql":
            # Arrays go in binary (%b): text arrays would escape every value, in Python.
            arrays = ", ".join(f"%b::{t}[]" for t in types)
            names = ", ".join(f"column{i + 1}" for i in range(width))
            table = f"SELECT * FROM unnest({arrays}) AS u({names})"
            text = _pg_sql(sql)
            text = text.replace("(VALUES %s)", f"({table})", 1).replace("VALUES %s", table, 1)
            self.wrote = True
            try:
                self._send(text, tuple(list(col) for col in zip(*data, strict=True)))
            except Exception as exc:
                raise translate(exc, "database statement failed") from exc
            return
        one = f"({marks(width)})"
        size = max(1, VALUES_PARAMS // width)
        for i in range(0, len(data), size):
            part = data[i : i + size]
            self._run(
                sql.replace("VALUES ?", "VALUES " + ", ".join([one] * len(part)), 1),
                [v for r in part for v in r],
            )

    def copy_in(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """Load rows into a table as they come (PostgreSQL ``COPY … FROM STDIN``; SQLite:
        batches of inserts); returns how many. Memory does not grow with the rows."""
        count, rows = 0, _of_width(rows, len(columns))
        if self.dialect == "sqlite":
            # COPY_ROWS rows a statement (one step, not one a row: 1M cards' 15 columns
            # 4.9 → 3.5 s), the last few one a row.
            width = len(columns)
            n = max(1, min(COPY_ROWS, VALUES_PARAMS // width))
            one = f"({marks(width)})"
            head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            many = head + ", ".join([one] * n)
            try:
                batch: list[Any] = []
                for row in rows:
                    batch += row
                    if len(batch) >= n * width:
                        self._conn.execute(many, batch)
                        count, batch = count + n, []
                left = [batch[i : i + width] for i in range(0, len(batch), width)]
                self._conn.executemany(head + one, left)
                return count + len(left)
            except sqlite3.Error as exc:
                raise translate(exc, "database statement failed") from exc
        import psycopg

        self.wrote = self.sent = True
        self.flush()  # what waits goes first
        types = dbrows.column_types(self, table, columns)  # a binary COPY
        try:
            with (
                self._conn.cursor() as cur,
                # A thread of psycopg's sends the data while this one formats the next
                # rows (it waits on the socket with the interpreter released).
                cur.copy(
                    f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)",
                    writer=psycopg.copy.QueuedLibpqWriter(cur),
                ) as copy,
            ):
                copy.set_types(types)
                for row in rows:  # an error reading them aborts the COPY, and is raised
                    copy.write_row(row)
                    count += 1
        except psycopg.Error as exc:
            raise translate(exc, "database statement failed") from exc
        return count

    def lock_rows(self, table: str, column: str, keys: Sequence[str]) -> None:
        """Lock rows against concurrent writers until commit (PostgreSQL ``FOR UPDATE``).

        Keys are locked in sorted order so two transactions never wait on each other in a
        cycle. SQLite needs nothing: ``BEGIN IMMEDIATE`` already serializes writers.
        """
        if self.dialect != "postgresql" or not keys:
            return
        sql = f"SELECT {column} FROM {table} WHERE {column} = ANY(?::text[])"
        self._run(f"{sql} ORDER BY {column} FOR UPDATE", [sorted(set(keys))]).fetchall()

    def next_ids(self, counter: str, n: int = 1) -> int:
        """Reserve ``n`` consecutive ids of a counter; returns the first.

        The counter row stays locked until commit, so ids become visible in the order they
        were handed out: a reader that sees id N has already seen every id below it. The
        change feed's cursor relies on this.
        """
        if n <= 0:
            raise ValueError("n must be positive")
        last = self.scalar(
            "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value", (n, counter)
        )
        if last is None:
            raise StoreError(f"counter {counter!r} is missing; the database is not migrated")
        return int(last) - n + 1

    def migration_lock(self) -> None:
        """Keep two HQ processes from migrating the same database at once."""
        if self.dialect == "postgresql":
            self._run("SELECT pg_advisory_xact_lock(7420154)").fetchall()


class Database:
    """An HQ database; :func:`open_database` picks the dialect from the URL."""

    dialect: Dialect
    display: str  # the URL with any password hidden, for logs and messages

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Tx]:
        """A write transaction: commits whole on success, rolls back whole on any error.

        ``durable`` False: the commit does not wait for the disk (SQLite ``synchronous =
        NORMAL``, PostgreSQL ``synchronous_commit = off``). A power cut may then lose the
        last such commits, never corrupt or reorder anything; only what may be lost so —
        online holds, which are reservations, not records — is written this way.
        """
        raise NotImplementedError
        yield  # pragma: no cover

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction that sees one consistent snapshot."""
        raise NotImplementedError
        yield  # pragma: no cover

    def close(self) -> None:
        raise NotImplementedError


class SqliteDatabase(Database):
    """HQ on one SQLite file. Thread-safe: one connection behind one lock."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = f"sqlite:///{path}"
        self._lock = threading.RLock()
        try:
            # 0600 before SQLite opens it: its -wal and -shm then get the same mode. A folder
            # made here is 0700; one that exists (the working directory) is left as it is.
            path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
            private_file(path)
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.row_factory = _sqlite_row
            self._conn.execute("PRAGMA busy_timeout = 30000")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()["journal_mode"]
            if str(mode).lower() != "wal":
                logger.warning("SQLite refused WAL mode (%s); continuing with %s", mode, mode)
            self._conn.execute("PRAGMA synchronous = FULL")
            # Checkpoints on a thread of their own, not inside a COMMIT behind the lock.
            self._conn.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpoints = Checkpointer(path, self._lock)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the HQ database {path}: {exc}") from exc

    @contextmanager
    def _tx(self, begin: str) -> Iterator[Tx]:
        with self._lock:
            try:
                self._conn.execute(begin)
            except sqlite3.Error as exc:
                raise translate(exc, "cannot start a transaction") from exc
            try:
                yield Tx("sqlite", self._conn)
            except BaseException:
                with suppress(sqlite3.Error):  # SQLite may have rolled back already
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                with suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise translate(exc, "cannot commit") from exc

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Tx]:
        with self._lock:
            if not durable:
                self._synchronous("NORMAL")
            try:
                with self._tx("BEGIN IMMEDIATE") as tx:
                    yield tx
                self._checkpoints.wrote()
            finally:
                if not durable:
                    self._synchronous("FULL")

    def _synchronous(self, level: str) -> None:
        # Outside a transaction only; the connection's lock is held by the caller.
        try:
            self._conn.execute(f"PRAGMA synchronous = {level}")
        except sqlite3.Error as exc:
            raise translate(exc, "cannot set synchronous") from exc

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._tx("BEGIN") as tx:
            yield tx

    def close(self) -> None:
        self._checkpoints.close()
        with self._lock, suppress(sqlite3.Error):
            self._conn.close()


class PostgresDatabase(Database):
    """HQ on PostgreSQL through psycopg 3, with a small pool of connections."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = 8, connect_timeout: int = 10) -> None:
        self.url = url
        self.display = hide_password(url)
        self._connect_timeout = connect_timeout
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._closed = False
        # Connect once now: a wrong URL or a server that is down is a start-up error.
        with self._connection():
            pass

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg
        from psycopg.rows import dict_row

        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=self._connect_timeout,
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.display}: {first_line(exc)}") from exc
        dbrows.prefer_lz4(conn)
        return conn

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StoreError("the HQ database is closed")
        if not self._slots.acquire(timeout=30):
            raise StoreError("no free database connection for 30 s (too many requests at once)")
        conn: psycopg.Connection[Any] | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            if conn.closed or conn.broken:
                conn = self._connect()
            yield conn
        finally:
            if conn is not None:
                if conn.closed or conn.broken or self._closed:
                    with suppress(Exception):
                        conn.close()
                else:
                    self._idle.put(conn)
            self._slots.release()

    @contextmanager
    def _tx(self, *begin: str) -> Iterator[Tx]:
        with self._connection() as conn:
            tx = Tx("postgresql", conn, begin)
            try:
                yield tx
            except BaseException:
                if tx.sent:
                    with suppress(Exception):
                        conn.execute("ROLLBACK")
                raise
            if not tx.wrote:
                return  # no statement ran: nothing was started, nothing to commit
            try:
                tx.commit()
            except BaseException:
                with suppress(Exception):
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Tx]:
        begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
        lazy = () if durable else ("SET LOCAL synchronous_commit TO OFF",)
        with self._tx(begin, *lazy) as tx:
            yield tx

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self._tx("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") as tx:
            yield tx

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                break
            with suppress(Exception):
                conn.close()


def hide_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` → ``postgresql://user:***@host/db``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def open_database(url: str | None, *, data_dir: Path) -> Database:
    """Open (not migrate) the database named by ``--db``.

    ``None``: ``hq.sqlite3`` in ``data_dir``. A plain path, ``sqlite:///relative/path`` or
    ``sqlite:////absolute/path``: a SQLite file. ``postgresql://…`` (or ``postgres://…``):
    PostgreSQL.
    """
    path = sqlite_path(url, data_dir=data_dir)
    if path is None:
        assert url is not None
        return PostgresDatabase(url)
    return SqliteDatabase(path)


def sqlite_path(url: str | None, *, data_dir: Path) -> Path | None:
    """The SQLite file ``--db`` names (None: PostgreSQL); ConfigError for anything else."""
    if not url:
        return data_dir / DEFAULT_SQLITE_NAME
    scheme = url.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][\w+.-]*:", url) else ""
    if scheme in ("postgresql", "postgres"):
        return None
    if scheme == "sqlite":
        # As SQLAlchemy writes them: sqlite:///relative/path, sqlite:////absolute/path.
        rest = url[len("sqlite:") :]
        path = rest[3:] if rest.startswith("///") else rest
        if not path:
            raise ConfigError(f"--db {url!r}: name a file, e.g. sqlite:////var/lib/hq/hq.sqlite3")
        return Path(path)
    if scheme and len(scheme) > 1:
        raise ConfigError(
            f"--db {hide_password(url)!r}: unknown kind of database {scheme!r}; use a file "
            "path or postgresql://user:password@host/db"
        )
    return Path(url)


T = TypeVar("T")
CHUNK = 500  # values per IN (…) list: far below every driver's parameter limit


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    """``items`` in slices of at most ``size`` (one ``IN (…)`` list each)."""
    for i in range(0, len(items), size):
        yield items[i : i + size]
