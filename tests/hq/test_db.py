"""The HQ database layer: URLs, migrations, one identity per database, errors translated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hq.conftest import drop_schema, pg_schema_url
from tests.hq.helpers import T0
from tillgate.core.clock import ManualClock
from tillgate.core.errors import ConfigError, StoreError
from tillgate.hq.db import SqliteDatabase, Tx, hide_password, open_database
from tillgate.hq.ledger import card_states
from tillgate.hq.schema import MIGRATIONS, migrate, statements
from tillgate.hq.service import Hq
from tillgate.hq.wire import ts

TOKEN = "t" * 32


def test_database_urls(tmp_path: Path) -> None:
    default = open_database(None, data_dir=tmp_path)
    assert isinstance(default, SqliteDatabase) and default.path == tmp_path / "hq.sqlite3"
    default.close()
    for url in (f"sqlite:///{tmp_path}/a.sqlite3", str(tmp_path / "a.sqlite3")):
        db = open_database(url, data_dir=tmp_path)
        assert isinstance(db, SqliteDatabase) and db.path == tmp_path / "a.sqlite3"
        db.close()
    with pytest.raises(ConfigError, match="unknown kind of database 'mysql'"):
        open_database("mysql://u:pw@h/db", data_dir=tmp_path)
    with pytest.raises(ConfigError, match="name a file"):
        open_database("sqlite:", data_dir=tmp_path)
    assert hide_password("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert hide_password("postgresql://h/db") == "postgresql://h/db"


def test_unreachable_postgresql_is_a_store_error_without_the_password(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot connect") as info:
        open_database("postgresql://u:secret@127.0.0.1:1/db", data_dir=tmp_path)
    assert "secret" not in str(info.value)


def test_migrations_run_once_and_the_identity_is_kept(db_url: str, tmp_path: Path) -> None:
    clock = ManualClock()
    db = open_database(db_url, data_dir=tmp_path)
    try:
        assert migrate(db, now="2026-01-01T00:00:00+00:00") == len(MIGRATIONS)
        first = Hq.open(db, clock=clock, admin_token=TOKEN, data_dir=tmp_path)
        second = Hq.open(db, clock=clock, admin_token=TOKEN, data_dir=tmp_path)  # a 2nd process
        assert (first.instance_id, first.coupon_key) == (second.instance_id, second.coupon_key)
        assert len(first.coupon_key) == 32
        with db.read() as tx:
            assert tx.scalar("SELECT COUNT(*) FROM schema_migrations") == len(MIGRATIONS)
    finally:
        db.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path}/hq.sqlite3", data_dir=tmp_path)
    try:
        migrate(db, now="x")
        with db.write() as tx:
            tx.execute("INSERT INTO schema_migrations VALUES (?, ?)", (len(MIGRATIONS) + 1, "x"))
        with pytest.raises(StoreError, match="newer than this tillgate understands"):
            migrate(db, now="x")
    finally:
        db.close()


def test_a_failed_statement_rolls_the_transaction_back(db_url: str, tmp_path: Path) -> None:
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with pytest.raises(StoreError), db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('a', 'b')")
            tx.execute("INSERT INTO meta (key, value) VALUES ('a', 'c')")  # duplicate key
        with db.read() as tx:
            assert tx.scalar("SELECT COUNT(*) FROM meta WHERE key = 'a'") == 0
    finally:
        db.close()


def test_values_writes_a_set_in_one_statement_per_chunk(db_url: str, tmp_path: Path) -> None:
    """Tx.values: every row once, in order, NULLs and quotes kept, an UPDATE from a set, and a
    set past one SQLite statement's parameters split in chunks; a bad row fails it whole."""
    from tillgate.hq.db import VALUES_PARAMS

    db = open_database(db_url, data_dir=tmp_path)
    n = VALUES_PARAMS // 3 + 7  # two chunks on SQLite
    rows = [(f"v{i:06d}", None if i % 2 else f'it\'s "{i}"', i) for i in range(n)]
    try:
        with db.write() as tx:
            tx.values(
                "INSERT INTO card_counters (card, till, name, day, value)"
                " SELECT column1, 't', COALESCE(column2, '-'), 'd', column3 FROM (VALUES ?) AS v",
                rows,
                ("text", "text", "bigint"),
            )
            tx.values(
                "UPDATE card_counters SET value = card_counters.value + v.column2"
                " FROM (VALUES ?) AS v WHERE card_counters.card = v.column1",
                [("v000001", 1000), ("v000002", 2000)],
                ("text", "bigint"),
            )
        with db.read() as tx:
            got = tx.all("SELECT card, name, value FROM card_counters ORDER BY card")
        assert len(got) == n
        assert got[1] == {"card": "v000001", "name": "-", "value": 1001}
        assert got[2] == {"card": "v000002", "name": 'it\'s "2"', "value": 2002}
        assert got[-1]["value"] == n - 1
        with pytest.raises(StoreError), db.write() as tx:
            tx.values(
                "INSERT INTO meta (key, value) VALUES ?",
                [("x1", "a"), ("x1", "b")],  # the same key twice
                ("text", "text"),
            )
        with db.read() as tx:
            assert tx.scalar("SELECT COUNT(*) FROM meta WHERE key = 'x1'") == 0
    finally:
        db.close()


