"""The data file: migrations, a full disk, a corrupt or foreign file, a newer schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import ANNA, line, program
from tillgate.agent.store.db import Database
from tillgate.agent.store.schema import MIGRATIONS
from tillgate.core import errors


def test_new_file_is_migrated_and_in_wal_mode(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.sqlite3")
    assert db.schema_version == len(MIGRATIONS)
    with db.read() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    db.close()
    again = Database(tmp_path / "t.sqlite3")  # re-opening does not migrate twice
    assert again.schema_version == len(MIGRATIONS)
    again.close()


def test_ledger_is_append_only(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from tillgate.agent.store import ledger

    db = Database(tmp_path / "t.sqlite3")
    with db.write() as conn:
        ledger.append(conn, till="t", card="1", kind="adjust", points=5, at=datetime.now(UTC))
    with pytest.raises(errors.StoreError, match="append-only"), db.write() as conn:
        conn.execute("UPDATE ledger SET points = 500")
    with pytest.raises(errors.StoreError, match="append-only"), db.write() as conn:
        conn.execute("DELETE FROM ledger")
    db.close()


def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(errors.StoreError, match="not a usable tillgate data file"):
        Database(path)
    assert path.read_bytes().startswith(b"this is not a database")  # left untouched


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    with pytest.raises(errors.StoreError, match="upgrade tillgate"):
        Database(path)


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(errors.StoreError, match="cannot open"):
        Database(blocker / "sub" / "t.sqlite3")


def test_full_disk_refuses_the_sale_and_writes_nothing(make_till) -> None:
    till = make_till(program())
    till.sale("R0", [line("a", "100.00")], card=ANNA)
    with till.service.db.read() as conn:
        before = conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        # Make the database "full" exactly as a full disk does: SQLITE_FULL on write.
        conn.execute(f"PRAGMA max_page_count = {pages}")
    lines = [line(f"sku{i}", "10.00", 1, None, name="x" * 200) for i in range(300)]
    r = till.calc("R1", lines, card=ANNA)
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "storage_full"
    assert "disk is full" in r.json()["error"]["message"]
    with till.service.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM ledger").fetchone()[0] == before
        assert (
            conn.execute("SELECT COUNT(*) FROM receipts WHERE receipt_id = 'R1'").fetchone()[0] == 0
        )
        conn.execute("PRAGMA max_page_count = 1073741823")
    # Space is back: the same sale goes through.
    assert till.calc("R1", lines, card=ANNA).status_code == 200


def test_a_write_may_commit_without_waiting_for_the_disk(tmp_path: Path) -> None:
    db = Database(tmp_path / "t.sqlite3")

    def level() -> int:
        with db.read() as conn:
            return int(conn.execute("PRAGMA synchronous").fetchone()[0])

    with db.write(durable=False) as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        conn.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
    assert level() == 2  # FULL again for every other write
    with db.write() as conn, db.write(durable=False) as inner:
        # A write inside another is the outer one's: durable.
        assert inner.execute("PRAGMA synchronous").fetchone()[0] == 2
    with pytest.raises(RuntimeError), db.write(durable=False) as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('b', '1')")
        raise RuntimeError("a failed calculate")
    assert level() == 2
    with db.read() as conn:
        assert [r[0] for r in conn.execute("SELECT key FROM meta WHERE key IN ('a', 'b')")] == ["a"]
    db.close()


def test_a_calculate_does_not_wait_for_the_disk_a_confirm_does(
    make_till, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = make_till(program())
    seen: list[bool] = []  # whether each transaction waits for the disk
    real = Database.write

    def write(self: Database, *, durable: bool = True):
        if not self._depth:  # a transaction of its own, not one joined
            seen.append(durable)
        return real(self, durable=durable)

    monkeypatch.setattr(Database, "write", write)
    till.ok_calc("R1", [line("a", "100.00")], card=ANNA)
    assert seen == [False]
    seen.clear()
    assert till.confirm("R1").status_code == 200
    assert seen and all(seen), seen


def test_writes_of_two_connections_to_one_file_wait_for_each_other_in_the_process(
    tmp_path: Path,
) -> None:
    """The sync has a connection of its own: a write of the POS's waits for one of the
    sync's on the process's lock, never in SQLite's busy handler (which sleeps in steps
    of up to 100 ms; here it would refuse at once, its timeout set to 0)."""
    import threading

    path = tmp_path / "t.sqlite3"
    pos, sync = Database(path), Database(path)
    pos._conn.execute("PRAGMA busy_timeout = 0")
    inside, done = threading.Event(), threading.Event()

    def push() -> None:
        with sync.write() as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES ('sync', '1')")
            inside.set()
            done.wait(5)

    worker = threading.Thread(target=push)
    worker.start()
    assert inside.wait(5)
    threading.Timer(0.2, done.set).start()
    with pos.write() as conn:  # waits for the push's commit, then writes
        conn.execute("INSERT INTO meta (key, value) VALUES ('pos', '1')")
    worker.join(5)
    with pos.read() as conn:
        assert {r[0] for r in conn.execute("SELECT key FROM meta")} >= {"sync", "pos"}
    pos.close()
    sync.close()


def test_budget_totals_are_added_up_from_the_uses_a_file_already_has(tmp_path: Path) -> None:
    from tillgate.agent.store.schema import V13

    path = tmp_path / "t.sqlite3"
    Database(path).close()
    conn = sqlite3.connect(path)
    with conn:  # the file as the migration before V13 left it, with some uses
        for name in ("in", "out", "change"):
            conn.execute(f"DROP TRIGGER promotion_uses_budget_{name}")
        conn.execute("DROP TABLE budget_points")
        conn.execute(f"PRAGMA user_version = {MIGRATIONS.index(V13)}")
        conn.executemany(
            "INSERT INTO promotion_uses (receipt_id, promotion_id, card, day, points)"
            " VALUES (?, ?, '1', '2026-12-01', ?)",
            [("R1", "bonus", 40), ("R2", "bonus", 25), ("R1", "plain", 0), ("R3", "b2", 7)],
        )
    conn.close()
    db = Database(path)
    assert db.schema_version == len(MIGRATIONS)
    with db.write() as conn:
        totals = dict(conn.execute("SELECT promotion_id, points FROM budget_points").fetchall())
        assert totals == {"bonus": 65, "b2": 7}
        conn.execute(
            "INSERT INTO promotion_uses (receipt_id, promotion_id, card, day, points)"
            " VALUES ('R4', 'bonus', '1', '2026-12-02', 10)"
        )
        conn.execute("UPDATE promotion_uses SET points = 5 WHERE receipt_id = 'R3'")
        conn.execute("DELETE FROM promotion_uses WHERE receipt_id = 'R2'")
        totals = dict(conn.execute("SELECT promotion_id, points FROM budget_points").fetchall())
        assert totals == {"bonus": 50, "b2": 5}
    db.close()
