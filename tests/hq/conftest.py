"""Head-office fixtures: every HQ test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from ``TILLGATE_TEST_PG`` (``.ci/run`` starts a server and sets it). The
session gets a schema of its own in that database, emptied before each test and dropped
at the end. Without the variable
the PostgreSQL half is skipped on a developer's machine and FAILS in CI (``CI=true``): HQ
claims PostgreSQL support, so CI must prove it.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hq.helpers import HqTest, start_hq
from tillgate.core.clock import ManualClock
from tillgate.hq.db import open_database
from tillgate.hq.schema import migrate

PG_ENV = "TILLGATE_TEST_PG"


@pytest.fixture(scope="session")
def pg_base_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(
                f"{PG_ENV} is not set: CI must run the HQ tests on PostgreSQL "
                "(.ci/run installs and starts one)"
            )
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test HQ on (see .ci/run)")
    return url


TABLES = (
    "meta",
    "tills",
    "enroll_codes",
    "cards",
    "entries",
    "programs",
    "changes",
    "coupons_issued",
    "coupons_used",
    "coupons_revoked",
    "coupon_conflicts",
    "sync_conflicts",
    "receipt_facts",
    "quarantine",
    "audit",
    "holds",
    "coupon_holds",
    "card_counters",
    "budget_counters",
    "users",
    "api_tokens",
    "login_failures",
    "settings",
    "coupon_keys",
    "products",
    "product_lists",
    "job_locks",
    "card_folds",
    "card_snapshots",
    "card_snapshot_parts",
)


def pg_schema_url(base: str) -> tuple[str, str]:
    """A fresh schema in the test database, and a URL whose search_path is that schema."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}", schema


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _migrated(url: str, data_dir: Path) -> None:
    db = open_database(url, data_dir=data_dir)
    try:
        migrate(db, now="2026-01-01T00:00:00.000000+00:00")
    finally:
        db.close()


@pytest.fixture(scope="session")
def pg_session(pg_base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One migrated schema for the session, emptied before each test (much faster than a
    schema and a migration per test), and the connection that empties it."""
    import psycopg

    url, schema = pg_schema_url(pg_base_url)
    _migrated(url, tmp_path_factory.mktemp("pg"))
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    try:
        yield url, conn
    finally:
        conn.close()
        drop_schema(pg_base_url, schema)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating costs a few fsyncs)."""
    path = tmp_path_factory.mktemp("template") / "hq.sqlite3"
    _migrated(f"sqlite:///{path}", path.parent)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated HQ database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "hq.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url, conn = request.getfixturevalue("pg_session")
    conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    conn.execute("UPDATE counters SET value = 0")
    return str(url)


@pytest.fixture
def hq(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[HqTest]:
    """A running HQ on that database, with a manual clock."""
    test, stop = start_hq(db_url, tmp_path, clock)
    try:
        yield test
    finally:
        stop()
