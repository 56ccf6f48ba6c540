"""One runner for each scheduled job: two head offices on one database never run a job at
the same time (hq/jobs.py), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hq.helpers import T0, HqTest
from tillgate.hq.db import Database, open_database
from tillgate.hq.jobs import LEASE, alone
from tillgate.hq.server import _job


@pytest.fixture
def other(db_url: str, tmp_path: Path) -> Iterator[Database]:
    """A second connection to the same database, as another ``hq serve`` has."""
    db = open_database(db_url, data_dir=tmp_path)
    try:
        yield db
    finally:
        db.close()


def test_a_job_held_by_one_process_is_skipped_by_the_other(hq: HqTest, other: Database) -> None:
    runs: list[str] = []
    job = _job("expiry", lambda _: runs.append("ran") or None)
    with alone(other, "expiry", owner="other", now=hq.clock.now()) as mine:
        assert mine
        job(hq.hq, "me")
        assert runs == []  # the other process runs it
        with alone(hq.hq.db, "expiry", owner="me", now=hq.clock.now()) as also:
            assert not also
        # Another job is not held by it.
        with alone(hq.hq.db, "re-pricing", owner="me", now=hq.clock.now()) as free:
            assert free
    job(hq.hq, "me")  # released with the run
    assert runs == ["ran"]
    with alone(other, "expiry", owner="other", now=hq.clock.now()) as again:
        assert again


def test_a_failing_run_gives_the_lock_back(hq: HqTest, other: Database) -> None:
    with pytest.raises(RuntimeError), alone(hq.hq.db, "holds", owner="me", now=T0) as mine:
        assert mine
        raise RuntimeError("the run failed")
    with alone(other, "holds", owner="other", now=T0) as got:
        assert got


def test_sqlite_lease_of_a_process_that_died_runs_out(tmp_path: Path) -> None:
    from tillgate.hq.schema import migrate

    path = tmp_path / "hq.sqlite3"
    first, second = (open_database(str(path), data_dir=tmp_path) for _ in range(2))
    try:
        migrate(first, now="2026-01-01T00:00:00+00:00")
        with alone(first, "expiry", owner="dead", now=T0) as got:
            assert got
            # The process dies in the run: its lease stays as it was taken.
            with first.read() as tx:
                row = tx.one("SELECT * FROM job_locks WHERE name = 'expiry'")
        with first.write() as tx:
            tx.execute("UPDATE job_locks SET owner = ?, until = ?", (row["owner"], row["until"]))
        with alone(second, "expiry", owner="b", now=T0 + LEASE / 2) as got:
            assert not got
        with alone(second, "expiry", owner="b", now=T0 + LEASE) as got:
            assert got
    finally:
        first.close()
        second.close()
