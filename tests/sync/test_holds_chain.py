"""One chain, one ledger, with real processes: ``tillgate hq serve`` and two ``tillgate run``.

Observed before online holds: five rounds of ``redeem: "max"`` at two online tills on a
2,000-point card spent 2,950 points and left head office at −202. Each till reserves at
head office now, in its calculate, what it redeems; head office grants only what the
card has chain-wide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BORIS, COUPON10, program
from tests.sync.procs import (
    Hq,
    TillProc,
    hq_entries,
    make_till,
    running,
    start_all,
    wait_until,
)

pytestmark = pytest.mark.slow

LIMITS = {"max_hours": 24, "redeem_per_card": 100, "redeem_per_till": 5000}


@pytest.fixture
def hq(tmp_path: Path) -> Iterator[Hq]:
    server = Hq(tmp_path / "hq").start()
    # No delay, no expiry: balances are exact sums. BORIS is gold: 5% of what is paid.
    server.push_program(program(COUPON10, accrual_delay_days=0, expiry_days=0, offline=LIMITS))
    server.import_cards(f"number,holder,tier,balance\n{BORIS},Борис,gold,2000\n")
    yield server
    server.stop()


@pytest.fixture
def pair(hq: Hq, tmp_path: Path) -> Iterator[tuple[TillProc, TillProc]]:
    tills = [make_till(hq, tmp_path, name) for name in ("till-a", "till-b")]
    with running(*tills):
        start_all(tills)
        wait_until("both tills online", lambda: all(t.synced() for t in tills))
        yield tills[0], tills[1]


def calculate(till: TillProc, receipt: str, amount: str, **extra: Any) -> httpx.Response:
    body = {
        "receipt_id": receipt,
        "card": BORIS,
        "lines": [{"sku": "A", "name": "a", "qty": 1, "price": amount}],
        **extra,
    }
    return till.post("/v1/receipts/calculate", body)


def holds_at(hq: Hq) -> list[dict[str, Any]]:
    return list(hq.ok("GET", "/v1/admin/holds")["holds"])


def ledger_sum(hq: Hq, kind: str) -> int:
    return sum(e["points"] for e in hq_entries(hq, [BORIS]) if e["kind"] == kind)


def test_two_online_tills_never_spend_more_than_the_card_holds(
    hq: Hq, pair: tuple[TillProc, TillProc]
) -> None:
    tills = list(pair)
    lowest = 2000
    for n in range(50):
        start = threading.Barrier(2)
        answers: dict[str, int] = {}

        def sell(
            till: TillProc,
            n: int = n,
            start: threading.Barrier = start,
            answers: dict[str, int] = answers,
        ) -> None:
            start.wait()
            r = calculate(till, f"{till.name}-{n}", "1500.00", redeem="max")
            assert r.status_code == 200, r.text
            assert r.json()["offline"] is False
            c = till.post(f"/v1/receipts/{till.name}-{n}/confirm")
            assert c.status_code == 200, c.text
            answers[till.name] = c.json()["redeemed"]["points"]

        threads = [threading.Thread(target=sell, args=(t,)) for t in tills]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=30)
        assert len(answers) == 2, f"round {n}: a sale failed"
        lowest = min(lowest, hq.card(BORIS)["balance"])
    wait_until(
        "every entry at head office",
        lambda: all(t.status()["unsynced_entries"] == 0 for t in tills),
    )
    redeemed = -ledger_sum(hq, "redeem")
    accrued = ledger_sum(hq, "accrue")
    assert redeemed > 2000  # the rounds spent the card and what it earned meanwhile
    assert redeemed <= 2000 + accrued
    assert hq.card(BORIS)["balance"] == 2000 + accrued - redeemed >= 0
    assert lowest >= 0
    wait_until("no hold left", lambda: holds_at(hq) == [])


def test_a_coupon_is_used_once_across_online_tills(hq: Hq, pair: tuple[TillProc, TillProc]) -> None:
    a, b = pair
    first, second = hq.ok("POST", "/v1/admin/coupons/issue", json={"promotion": "c10", "count": 2})[
        "codes"
    ]
    assert calculate(a, "A-1", "100.00", coupons=[first]).json()["coupons"]["applied"] == [first]
    # A's receipt is open: B is refused the code.
    rb = calculate(b, "B-1", "100.00", coupons=[first]).json()
    assert rb["coupons"] == {"applied": [], "rejected": [{"code": first, "reason": "in_use"}]}
    assert a.post("/v1/receipts/A-1/confirm").status_code == 200
    # Confirmed at A: still refused at B, before and after the use reaches B's cache.
    rb = calculate(b, "B-1", "100.00", coupons=[first]).json()
    assert rb["coupons"]["applied"] == []
    wait_until(
        "the use known at B",
        lambda: (
            calculate(b, "B-1", "100.00", coupons=[first]).json()["coupons"]["rejected"]
            == [{"code": first, "reason": "used"}]
        ),
    )
    # A cancels an open receipt with the second code: B may use it.
    assert calculate(a, "A-2", "100.00", coupons=[second]).json()["coupons"]["applied"]
    assert calculate(b, "B-2", "100.00", coupons=[second]).json()["coupons"]["applied"] == []
    assert a.post("/v1/receipts/A-2/cancel").status_code == 200
    rb = calculate(b, "B-2", "100.00", coupons=[second]).json()
    assert rb["coupons"]["applied"] == [second]
    assert b.post("/v1/receipts/B-2/confirm").status_code == 200
    wait_until("every push done", lambda: all(t.status()["unsynced_entries"] == 0 for t in pair))
    assert hq.ok("GET", "/v1/admin/flags")["coupon_double_uses"] == []


def test_head_office_stopped_mid_way(hq: Hq, pair: tuple[TillProc, TillProc]) -> None:
    tills = list(pair)
    for t in tills:
        assert calculate(t, f"{t.name}-0", "300.00", redeem="max").json()["offline"] is False
        assert t.post(f"/v1/receipts/{t.name}-0/confirm").status_code == 200
    hq.stop()
    # Open receipts still hold at (the stopped) head office; new ones fall back at once.
    slowest = 0.0
    for n in range(1, 6):
        for t in tills:
            began = time.monotonic()
            r = calculate(t, f"{t.name}-{n}", "300.00", redeem="max")
            slowest = max(slowest, time.monotonic() - began)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["offline"] is True
            # program.offline.redeem_per_card (100) across the receipts of the spell.
            assert body["redeemed"]["points"] <= 100
            assert t.post(f"/v1/receipts/{t.name}-{n}/confirm").status_code == 200
    # sync.hold_timeout_ms = 300: a refused connection answers sooner; never much later.
    assert slowest < 1.5
    hq.start()
    wait_until(
        "every till synced again",
        lambda: all(
            t.status()["unsynced_entries"] == 0 and not t.status()["offline"] for t in tills
        ),
        timeout=60,
    )
    assert holds_at(hq) == []
    at_hq = hq.card(BORIS)["balance"]
    wait_until("the tills' caches match HQ", lambda: all(t.balance(BORIS) == at_hq for t in tills))
    # Every entry of both tills, online and offline, is at head office exactly once.
    ids = [e["id"] for e in hq_entries(hq, [BORIS]) if e["till"] != "hq"]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(i for t in tills for i, *_ in t.ledger())
    # Online again: the next receipts reserve at head office.
    r = calculate(tills[0], "after", "300.00", redeem="max").json()
    assert r["offline"] is False
    assert [h["receipt_id"] for h in holds_at(hq)] == ["after"]
