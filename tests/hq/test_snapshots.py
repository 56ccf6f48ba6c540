"""Head office's card snapshots (hq/snapshots.py), on SQLite and PostgreSQL.

A snapshot is every card as a page would bring it to a till with nothing of its own,
built once into a SQLite file kept in the database in parts; a fresh till downloads it and
then pulls the pages with ``cards_through``, which leave out the card changes it holds.
The till's side is tests/sync/test_card_snapshot.py.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from pathlib import Path
from typing import Any

from tests.hq.helpers import HqTest
from tests.hq.test_counters import sale
from tillgate.hq import snapshots
from tillgate.hq.jobs import alone


def build(hq: HqTest) -> dict[str, Any]:
    r = hq.admin.post("/v1/admin/cards/snapshot")
    assert r.status_code == 200, r.text
    return dict(r.json())


def download(hq: HqTest, credential: str, info: dict[str, Any], tmp: Path) -> sqlite3.Connection:
    """The snapshot's file as a till gets it, checked against what head office said."""
    http = hq.client(credential)
    got = b""
    for seq in range(info["parts"]):
        r = http.get("/v1/sync/card-snapshot/parts", params={"id": info["id"], "seq": seq})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/octet-stream"
        assert len(r.content) <= snapshots.PART_BYTES
        got += r.content
    assert len(got) == info["size"] and hashlib.sha256(got).hexdigest() == info["sha256"]
    path = tmp / f"snapshot-{info['id']}.sqlite3"
    path.write_bytes(zlib.decompress(got))
    assert path.stat().st_size == info["file_size"]
    return sqlite3.connect(path)


def test_a_snapshot_holds_every_card_as_a_fresh_tills_first_page_does(
    hq: HqTest, tmp_path: Path
) -> None:
    hq.publish()
    hq.cards("2900000000001", "2900000000002", **{"2900000000003": 150})
    other = hq.enroll("till-9")  # a till with sales: its counts and entries are every till's
    other.ok_push([other.next("2900000000002", "accrue", 40)], facts=[sale("R-1", "2900000000002")])
    till = hq.enroll("till-1")

    info = build(hq)
    assert info["cards"] == 3 and info["change_id"] == max_change(hq) and info["format"] == 1
    offered = till.http.get("/v1/sync/card-snapshot")
    assert offered.status_code == 200 and offered.json() == info
    with download(hq, till.credential, info, tmp_path) as file:
        rows = file.execute(
            f"SELECT {', '.join(snapshots.COLUMNS)} FROM cards ORDER BY number"
        ).fetchall()
        values = dict(file.execute("SELECT name, value FROM snapshot").fetchall())
    assert values["change_id"] == info["change_id"] and values["cards"] == 3
    assert values["lookup_key"] == hq.hq.lookup_key.hex()

    # The same cards a fresh till's first page brings, value for value.
    page = till.changes()
    by_number = {c["number"]: c for c in page["cards"]}
    assert [r[0] for r in rows] == sorted(by_number)
    for row in rows:
        card = by_number[row[0]]
        _number, holder, phone_hash, birthday, tier, segments, clubs, status = row[:8]
        assert (holder, birthday, tier, status) == (
            card["holder"],
            card["birthday"],
            card["tier"],
            card["status"],
        )
        assert (phone_hash.hex() if phone_hash else None) == card["phone_hash"]
        balance, pending, lots, uses, held = row[8:]
        assert (balance, pending, held) == (card["balance"], card["pending"], card["held"])
        assert (segments, clubs) == ("[]", "[]")
        assert snapshots.msgspec.json.decode(lots) == card["lots"]
        assert snapshots.msgspec.json.decode(uses) == card["uses"]
    assert by_number["2900000000003"]["lots"] and by_number["2900000000002"]["uses"]


def max_change(hq: HqTest) -> int:
    with hq.hq.db.read() as tx:
        return int(tx.scalar("SELECT MAX(id) FROM changes"))


