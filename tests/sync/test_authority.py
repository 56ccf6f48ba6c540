"""Head office is the authority, end to end: real ``hq serve``, two real ``tillgate run`` tills.

An attacker owns till A: its disk, so its credential. He pushes straight to head office
what no till makes — a till-written ``adjust`` of 10^9 points, an accrual of 10^12, an
accrual for a card nobody knows, A's own ``expire`` of a lot, an entry dated 9999-12-31 —
plus an entry an hour ahead of head office's clock (a till whose clock ran fast), and
leaves them in A's ledger as sent. Head office quarantines each one; ``hq flags list``
shows them; till B never sees their points; A, started again, goes on selling and syncing
after them; ``hq flags release`` and ``reject`` and ``hq cards adjust`` bring both tills to
head office's balance.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ANNA, BORIS, program
from tests.sync.procs import (
    Hq,
    assert_facts_at_hq_once,
    hq_verb,
    make_till,
    running,
    start_all,
    wait_until,
)

pytestmark = pytest.mark.slow

STRANGER = "2900000077777"  # no such card at head office
CARDS_CSV = f"number,holder,tier,balance\n{ANNA},Анна,silver,100\n{BORIS},Борис,gold,0\n"


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[Hq]:
    server = Hq(tmp_path / "hq").start()
    server.import_cards(CARDS_CSV)
    # No accrual delay and no expiry: a balance is exactly the sum of what counts.
    server.push_program(
        program(
            accrual_delay_days=0,
            expiry_days=0,
            register_unknown_cards=False,
            offline={"max_hours": 24, "redeem_per_card": 100, "redeem_per_till": 5000},
        )
    )
    yield server
    server.stop()


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat()


def _forged(till: str, first_seq: int, lot_of_a: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    specs: list[dict[str, Any]] = [
        {"kind": "adjust", "card": ANNA, "points": 10**9},
        {"kind": "accrue", "card": ANNA, "points": 10**12, "receipt_id": "X-1"},
        {"kind": "accrue", "card": STRANGER, "points": 5000, "receipt_id": "X-2"},
        {"kind": "expire", "card": ANNA, "points": -10, "ref": lot_of_a},
        {"kind": "accrue", "card": ANNA, "points": 777, "receipt_id": "X-3", "at": "9999"},
        {"kind": "accrue", "card": ANNA, "points": 30, "receipt_id": "X-4", "at": "+1h"},
    ]
    out = []
    for i, spec in enumerate(specs):
        at = {
            None: now,
            "9999": datetime(9999, 12, 31, tzinfo=UTC),
            "+1h": now + timedelta(hours=1),
        }[spec.pop("at", None)]
        accrue = spec["kind"] == "accrue"
        out.append(
            {
                "id": uuid.uuid4().hex,
                "seq": first_seq + i,
                "till": till,
                "receipt_id": None,
                "refund_id": None,
                "ref": None,
                "note": None,
                "created_at": _iso(at),
                "available_from": _iso(now) if accrue else None,
                "expires_at": None,
                **spec,
            }
        )
    return out


ROW = re.compile(r"^\s*\d+\s+till-")  # a flag's line in ``hq flags list``


def _flag_ids(listing: str) -> dict[str, str]:
    """``hq flags list``'s table: reason code → flag id."""
    ids: dict[str, str] = {}
    for line in listing.splitlines():
        m = re.match(r"^\s*(\d+)\s+till-\S+\s+\S+\s+(\S+)\s+([+-]?\d+)\s", line)
        if m:
            ids.setdefault(f"{m[2]}:{int(m[3])}", m[1])
    return ids