def test_copy_in_writes_every_row_once_however_many(db_url: str, tmp_path: Path) -> None:
    """Tx.copy_in (SQLite: COPY_ROWS rows a statement, the rest one a row): every row once,
    NULLs, quotes, tabs and backslashes kept, for counts around a statement's rows; a row
    of the wrong width and a key twice each fail the whole transaction."""
    from tillgate.hq.db import COPY_ROWS

    db = open_database(db_url, data_dir=tmp_path)
    columns = ("number", "holder", "phone", "origin", "created_at", "updated_at")
    try:
        for n in (0, 1, COPY_ROWS - 1, COPY_ROWS, COPY_ROWS + 1, 2 * COPY_ROWS + 37):
            rows = [(f"{n}-{i:05d}", f"it's \"{i}\"\t\\n\n", None if i % 3 else f"+7{i}",
                     "t", "a", "b") for i in range(n)]  # fmt: skip
            with db.write() as tx:
                assert tx.copy_in("cards", columns, iter(rows)) == n
            with db.read() as tx:
                got = tx.all(
                    f"SELECT {', '.join(columns)} FROM cards WHERE number LIKE ? ORDER BY number",
                    (f"{n}-%",),
                )
            assert [tuple(r.values()) for r in got] == rows
        with db.read() as tx:
            before = tx.scalar("SELECT COUNT(*) FROM cards")
        wide = [(f"w{i}", "h", None, "t", "a", "b") for i in range(COPY_ROWS + 5)]
        with pytest.raises(ValueError, match="a row of 5 values for 6 columns"), db.write() as tx:
            tx.copy_in("cards", columns, [*wide, ("w-short", "h", None, "t", "a")])
        with pytest.raises(StoreError), db.write() as tx:
            tx.copy_in("cards", columns, [*wide, wide[3]])  # a key twice
        with db.read() as tx:
            assert tx.scalar("SELECT COUNT(*) FROM cards") == before
    finally:
        db.close()


