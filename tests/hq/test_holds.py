"""Head office's online holds (hq/holds.py) on SQLite and PostgreSQL: what it grants,
how holds end (once), what settles them, and grants racing on one card — from two head
office servers on one database, as several ``hq serve`` processes share one."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import COUPON10, program
from tests.hq.helpers import HqTest, TillClient, iso, start_hq
from tillgate.core.clock import ManualClock
from tillgate.core.rules.coupons import CouponSigner
from tillgate.hq.db import Tx
from tillgate.hq.holds import expire_due

CARD = "2900000000028"


def hold(till: TillClient, receipt: str, points: int = 0, **kw: Any) -> dict[str, Any]:
    body = {"receipt_id": receipt, "card": CARD, "points": points, "seconds": 300, **kw}
    r = till.http.post("/v1/holds", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


def resolve(till: TillClient, receipt: str, resolution: str, **kw: Any) -> str:
    body = {"receipt_id": receipt, "resolution": resolution, **kw}
    r = till.http.post("/v1/holds/resolve", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def active(hq: HqTest) -> list[dict[str, Any]]:
    r = hq.admin.get("/v1/admin/holds")
    assert r.status_code == 200, r.text
    return list(r.json()["holds"])


@pytest.fixture
def chain(hq: HqTest) -> tuple[TillClient, TillClient]:
    hq.publish(program(COUPON10, holds={"max_seconds": 120}))
    hq.cards(**{CARD: 1000})
    return hq.enroll("till-a"), hq.enroll("till-b")


def test_head_office_grants_what_the_chain_has(
    hq: HqTest, chain: tuple[TillClient, TillClient]
) -> None:
    a, b = chain
    first = hold(a, "A-1", 700)
    assert (first["granted"], first["available"], first["seconds"]) == (700, 1000, 120)
    second = hold(b, "B-1", 700)
    assert (second["granted"], second["available"]) == (300, 300)
    # Exact and not enough: nothing changes, the till is told what there is.
    exact = hold(b, "B-2", 301, exact=True)
    assert (exact["granted"], exact["refused"], exact["available"]) == (
        0,
        "insufficient_points",
        0,
    )
    # A calculates the same receipt again: its hold is replaced, not added to.
    assert hold(a, "A-1", 100)["granted"] == 100
    assert hold(b, "B-2", 600, exact=True)["granted"] == 600
    assert sorted(h["points"] for h in active(hq)) == [100, 300, 600]
    # A card head office does not know, or a blocked one, has nothing to grant.
    assert hold(a, "A-2", 50, card="2900000009999")["granted"] == 0


def test_a_hold_wakes_postgresql_twice(
    hq: HqTest, chain: tuple[TillClient, TillClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold is on a calculate's clock, and each round trip to PostgreSQL wakes the server:
    BEGIN, the credential's check and the hold's reads (the receipt's hold, the card locked,
    what other receipts hold of it) in one once head office knows the till; the hold's write
    with COMMIT. A till's first hold since head office started takes one more (its reads
    need its id). What is granted is as before."""
    a, b = chain
    hold(b, "B-1", 300)
    trips: list[str | None] = []
    real = Tx._send

    def counted(self: Tx, sql: str | None, params: tuple[object, ...]) -> object:
        trips.append(sql)
        return real(self, sql, params)

    monkeypatch.setattr(Tx, "_send", counted)
    assert hold(a, "A-1", 900)["granted"] == 700  # a's first: 3 round trips
    first = len(trips)
    assert hold(a, "A-1", 600)["granted"] == 600  # again: replaced, B's 300 still held
    assert hold(a, "A-2", 50, card="2900000009999")["granted"] == 0  # a card HQ lacks
    if hq.hq.db.dialect == "postgresql":
        assert first == 3 and len(trips) == 7 and trips[4] == trips[6] == "COMMIT", trips
    else:
        assert trips == []  # SQLite runs each statement at once, in the process
    assert sorted(h["points"] for h in active(hq)) == [300, 600]


def test_a_known_till_is_still_checked_first(
    hq: HqTest, chain: tuple[TillClient, TillClient]
) -> None:
    """Head office knowing a till only says which rows its hold reads: a revoked credential
    is refused at once, and a body that does not parse is refused after the credential's
    check, as for any till; neither writes anything."""
    a, _ = chain
    hold(a, "A-1", 100)
    r = a.http.post("/v1/holds", content=b'{"receipt_id": "A-2", "points": "many"}')
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text
    assert hq.admin.post(f"/v1/admin/tills/{a.id}/revoke").status_code == 200
    before = hq.snapshot()
    for body in (b'{"receipt_id": "A-2", "card": "' + CARD.encode() + b'", "points": 900}',
                 b'{"receipt_id": "A-2", "points": "many"}', b"{not json"):  # fmt: skip
        r = a.http.post("/v1/holds", content=body)
        assert r.status_code == 401 and "revoked" in r.json()["error"]["message"], r.text
    assert hq.snapshot() == before