def test_pages_after_a_snapshot_leave_out_the_cards_it_holds(hq: HqTest) -> None:
    hq.publish()
    hq.cards(*(f"29000000000{i:02d}" for i in range(10)))
    info = build(hq)
    hq.cards("2900000000003")  # changed after the snapshot: a change above its id
    revoked = hq.admin.post("/v1/admin/coupons/revoke", json={"codes": ["TGONE"]})
    assert revoked.status_code == 200, revoked.text
    till = hq.enroll()

    def page(cursor: int, limit: int = 500) -> dict[str, Any]:
        params = {"cursor": cursor, "limit": limit, "cards_through": info["change_id"]}
        r = till.http.get("/v1/sync/changes", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    whole = page(0)
    assert [c["number"] for c in whole["cards"]] == ["2900000000003"]
    assert whole["program"] is not None  # the program's change is below the snapshot's id
    assert [r["code"] for r in whole["coupons_revoked"]] == ["TGONE"]
    assert whole["cursor"] == max_change(hq) and whole["more"] is False

    # One change a page: the program's, then (past the snapshot's id) the rest, in order.
    seen, cursor, more = [], 0, True
    while more:
        p = page(cursor, 1)
        seen += [c["number"] for c in p["cards"]] + [r["code"] for r in p["coupons_revoked"]]
        seen += ["program"] if p["program"] else []
        assert p["cursor"] > cursor or not p["more"]
        cursor, more = p["cursor"], p["more"]
    assert sorted(seen) == sorted(["program", "2900000000003", "TGONE"])
    assert cursor == max_change(hq)
    # A till past the snapshot's id is asked nothing different.
    assert page(info["change_id"]) == till.changes(info["change_id"])


def test_only_a_till_with_nothing_of_its_own_is_offered_one(hq: HqTest) -> None:
    hq.publish()
    hq.cards("2900000000001")
    fresh, pushed = hq.enroll("till-1"), hq.enroll("till-2")
    assert fresh.http.get("/v1/sync/card-snapshot").status_code == 404  # none built yet
    info = build(hq)
    pushed.ok_push([pushed.next("2900000000001", "accrue", 5)])
    assert fresh.http.get("/v1/sync/card-snapshot").json()["id"] == info["id"]
    refused = pushed.http.get("/v1/sync/card-snapshot")
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "not_found"
    # No till credential, no snapshot: not the admin's token, not a stranger's.
    assert hq.admin.get("/v1/sync/card-snapshot").status_code == 403
    assert hq.client("nobody").get("/v1/sync/card-snapshot").status_code == 401
    parts = "/v1/sync/card-snapshot/parts"
    assert hq.client("nobody").get(parts, params={"id": 1, "seq": 0}).status_code == 401
    gone = fresh.http.get(parts, params={"id": info["id"], "seq": info["parts"]})
    assert gone.status_code == 404
    assert fresh.http.get(parts, params={"id": -1, "seq": 0}).status_code == 400


def test_the_job_builds_when_due_and_keeps_the_two_newest(hq: HqTest) -> None:
    hq.publish()
    hq.cards(*(f"29000000000{i:02d}" for i in range(20)))
    db, key, clock = hq.hq.db, hq.hq.lookup_key, hq.clock

    def job() -> str | None:
        return snapshots.refresh(db, lookup_key=key, clock=clock, min_cards=10)

    assert snapshots.refresh(db, lookup_key=key, clock=clock, min_cards=21) is None  # too few
    assert "20 cards and no snapshot" in (job() or "")
    assert job() is None  # nothing changed
    hq.adjust("2900000000001", 5)  # one card in 20: under a tenth
    assert job() is None
    clock.advance(days=1)
    assert "a day old" in (job() or "")
    hq.adjust("2900000000001", 5)
    hq.adjust("2900000000002", 5)  # two in 20: a tenth
    assert "2 of 20 cards changed" in (job() or "")
    kept = [r["id"] for r in rows(hq, "SELECT id FROM card_snapshots ORDER BY id")]
    assert kept == [2, 3]
    assert {r["snapshot"] for r in rows(hq, "SELECT snapshot FROM card_snapshot_parts")} == {2, 3}
    # Only those made with the look-up key in force are offered.
    with db.read() as tx:
        assert snapshots.latest(tx, b"another key" * 3) is None
        found = snapshots.latest(tx, key)
    assert found is not None and found.id == 3
    audit = rows(hq, "SELECT action FROM audit WHERE action = 'cards.snapshot'")
    assert audit == []  # the job's builds are logged, not audited; an admin's are
    build(hq)
    audit = rows(hq, "SELECT action FROM audit WHERE action = 'cards.snapshot'")
    assert audit == [{"action": "cards.snapshot"}]


def rows(hq: HqTest, sql: str) -> list[dict[str, Any]]:
    with hq.hq.db.read() as tx:
        return [dict(r) for r in tx.all(sql)]


def test_one_build_at_a_time_the_jobs_or_an_admins(hq: HqTest) -> None:
    hq.publish()
    hq.cards("2900000000001")
    with alone(hq.hq.db, snapshots.JOB, owner="another process", now=hq.clock.now()) as mine:
        assert mine
        r = hq.admin.post("/v1/admin/cards/snapshot")
    assert r.status_code == 409 and r.json()["error"]["code"] == "job_busy"
    assert hq.count("card_snapshots") == 0
    assert build(hq)["cards"] == 1  # the lock given back: the next one builds