def _in_the_file(path: Path) -> int | None:
    """Cards in the database file itself, the WAL not read (what checkpoints copied); None
    while a checkpoint is writing the file (read without locks, it may be torn)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0])
    except sqlite3.DatabaseError:
        return None
    finally:
        conn.close()


def _big_write(db: SqliteDatabase, n: int = 20_000) -> None:
    with db.write() as tx:  # ≈ 2,000 pages: past SQLite's automatic checkpoint at 1,000
        tx.copy_in(
            "cards",
            ("number", "holder", "origin", "created_at", "updated_at"),
            ((f"{i:013d}", "Держатель " * 20, "t", "a", "b") for i in range(n)),
        )


def test_sqlite_checkpoints_run_beside_the_writes_not_inside_their_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HQ's one SQLite connection never checkpoints inside a COMMIT (behind its lock): its
    thread copies the WAL into the file after the write, and closing stops it."""
    import sqlite3
    import threading

    from tillgate.hq import walcheckpoint

    def ours() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name == "hq-wal-checkpoint"}

    wrote, others = walcheckpoint.Checkpointer.wrote, ours()
    monkeypatch.setattr(walcheckpoint.Checkpointer, "wrote", lambda self: None)  # no thread
    db = SqliteDatabase(tmp_path / "hq.sqlite3")
    migrate(db, now=ts(T0))
    with sqlite3.connect(tmp_path / "hq.sqlite3") as other:  # the schema in the file
        assert other.execute("PRAGMA wal_checkpoint(FULL)").fetchone()[0] == 0
    other.close()
    _big_write(db)
    assert _in_the_file(tmp_path / "hq.sqlite3") == 0  # the commit copied nothing
    assert ours() == others
    monkeypatch.setattr(walcheckpoint.Checkpointer, "wrote", wrote)
    with db.write() as tx:
        tx.execute("UPDATE cards SET holder = 'x' WHERE number = ?", (f"{1:013d}",))
    mine = ours() - others
    assert len(mine) == 1
    for _ in range(400):
        if _in_the_file(tmp_path / "hq.sqlite3") == 20_000:
            break
        threading.Event().wait(0.05)
    assert _in_the_file(tmp_path / "hq.sqlite3") == 20_000
    db.close()
    assert not any(t.is_alive() for t in mine)
    with open_database(str(tmp_path / "hq.sqlite3"), data_dir=tmp_path).read() as tx:
        assert tx.scalar("SELECT holder FROM cards WHERE number = ?", (f"{1:013d}",)) == "x"


