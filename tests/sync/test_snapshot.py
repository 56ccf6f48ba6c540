"""A pull of every card goes without the late indexes and builds them with its last page.

The phone hash's index took a random key a card: a first start's snapshot wrote each card
with it dirtying a random page (half of the till's writing). Its pages now go without it
(``schema.LATE_INDEXES``) and the index is built in the transaction of the last page,
with the cursor. A till never stays without it: a pull cut off builds it back at once,
a till killed mid-pull gets it back when its data file is opened, and the pull, going
on, drops it again until its last page.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANNA
from tillgate.agent.store import cards as card_store
from tillgate.agent.store import meta, schema, syncstate
from tillgate.agent.store.db import Database
from tillgate.core.cards import phone_lookup_hash
from tillgate.core.errors import TillgateError
from tillgate.sync import feed
from tillgate.sync.wire import ChangePage, parse

NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
KEY = "ab" * 16
PHONE = "+79161234567"
PER_PAGE = 3


def card(i: int) -> dict[str, Any]:
    """A card as head office sends it; card 4 has the phone :data:`PHONE`."""
    phone = PHONE if i == 4 else f"+7900{i:07d}"
    return {
        "number": f"29{i:011d}",
        "holder": f"Анна {i}.",
        "phone_hash": phone_lookup_hash(bytes.fromhex(KEY), phone),
        "status": "active",
        "balance": i,
    }


def page(k: int, of: int) -> ChangePage:
    """Page ``k`` (from 1) of ``of`` pages of a snapshot, :data:`PER_PAGE` cards each."""
    cards = [card(i) for i in range((k - 1) * PER_PAGE, k * PER_PAGE)]
    body = {"cursor": k * PER_PAGE, "more": k < of, "lookup_key": KEY, "cards": cards}
    return parse(ChangePage, body, what="change page")


def late_missing(db: Database) -> list[str]:
    with db.read() as conn:
        return schema.missing_late_indexes(conn)


def snapshot(db: Database) -> str | None:
    with db.read() as conn:
        return meta.get(conn, syncstate.SNAPSHOT)


def found(db: Database) -> str | None:
    with db.read() as conn:
        got = card_store.find(conn, phone=PHONE)
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT number FROM cards WHERE phone_hash = ?", ("x",)
        ).fetchall()
    assert any("cards_phone_hash" in str(row[-1]) for row in plan), plan
    return got.number if got else None


def test_a_snapshot_goes_without_the_phone_index_and_builds_it_with_its_last_page(
    tmp_path: Path,
) -> None:
    db = Database(tmp_path / "till.sqlite3")
    assert late_missing(db) == []
    feed.apply(db, page(1, 3), till="till-1", cursor=0, now=NOW)
    assert late_missing(db) == ["cards_phone_hash"] and snapshot(db) == "1"
    feed.apply(db, page(2, 3), till="till-1", cursor=PER_PAGE, now=NOW)
    assert late_missing(db) == ["cards_phone_hash"]

    statements: list[str] = []
    with db.read() as conn:
        conn.set_trace_callback(statements.append)
    feed.apply(db, page(3, 3), till="till-1", cursor=2 * PER_PAGE, now=NOW)
    with db.read() as conn:
        conn.set_trace_callback(None)

    assert late_missing(db) == [] and snapshot(db) is None
    # The index went in with the last page's cursor, in one transaction.
    last = statements[statements.index("BEGIN IMMEDIATE") :]
    built = next(i for i, s in enumerate(last) if s.startswith("CREATE INDEX cards_phone_hash"))
    cursor_at = next(i for i, s in enumerate(last) if syncstate.CURSOR in s)
    assert "COMMIT" not in last[: max(built, cursor_at)]
    assert found(db) == card(4)["number"]
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == 3 * PER_PAGE
        assert int(meta.get(conn, syncstate.CURSOR) or 0) == 3 * PER_PAGE
    db.close()


def test_a_pull_of_one_page_keeps_its_indexes(tmp_path: Path) -> None:
    """Nothing to gain on a small chain: the index is never dropped for one page."""
    db = Database(tmp_path / "till.sqlite3")
    statements: list[str] = []
    with db.read() as conn:
        conn.set_trace_callback(statements.append)
    feed.apply(db, page(1, 1), till="till-1", cursor=0, now=NOW)
    feed.apply(db, page(2, 2), till="till-1", cursor=PER_PAGE, now=NOW)  # not from 0
    with db.read() as conn:
        conn.set_trace_callback(None)
    assert not [s for s in statements if "INDEX" in s]
    assert late_missing(db) == [] and snapshot(db) is None
    db.close()


KILLED_MID_PULL = """
import os, sys
from tests.sync.test_snapshot import NOW, page
from tillgate.agent.store.db import Database
from tillgate.sync import feed
db = Database(sys.argv[1])
feed.apply(db, page(1, 3), till="till-1", cursor=0, now=NOW)
os._exit(9)  # killed: no close, no clean-up
"""


def test_a_till_killed_mid_snapshot_has_its_index_back_when_it_opens_its_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "till.sqlite3"
    root = Path(__file__).resolve().parents[2]
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_PULL, str(path)], cwd=root, capture_output=True
    )
    assert killed.returncode == 9, killed.stderr.decode()

    with caplog.at_level(logging.WARNING, logger="tillgate.agent.store"):
        db = Database(path)
    assert late_missing(db) == [] and "cards_phone_hash built again" in caplog.text
    assert found(db) is None  # card 4 is on a page not pulled yet
    with db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == PER_PAGE
    assert snapshot(db) == "1"  # the pull goes on as a snapshot: without the index again
    feed.apply(db, page(2, 3), till="till-1", cursor=PER_PAGE, now=NOW)
    assert late_missing(db) == ["cards_phone_hash"]
    feed.apply(db, page(3, 3), till="till-1", cursor=2 * PER_PAGE, now=NOW)
    assert late_missing(db) == [] and snapshot(db) is None
    assert found(db) == card(4)["number"]
    db.close()


def test_a_snapshot_cut_off_builds_the_index_back_and_goes_on_later(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain(page_limit=2)  # its first pull: a snapshot of several pages
    db = till.syncer.db
    assert late_missing(db) == [] and snapshot(db) is None
    with db.write() as conn:
        meta.put(conn, syncstate.CURSOR, 0)  # a pull of every card again (as after a re-key)

    def line_down_after(got: Any) -> Any:
        till.link.down = True  # head office goes away after the first page
        return got

    till.link.alter_next_page(line_down_after)
    statements: list[str] = []
    with db.read() as conn:
        conn.set_trace_callback(statements.append)
    with pytest.raises(TillgateError):
        till.syncer.pull()
    with db.read() as conn:
        conn.set_trace_callback(None)

    dropped = statements.index("DROP INDEX IF EXISTS cards_phone_hash")
    assert any(s.startswith("CREATE INDEX cards_phone_hash") for s in statements[dropped:])

    assert late_missing(db) == [] and snapshot(db) == "1"
    with db.read() as conn:  # Анна's phone, looked up with the index
        assert (got := card_store.find(conn, phone=PHONE)) is not None and got.number == ANNA
    till.link.down = False
    report = till.syncer.pull()
    assert report.pages > 1
    assert late_missing(db) == [] and snapshot(db) is None
    with db.read() as conn:
        assert int(meta.get(conn, syncstate.CURSOR) or 0) == hq.cursor()
