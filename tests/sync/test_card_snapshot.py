"""A fresh till starts from head office's card snapshot (sync/snapshot.py, hq/snapshots.py).

Through the real head office on loopback: a till whose data file has no card asks for the
snapshot, downloads its parts, copies its cards and pulls the pages after it. It must end
holding exactly what a till that pulled every card in pages holds, and anything wrong with
a snapshot (a part spoilt on disk, a row no page may hold) must cost only the time: the
till pulls the pages as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import sqlite3
import zlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, CARDS
from tests.sync.realhq import Chain, ChainHq, card
from tillgate.agent.store import meta, schema, syncstate
from tillgate.core.clock import ManualClock

NEW = "2900000007777"
EXTRA = [
    card("2900000001001", holder="Иванова Мария Петровна", phone="+79160000001",
         birthday=date(1990, 3, 14), segments=("students",), opening_balance=250),
    card("2900000001002", holder="Пётр", tier="gold", opening_balance=40),
    card("2900000001003", holder="Ольга", clubs=("wine-club", "tea-club")),
]  # fmt: skip
SNAPSHOT = "/v1/sync/card-snapshot"


def build(hq: ChainHq) -> dict[str, Any]:
    return dict(hq.ok("POST", "/v1/admin/cards/snapshot"))


def held(till: Chain) -> dict[str, Any]:
    """What the till holds of every card, timestamps aside, JSON read as values."""
    own = till.rows(
        "SELECT number, holder, phone, hex(phone_hash), birthday, tier, segments, clubs, status,"
        " origin FROM cards ORDER BY number"
    )
    hq = till.rows(
        "SELECT number, balance, pending, lots, through_seq, uses, held FROM hq_cards"
        " ORDER BY number"
    )
    return {
        "cards": [(*r[:6], json.loads(r[6]), json.loads(r[7]), *r[8:]) for r in own],
        "hq_cards": [(*r[:3], json.loads(r[3]), r[4], json.loads(r[5]), r[6]) for r in hq],
        "lookups": [till.service.card_lookup(r[0]) for r in own],
        "by_phone": till.service.card_lookup("+79160000001")["number"],
    }


def asked(till: Chain, path: str) -> list[dict[str, str]]:
    return [dict(r.url.params) for r in till.link.requests if r.url.path == path]


def no_snapshots(hq: ChainHq) -> None:
    with hq.api.hq.db.write() as tx:
        tx.execute("DELETE FROM card_snapshot_parts")
        tx.execute("DELETE FROM card_snapshots")


@pytest.fixture
def chain(make_chain: Any, hq: ChainHq, clock: ManualClock) -> dict[str, Any]:
    """A till that sold and synced (its counts and entries are every other till's), a
    card with two lots, a snapshot after that, and changes after the snapshot."""
    seller = make_chain("till-1", cards=[*CARDS, *EXTRA])
    seller.sale("R-1", "500.00", card=ANNA)
    seller.syncer.run_once()
    clock.advance(hours=1)
    hq.ok("POST", "/v1/admin/cards/2900000001002/adjust", json={"points": 7, "reason": "gift"})
    info = build(hq)
    hq.import_cards(card(NEW, holder="Дина", opening_balance=120), card(BORIS, tier="silver"))
    return info | {"seller": seller}


def test_a_fresh_till_from_the_snapshot_holds_what_pages_give(
    make_chain: Any,
    hq: ChainHq,
    chain: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tillgate.sync import snapshot

    opened: dict[str, list[int]] = {}  # the downloaded file's mode, as the copy finds it
    real = snapshot._apply

    def apply(db: Any, path: Path, info: Any, now: Any) -> int:
        opened.setdefault(str(path), []).append(path.stat().st_mode & 0o777)
        return real(db, path, info, now)

    monkeypatch.setattr(snapshot, "_apply", apply)
    monkeypatch.setattr(snapshot, "PROGRESS_SECONDS", 0.0)  # every part says how far
    with caplog.at_level(logging.INFO, logger="tillgate.sync.snapshot"):
        fresh = make_chain("till-2")
    told = [r.getMessage() for r in caplog.records if r.name == "tillgate.sync.snapshot"]
    assert told[0].startswith(f"downloading head office's card snapshot {chain['id']}: 1 of ")
    assert re.match(rf"\d+ cards from head office's card snapshot {chain['id']} ", told[-1])
    got = asked(fresh, SNAPSHOT + "/parts")
    assert [p["seq"] for p in got] == [str(n) for n in range(chain["parts"])]
    pages = asked(fresh, "/v1/sync/changes")
    assert pages and pages[0]["cards_through"] == str(chain["change_id"])
    with fresh.service.db.read() as conn:
        assert meta.get(conn, syncstate.CARDS_THROUGH) is None  # the pull went past it
        assert meta.get(conn, syncstate.SNAPSHOT) is None
        assert schema.missing_late_indexes(conn) == []
    assert not fresh.path.with_name(fresh.path.name + ".cards").exists()
    made = [r for r in opened if r.endswith(".cards")]
    assert made and all(mode == 0o600 for mode in opened[made[0]]), opened

    no_snapshots(hq)
    paged = make_chain("till-3")
    assert asked(paged, SNAPSHOT + "/parts") == []
    assert held(fresh) == held(paged)
    assert fresh.balance(NEW) == 120 and fresh.balance("2900000001001") == 250
    lots = fresh.rows("SELECT lots FROM hq_cards WHERE number = '2900000001002'")[0][0]
    assert [lot[0] for lot in json.loads(lots)] == [40, 7]  # in head office's order
    # The other till's sale counts here as it does at a till that pulled pages.
    assert fresh.calc("R-9", "100.00", card=ANNA) == paged.calc("R-9", "100.00", card=ANNA)


def spoil(hq: ChainHq, tmp_path: Path, sql: str) -> None:
    """Head office's newest snapshot with ``sql`` run on its file, kept as if built so
    (its size and checksum made anew): a head office that wrote rows no page may hold."""
    db = hq.api.hq.db
    with db.read() as tx:
        row = tx.one("SELECT * FROM card_snapshots ORDER BY id DESC LIMIT 1")
        parts = tx.all(
            "SELECT data FROM card_snapshot_parts WHERE snapshot = ? ORDER BY seq", (row["id"],)
        )
    path = tmp_path / "spoilt.sqlite3"
    path.write_bytes(zlib.decompress(b"".join(bytes(p["data"]) for p in parts)))
    with sqlite3.connect(path) as file:
        file.execute(sql)
    file.close()
    data = zlib.compress(path.read_bytes())
    with db.write() as tx:
        tx.execute("DELETE FROM card_snapshot_parts WHERE snapshot = ?", (row["id"],))
        tx.execute(
            "INSERT INTO card_snapshot_parts (snapshot, seq, data) VALUES (?, 0, ?)",
            (row["id"], data),
        )
        tx.execute(
            "UPDATE card_snapshots SET parts = 1, size = ?, file_size = ?, sha256 = ? WHERE id = ?",
            (len(data), path.stat().st_size, hashlib.sha256(data).hexdigest(), row["id"]),
        )


@pytest.mark.parametrize(
    ("spoilt", "why"),
    [
        ("UPDATE cards SET status = 'gold' WHERE number = '2900000001002'", "value no change"),
        ("UPDATE cards SET birthday = '--02-30' WHERE birthday IS NOT NULL", "value no change"),
        ("UPDATE cards SET segments = '[1]' WHERE number = '2900000001001'", "value no change"),
        ("UPDATE cards SET phone_hash = x'00' WHERE phone_hash IS NOT NULL", "value no change"),
        ("UPDATE cards SET lots = '[{\"points\": -5}]' WHERE number = '2900000001002'", "lots"),
        ("UPDATE cards SET uses = '{\"visits\": -1}' WHERE number = '2900000000011'", "uses"),
        ("UPDATE snapshot SET value = 70 WHERE name = 'cards'", "says 70 cards"),
        ("UPDATE snapshot SET value = 2 WHERE name = 'format'", "format 2"),
        ("DROP TABLE cards", "no cards and snapshot tables"),
    ],
)
def test_a_snapshot_with_a_row_no_page_may_hold_is_refused_whole(
    make_chain: Any,
    hq: ChainHq,
    chain: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    spoilt: str,
    why: str,
) -> None:
    spoil(hq, tmp_path, spoilt)
    with caplog.at_level(logging.WARNING, logger="tillgate.sync.snapshot"):
        fresh = make_chain("till-2")
    warned = [r.getMessage() for r in caplog.records if r.name == "tillgate.sync.snapshot"]
    assert len(warned) == 1 and why in warned[0] and "pulling every card in pages" in warned[0]
    assert "2900000001002" not in warned[0]  # card numbers are masked
    assert "cards_through" not in asked(fresh, "/v1/sync/changes")[0]
    no_snapshots(hq)
    assert held(fresh) == held(make_chain("till-3"))


def test_a_part_spoilt_on_head_offices_disk_costs_only_the_time(
    make_chain: Any, hq: ChainHq, chain: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with hq.api.hq.db.write() as tx:
        tx.execute("UPDATE card_snapshot_parts SET data = ? WHERE seq = 0", (b"\x78\x9c" * 40,))
    with caplog.at_level(logging.WARNING, logger="tillgate.sync.snapshot"):
        fresh = make_chain("till-2")
    assert any("pulling every card in pages" in r.getMessage() for r in caplog.records)
    no_snapshots(hq)
    assert held(fresh) == held(make_chain("till-3"))


def test_a_till_that_has_pushed_is_not_offered_one_and_a_till_with_cards_asks_for_none(
    make_chain: Any, hq: ChainHq, chain: dict[str, Any]
) -> None:
    seller = chain["seller"]  # its data file holds every card: it asks for no snapshot
    seller.link.requests.clear()
    seller.syncer.pull()
    assert asked(seller, SNAPSHOT) == []
    reply = seller.syncer.client.card_snapshot()
    assert reply is None  # till-1 has pushed: the snapshot's counts would be its own too


def test_a_snapshot_the_disk_has_no_room_for_is_left_for_pages(
    make_chain: Any,
    hq: ChainHq,
    chain: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The disk as full as a till's can be: room for the pages, not for the file beside them.
    from tillgate.sync import snapshot

    real = shutil.disk_usage
    monkeypatch.setattr(
        snapshot.shutil,
        "disk_usage",
        lambda p: real(p)._replace(free=snapshot.SPARE_BYTES + chain["file_size"]),
    )
    with caplog.at_level(logging.WARNING, logger="tillgate.sync.snapshot"):
        fresh = make_chain("till-2")
    assert any("for want of disk" in r.getMessage() for r in caplog.records)
    assert asked(fresh, SNAPSHOT + "/parts") == []
    assert fresh.balance(NEW) == 120 and fresh.balance("2900000001001") == 250