def test_the_sqlite_wal_stays_bounded_under_writes_that_never_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Back-to-back writes keep a passive checkpoint from ever catching up: past its bound
    the thread checkpoints the WAL whole between two transactions and truncates it (without
    that, 2 s of these writes grow it past 100 MiB here)."""
    import os
    import time

    from tillgate.hq import walcheckpoint

    monkeypatch.setattr(walcheckpoint, "WAL_FRAMES", 1_000)  # ≈ 4 MiB
    monkeypatch.setattr(walcheckpoint, "GAP", 0.05)
    db = SqliteDatabase(tmp_path / "hq.sqlite3")
    migrate(db, now=ts(T0))
    wal, peak, k = tmp_path / "hq.sqlite3-wal", 0, 0
    end = time.monotonic() + 2
    while time.monotonic() < end:
        with db.write() as tx:
            tx.copy_in(
                "cards",
                ("number", "holder", "origin", "created_at", "updated_at"),
                ((f"{k}-{i:04d}", "x" * 400, "t", "a", "b") for i in range(200)),
            )
        k += 1
        peak = max(peak, os.path.getsize(wal))
    assert peak < 48 * 2**20, (k, peak)
    with db.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM cards") == 200 * k
    db.close()


def test_a_write_that_need_not_wait_for_the_disk(db_url: str, tmp_path: Path) -> None:
    """``durable=False`` commits (and rolls back) like any write; only the flush differs,
    and only for that transaction."""
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with db.write(durable=False) as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('fast', '1')")
            if tx.dialect == "postgresql":
                assert tx.scalar("SHOW synchronous_commit") == "off"
        with pytest.raises(StoreError), db.write(durable=False) as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('fast', '2')")
        with db.write() as tx:
            if tx.dialect == "postgresql":
                assert tx.scalar("SHOW synchronous_commit") == "on"
            else:  # FULL again for every other write
                assert tx.scalar("PRAGMA synchronous") == 2
            assert tx.scalar("SELECT value FROM meta WHERE key = 'fast'") == "1"
    finally:
        db.close()


def test_a_transaction_starts_with_its_first_statement(db_url: str, tmp_path: Path) -> None:
    """On PostgreSQL BEGIN goes in the round trip of the first statement (pipeline mode):
    that statement runs inside the transaction, a failure of it leaves nothing behind and
    the connection usable, and a transaction that runs nothing is fine."""
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with db.write() as tx:
            pass  # nothing run: nothing to start or commit
        with pytest.raises(StoreError), db.write() as tx:
            tx.execute("INSERT INTO no_such_table (x) VALUES (1)")  # the very first statement
        with pytest.raises(StoreError), db.write() as tx:
            tx.many("INSERT INTO meta (key, value) VALUES (?, ?)", [("m", "1"), ("m", "2")])
        with db.write() as tx:
            tx.many("INSERT INTO meta (key, value) VALUES (?, ?)", [("n", "1"), ("o", "2")])
        with db.read() as tx:
            if tx.dialect == "postgresql":
                # The first statement already runs in the transaction BEGIN opened (the
                # server's default is read committed).
                assert tx.scalar("SHOW transaction_isolation") == "repeatable read"
            assert tx.scalar("SELECT COUNT(*) FROM meta WHERE key IN ('m', 'n', 'o')") == 2
    finally:
        db.close()


def test_a_later_statement_goes_with_the_next_one(db_url: str, tmp_path: Path) -> None:
    """``Tx.later``: on PostgreSQL sent with the next statement or with COMMIT, before it;
    and if it fails, the commit fails and nothing of the transaction is kept."""
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('l1', 'a')")
            tx.later("UPDATE meta SET value = 'b' WHERE key = 'l1'")
            assert tx.scalar("SELECT value FROM meta WHERE key = 'l1'") == "b"  # in order
            tx.later("INSERT INTO meta (key, value) VALUES ('l2', 'c')")
        with pytest.raises(StoreError), db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('l3', 'd')")
            tx.later("INSERT INTO meta (key, value) VALUES ('l1', 'dup')")  # duplicate key
        with db.read() as tx:
            rows = tx.all("SELECT key, value FROM meta WHERE key LIKE 'l%' ORDER BY key")
        assert rows == [{"key": "l1", "value": "b"}, {"key": "l2", "value": "c"}]
    finally:
        db.close()


def test_statements_sent_ahead_run_in_order_and_fail_the_transaction(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Tx.ahead``: on PostgreSQL queued with what waits and sent in one round trip with
    the next statement (or when its rows are read), each run after the ones before it;
    a failure among them fails the transaction, and nothing of it is kept."""
    db = open_database(db_url, data_dir=tmp_path)
    sends: list[int] = []
    real = Tx._send

    def counted(self: Tx, sql: str | None, params: tuple[object, ...]) -> object:
        sends.append(len(self._queue))
        return real(self, sql, params)

    try:
        with db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('a1', 'x')")
            monkeypatch.setattr(Tx, "_send", counted)
            tx.later("UPDATE meta SET value = 'y' WHERE key = 'a1'")
            first = tx.ahead("SELECT value FROM meta WHERE key = 'a1'")
            none = tx.ahead("SELECT value FROM meta WHERE key = 'no such key'")
            count = tx.ahead("SELECT COUNT(*) AS n FROM meta WHERE key LIKE 'a%'")
            assert none.one() is None  # reading one sends them all
            assert first.one() == {"value": "y"}  # it ran after the update before it
            assert count.scalar() == 1 and count.all() == [{"n": 1}]
            monkeypatch.undo()
        # One round trip on PostgreSQL for the four (SQLite runs each at once).
        assert sends == ([4] if tx.dialect == "postgresql" else [])
        with pytest.raises(StoreError), db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('a2', 'z')")
            bad = tx.ahead("SELECT no_such_column FROM meta")
            tx.ahead("SELECT 1 AS one")
            bad.all()
        with pytest.raises(StoreError), db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES ('a3', 'z')")
            tx.ahead("SELECT no_such_column FROM meta")  # never read: COMMIT fails
        with db.read() as tx:
            rows = tx.all("SELECT key, value FROM meta WHERE key LIKE 'a%' ORDER BY key")
        assert rows == [{"key": "a1", "value": "y"}]
    finally:
        db.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.sqlite3"
        return
    base = request.getfixturevalue("pg_base_url")
    url, schema = pg_schema_url(base)
    try:
        yield url
    finally:
        drop_schema(base, schema)