def test_a_hold_ends_once(hq: HqTest, chain: tuple[TillClient, TillClient]) -> None:
    a, b = chain
    hold(a, "A-1", 400)
    assert resolve(a, "A-1", "confirmed", redeemed=350) == "confirmed"
    # The retry after a lost reply, and a late cancel, change nothing.
    assert resolve(a, "A-1", "confirmed", redeemed=350) == "confirmed"
    assert resolve(a, "A-1", "cancelled") == "confirmed"
    assert [(h["status"], h["redeemed"]) for h in active(hq)] == [("confirmed", 350)]
    assert hold(b, "B-1", 1000)["granted"] == 650
    # Another till cannot resolve A's hold: it resolves its own receipt of that id.
    assert resolve(b, "A-1", "cancelled") == "unknown"
    # The redeem entry arrives: the balance counts it, the hold no longer does.
    a.ok_push([a.next(CARD, "redeem", -350, receipt_id="A-1")])
    assert hq.card(CARD)["balance"] == 650
    assert [h["till"] for h in active(hq)] == ["till-b"]
    assert resolve(b, "B-1", "cancelled") == "released"
    assert active(hq) == []


def test_a_redeem_entry_settles_a_hold_whose_confirm_never_came(
    hq: HqTest, chain: tuple[TillClient, TillClient]
) -> None:
    a, _ = chain
    hold(a, "A-1", 400)
    reply = a.ok_push(
        [a.next(CARD, "redeem", -400, receipt_id="A-1")],
        holds=[{"receipt_id": "A-0", "resolution": "released"}],
    )
    assert reply["holds"] == ["A-0"]
    assert active(hq) == [] and hq.card(CARD)["balance"] == 600
    assert resolve(a, "A-1", "confirmed", redeemed=400) == "settled"


def test_time_ends_an_active_hold_not_a_confirmed_one(
    hq: HqTest, chain: tuple[TillClient, TillClient], clock: ManualClock
) -> None:
    a, b = chain
    hold(a, "A-1", 400)
    hold(a, "A-2", 300)
    resolve(a, "A-2", "confirmed", redeemed=300)
    clock.advance(seconds=121)  # [program.holds] max_seconds = 120
    # Past its time, but A has not pulled since: it may have confirmed A-1 while cut off
    # from head office, so the points stay reserved (and the job leaves the hold be).
    assert [h["receipt_id"] for h in active(hq)] == ["A-1", "A-2"]
    assert hold(b, "B-1", 1000)["granted"] == 300
    assert expire_due(hq.hq.db, clock.now()) == 0
    a.changes()  # A syncs (a sync pushes what it has, then pulls): now the hold is over
    assert [h["receipt_id"] for h in active(hq)] == ["A-2", "B-1"]
    assert hold(b, "B-1", 1000)["granted"] == 700
    assert expire_due(hq.hq.db, clock.now()) == 1
    assert resolve(a, "A-1", "confirmed", redeemed=400) == "expired"
    # A week on (both tills synced), the ended holds are gone; the confirmed one still
    # reserves its points.
    clock.advance(days=8)
    a.changes(), b.changes()
    expire_due(hq.hq.db, clock.now())
    clock.advance(days=8)
    expire_due(hq.hq.db, clock.now())
    assert hq.count("holds") == 1
    assert [h["receipt_id"] for h in active(hq)] == ["A-2"]