def test_a_till_credential_cannot_make_points_and_never_wedges(hq: Hq, tmp_path: Path) -> None:
    a, b = make_till(hq, tmp_path, "till-a"), make_till(hq, tmp_path, "till-b")
    with running(a, b):
        start_all([a, b])
        wait_until("tills online", lambda: a.synced() and b.synced())
        a.sale("A-1", "100.00", ANNA)
        wait_until("A's sale pushed", a.synced)
        base = hq.card(ANNA)["balance"]
        assert base > 100
        wait_until("B has A's sale", lambda: b.balance(ANNA) == base)

        # The attacker: till A's credential, entries straight to head office.
        a.stop()
        ledger = a.ledger()
        lot_of_a = next(e[0] for e in ledger if e[3] == "accrue")
        forged = _forged("till-a", ledger[-1][1] + 1, lot_of_a)
        pushed_at = datetime.now(UTC)
        r = httpx.post(
            f"{hq.url}/v1/sync/push",
            json={"till": "till-a", "entries": forged},
            headers={"Authorization": f"Bearer {a.credential()}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        a.adopt(forged)

        # Till B, after its next whole sync, honours none of it.
        wait_until("B synced after the attack", lambda: b.synced_since(pushed_at))
        assert b.balance(ANNA) == base == hq.card(ANNA)["balance"]
        assert httpx.get(f"{b.url}/v1/cards/{STRANGER}", timeout=5).status_code == 404

        reply = r.json()
        assert reply["through_seq"] == forged[-1]["seq"]
        assert [q["code"] for q in reply["quarantined"]] == [
            "hq_only_kind",
            "points_out_of_bounds",
            "unknown_card",
            "hq_only_kind",
            "future",
            "future",
        ]

        listed = hq_verb(hq, "flags", "list")
        assert listed.returncode == 0, listed.stderr
        rows = [ln for ln in listed.stdout.splitlines() if ROW.match(ln)]
        assert len(rows) == 6, listed.stdout
        assert ANNA not in listed.stdout and "2900•••••0011" in listed.stdout
        ids = _flag_ids(listed.stdout)
        assert set(ids) >= {"adjust:1000000000", "accrue:30", "accrue:777"}

        # A, started again, sells; its honest entries flow past the quarantined ones.
        a.start()
        a.sale("A-2", "200.00", ANNA)
        wait_until("A's later sale pushed", a.synced)
        after = hq.card(ANNA)["balance"]
        assert after > base
        wait_until(
            "both tills at head office's balance",
            lambda: a.balance(ANNA) == b.balance(ANNA) == after,
        )

        # Reject the adjust, release the entry of the till whose clock ran fast.
        rejected = hq_verb(hq, "flags", "reject", ids["adjust:1000000000"], "--reason", "forged")
        assert rejected.returncode == 0, rejected.stderr
        released = hq_verb(hq, "flags", "release", ids["accrue:30"], "--reason", "clock fixed")
        assert released.returncode == 0, released.stderr
        assert hq.card(ANNA)["balance"] == after + 30
        wait_until(
            "both tills at head office's balance after the decisions",
            lambda: a.balance(ANNA) == b.balance(ANNA) == after + 30,
        )
        # Head office's own correction reaches both tills like any balance change.
        adjusted = hq_verb(hq, "cards", "adjust", ANNA, "-50", "--reason", "duplicate sale")
        assert adjusted.returncode == 0, adjusted.stderr
        wait_until(
            "both tills see head office's adjust",
            lambda: a.balance(ANNA) == b.balance(ANNA) == after - 20,
        )
        left = hq_verb(hq, "flags", "list")
        assert len([ln for ln in left.stdout.splitlines() if ROW.match(ln)]) == 4
        assert a.status()["last_sync_error"] is None
        # Every receipt rung is at head office as facts once, and re-priced clean.
        assert_facts_at_hq_once(hq, [a, b])


def test_the_tills_parser_takes_a_reply_with_quarantined_entries() -> None:
    """The push reply gained ``quarantined``; a till that does not know it ignores it."""
    from tillgate.sync.wire import PushReply, parse

    reply = parse(
        PushReply,
        {
            "through_seq": 9,
            "stored": 3,
            "duplicates": 0,
            "conflicts": [],
            "quarantined": [
                {"seq": 8, "id": "e8", "flag": 4, "code": "hq_only_kind", "reason": "…"}
            ],
            "negative_cards": [],
            "coupon_double_uses": [],
        },
        what="push reply",
    )
    assert (reply.through_seq, reply.stored, reply.conflicts) == (9, 3, [])


def test_an_accrual_its_own_facts_contradict_is_quarantined_and_never_spent(
    tmp_path: Path,
) -> None:
    hq = Hq(tmp_path / "hq").start()
    try:
        hq.import_cards(CARDS_CSV)
        # Points wait a day before they can be spent (real programs wait 14): re-pricing,
        # seconds after the push, decides long before a forged accrual could be spent.
        hq.push_program(program(accrual_delay_days=1, expiry_days=0))
        a, b = make_till(hq, tmp_path, "till-a"), make_till(hq, tmp_path, "till-b")
        with running(a, b):
            start_all([a, b])
            wait_until("tills online", lambda: a.synced() and b.synced())
            a.sale("A-1", "100.00", ANNA)
            wait_until("A's sale and its facts at head office", a.synced)
            assert_facts_at_hq_once(hq, [a])
            honest = hq.card(ANNA)
            wait_until("B has A's sale", lambda: b.pending(ANNA) == honest["pending"])

            # Till A's credential: an accrual of 50 000 points with facts (A-1's, the very
            # basket) whose engine gives what A-1 earned — the facts contradict the entry.
            a.stop()
            ledger = a.ledger()
            fact = hq.fact("till-a", "sale:A-1")  # the till forgot it once synced
            now = datetime.now(UTC)
            entry = {
                "id": uuid.uuid4().hex,
                "seq": ledger[-1][1] + 1,
                "till": "till-a",
                "card": ANNA,
                "kind": "accrue",
                "points": 50_000,
                "receipt_id": "X-9",
                "refund_id": None,
                "ref": None,
                "note": None,
                "created_at": _iso(now),
                "available_from": _iso(now + timedelta(days=1)),
                "expires_at": None,
            }
            calc = fact["calculation"]
            calc["outcome"]["accrued_points"] = 50_000
            forged_fact = {
                "id": "sale:X-9",
                "kind": "sale",
                "receipt_id": "X-9",
                "after_seq": entry["seq"],
                "created_at": _iso(now),
                "body": fact | {"receipt_id": "X-9", "accrued": 50_000, "calculation": calc},
            }
            r = httpx.post(
                f"{hq.url}/v1/sync/push",
                json={"till": "till-a", "entries": [entry], "facts": [forged_fact]},
                headers={"Authorization": f"Bearer {a.credential()}"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            assert r.json()["facts"] == ["sale:X-9"]
            a.adopt([entry])

            # hq serve re-prices apart from the push: the accrual goes to quarantine.
            def repriced() -> str | None:
                out = hq_verb(hq, "flags", "list").stdout
                return out if "repricing" in out else None

            listed = wait_until("the accrual quarantined by re-pricing", repriced)
            assert "X-9" in listed and ANNA not in listed
            assert hq.card(ANNA)["pending"] == honest["pending"]
            wait_until(
                "B at head office's view",
                lambda: (
                    b.pending(ANNA) == honest["pending"] and b.balance(ANNA) == honest["balance"]
                ),
            )

            # A's later honest sales flow past it; reject keeps it out everywhere.
            a.start()
            a.sale("A-2", "200.00", ANNA)
            wait_until("A's later sale pushed", a.synced)
            flag = _flag_ids(hq_verb(hq, "flags", "list").stdout)["accrue:50000"]
            rejected = hq_verb(hq, "flags", "reject", flag, "--reason", "forged")
            assert rejected.returncode == 0, rejected.stderr
            after = hq.card(ANNA)
            assert after["pending"] < honest["pending"] + 50_000
            wait_until(
                "both tills at head office's view",
                lambda: a.pending(ANNA) == b.pending(ANNA) == after["pending"],
            )
            # Every honest receipt re-priced clean (the forged one is A's only disagreement).
            assert hq_verb(hq, "flags", "list", "--all").stdout.count("repricing") == 1
    finally:
        hq.stop()