def test_a_schema_1_database_keeps_its_entries_counted_after_the_upgrade(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Schema 2 adds quarantine: entries head office already held still count."""
    db = open_database(empty_db_url, data_dir=tmp_path)
    try:
        with db.write() as tx:  # what an HQ of schema 1 left behind
            tx.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT"
                " NOT NULL)"
            )
            for statement in statements(MIGRATIONS[0]):
                tx.execute(statement)
            tx.execute("INSERT INTO schema_migrations VALUES (1, 'x')")
            tx.execute(
                "INSERT INTO entries (id, pos, till, seq, card, kind, points, created_at,"
                " available_from, received_at) VALUES ('e1', 1, 'till-1', 1, '2900000000011',"
                " 'accrue', 40, ?, ?, ?)",
                (ts(T0), ts(T0), ts(T0)),
            )
        assert migrate(db, now="2026-12-01T00:00:00+00:00") == len(MIGRATIONS) >= 2
        with db.read() as tx:
            assert tx.scalar("SELECT quarantine FROM entries WHERE id = 'e1'") is None
            assert card_states(tx, ["2900000000011"], T0)["2900000000011"].balance == 40
            counters = {r["name"]: r["value"] for r in tx.all("SELECT * FROM counters")}
            assert counters["flag"] == counters["audit"] == 0
            assert tx.scalar("SELECT COUNT(*) FROM quarantine") == 0
            assert tx.scalar("SELECT COUNT(*) FROM audit") == 0
    finally:
        db.close()


# The queries of the partial indexes (hq/ledger.py expiry job and receipt returns,
# hq/repricing.py, hq/admin.py negative cards): each condition implies the index's own.
PARTIAL_QUERIES = (
    ("cards_next_expiry", "SELECT number FROM cards WHERE next_expiry <= ? ORDER BY number", 1),
    ("cards_negative", "SELECT number FROM cards WHERE negative_since IS NOT NULL", 0),
    ("entries_receipt", "SELECT kind FROM entries WHERE till = ? AND receipt_id = ?", 2),
    ("entries_receipt", "SELECT kind FROM entries WHERE till = ? AND receipt_id IN (?, ?)", 3),
)


def test_the_partial_indexes_serve_the_queries_that_name_their_columns(
    db_url: str, tmp_path: Path
) -> None:
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with db.write() as tx:
            pg = tx.dialect == "postgresql"
            if pg:  # a plan that could not use the index would scan the table
                tx.execute("SET LOCAL enable_seqscan = off")
            for index, sql, n in PARTIAL_QUERIES:
                args = ("2026-12-01", "till-1", "r1", "r2")[:n]
                if pg:
                    plan = " ".join(
                        str(v) for r in tx.all(f"EXPLAIN {sql}", args) for v in r.values()
                    )
                    assert index in plan, (sql, plan)
                else:  # SQLite refuses a query INDEXED BY an index it cannot use
                    table, rest = sql.split(" FROM ", 1)[1].split(" ", 1)
                    query = f"{sql.split(' FROM ')[0]} FROM {table} INDEXED BY {index} {rest}"
                    tx.all(f"EXPLAIN QUERY PLAN {query}", args)
    finally:
        db.close()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_long_values_are_compressed_with_lz4_on_postgresql(db_url: str, tmp_path: Path) -> None:
    """A receipt's facts longer than a row holds are compressed with lz4 (hq/dbrows.py
    ``prefer_lz4``), on every connection of the pool, and read back whole."""
    body = json.dumps([{"sku": f"sku{i}", "qty": "2", "price": "99.90"} for i in range(400)])
    db = open_database(db_url, data_dir=tmp_path)
    try:
        with db.write() as tx, db.write() as other:  # two connections at once
            for n, t in enumerate((tx, other)):
                t.execute(
                    "INSERT INTO receipt_facts (till, id, kind, receipt_id, after_seq, body,"
                    " created_at, received_at) VALUES ('t', ?, 'sale', 'r', 0, ?, 'x', 'x')",
                    (f"f{n}", body),
                )
        with db.read() as tx:
            rows = tx.all("SELECT body, pg_column_compression(body) AS method FROM receipt_facts")
        assert [(r["body"] == body, r["method"]) for r in rows] == [(True, "lz4")] * 2
    finally:
        db.close()