def test_a_coupon_code_is_held_by_one_receipt(
    hq: HqTest, chain: tuple[TillClient, TillClient], clock: ManualClock
) -> None:
    a, b = chain
    code, other, gone = (
        CouponSigner(bytes.fromhex(a.coupon_key)).issue(
            promotion_id="c10", serial=i, valid_until=clock.now().date()
        )
        for i in (1, 2, 3)
    )
    assert hold(a, "A-1", coupons=[code, other])["coupons"] == [
        {"code": c, "status": "reserved"} for c in sorted([code, other])
    ]
    assert hold(b, "B-1", coupons=[code])["coupons"] == [{"code": code, "status": "in_use"}]
    # A drops one code from its basket: it is free at once.
    hold(a, "A-1", coupons=[code])
    assert hold(b, "B-2", coupons=[other])["coupons"][0]["status"] == "reserved"
    # Confirmed: the code stays held until its use arrives, then it is used for good.
    resolve(a, "A-1", "confirmed", coupons=[code])
    clock.advance(seconds=3600)
    expire_due(hq.hq.db, clock.now())
    assert hold(b, "B-1", coupons=[code])["coupons"][0]["status"] == "in_use"
    a.ok_push(
        [],
        coupons_used=[
            {"code": code, "promotion_id": "c10", "receipt_id": "A-1", "used_at": iso(clock.now())}
        ],
    )
    assert hold(b, "B-1", coupons=[code])["coupons"][0]["status"] == "used"
    r = hq.admin.post("/v1/admin/coupons/revoke", json={"codes": [gone], "reason": "test"})
    assert r.status_code == 200, r.text
    assert hold(b, "B-3", coupons=[gone])["coupons"][0]["status"] == "revoked"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_request"),
        (b'{"receipt_id": "R", "points": -1}', 400, "invalid_request"),
        (b'{"receipt_id": "R", "points": 1.5}', 400, "invalid_request"),
        (b'{"receipt_id": "R", "seconds": 0}', 400, "invalid_request"),
        (b'{"receipt_id": "", "points": 1}', 400, "invalid_request"),
        (b"[]", 400, "invalid_request"),
    ],
)
def test_a_bad_hold_request_is_refused_and_writes_nothing(
    hq: HqTest, chain: tuple[TillClient, TillClient], body: bytes, status: int, code: str
) -> None:
    a, _ = chain
    r = a.http.post("/v1/holds", content=body, headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert hq.count("holds") == 0


def test_only_an_enrolled_till_may_hold(hq: HqTest, chain: tuple[TillClient, TillClient]) -> None:
    body = {"receipt_id": "R", "card": CARD, "points": 10}
    assert hq.client().post("/v1/holds", json=body).status_code == 401
    assert hq.client("not-a-credential").post("/v1/holds", json=body).status_code == 401
    assert hq.admin.post("/v1/holds", json=body).status_code == 403
    r = hq.client("x").post("/v1/holds/resolve", json={"receipt_id": "R", "resolution": "x"})
    assert r.status_code == 401
    assert hq.count("holds") == 0


@pytest.fixture
def second_hq(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[HqTest]:
    """A second head office server on the same database (two ``hq serve`` processes)."""
    # Every head-office process of one database holds the same coupon keys (copied).
    shutil.copytree(tmp_path / "keys", tmp_path / "second" / "keys")
    test, stop = start_hq(db_url, tmp_path / "second", clock)
    try:
        yield test
    finally:
        stop()


def test_grants_racing_on_one_card_never_exceed_it(
    hq: HqTest, second_hq: HqTest, chain: tuple[TillClient, TillClient]
) -> None:
    tills = [hq.enroll(f"till-{i}") for i in range(6)]
    # Half of the tills talk to the other server: the database is what they share.
    for t in tills[::2]:
        t.http = second_hq.client(t.credential)
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(len(tills))

    def work(t: TillClient) -> None:
        start.wait()
        for n in range(8):
            g = hold(t, f"{t.id}-{n}", 90)["granted"]
            with lock:
                granted.append(g)

    threads = [threading.Thread(target=work, args=(t,)) for t in tills]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert len(granted) == 48
    # 48 asks of 90 points against 1000: exactly what the card holds is granted, no more.
    assert sum(granted) == 1000
    assert sum(h["points"] for h in active(hq)) == 1000


def test_the_kept_balance_follows_lots_that_mature_and_expire(
    hq: HqTest, chain: tuple[TillClient, TillClient], clock: ManualClock
) -> None:
    a, _ = chain
    # 300 spendable now that expire in 10 days; 200 pending for 5 days (no expiry).
    a.ok_push(
        [
            a.next(CARD, "accrue", 300, at=clock.now(), expiry_days=10),
            a.next(CARD, "accrue", 200, at=clock.now(), delay_days=5),
        ]
    )
    assert hold(a, "A-1", 5000)["available"] == 1300
    with hq.hq.db.read() as tx:
        until = tx.scalar("SELECT balance_until FROM cards WHERE number = ?", (CARD,))
    assert until == iso(clock.now() + timedelta(days=5)).replace("+00:00", ".000000+00:00")
    clock.advance(days=6)  # the pending lot became spendable: the kept balance is stale
    assert hold(a, "A-1", 5000)["available"] == 1500
    clock.advance(days=5)  # the 300 expired (head office has not written the expire yet)
    assert hold(a, "A-1", 5000)["available"] == 1200
