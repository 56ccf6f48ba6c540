"""Chain-wide counters at head office: counted once from the receipt facts, per till, and
sent to each till as what the *other* tills counted (hq/counters.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS
from tests.hq.helpers import T0, HqTest, TillClient, iso

DAY = T0.date().isoformat()  # 2026-11-23, the clock's day (UTC and Moscow alike)


def sale(
    receipt: str,
    card: Any,
    *,
    total: Any = "100.00",
    local_time: Any = f"{DAY}T09:00:00",
    uses: Any = None,
    budget: Any = None,
    stamps: Any = None,
    **body: Any,
) -> dict[str, Any]:
    """A sale's facts as a till pushes them (agent/usecases/checkout.py ``_sale_facts``);
    ``Any``: the tests also send what no till writes."""
    return {
        "id": f"sale:{receipt}",
        "kind": "sale",
        "receipt_id": receipt,
        "after_seq": 0,
        "created_at": iso(T0),
        "body": {
            "receipt_id": receipt,
            "card": card,
            "local_time": local_time,
            "total": total,
            "uses": uses or [],
            "budget": budget or {},
            "stamps": stamps or {},
            **body,
        },
    }


def refund(refund_id: str, receipt: str, card: Any, amount: Any, **body: Any) -> Any:
    """A refund's facts (agent/usecases/returns.py: ``amount_returned`` in kopecks; a
    money string reads too)."""
    return {
        "id": f"refund:{refund_id}",
        "kind": "refund",
        "receipt_id": receipt,
        "after_seq": 0,
        "created_at": iso(T0),
        "body": {
            "receipt_id": receipt,
            "refund_id": refund_id,
            "card": card,
            "at": iso(T0 + timedelta(days=2)),
            "amount_returned": amount,
            **body,
        },
    }


def cards_of(page: dict[str, Any]) -> dict[str, Any]:
    return {c["number"]: c["uses"] for c in page["cards"]}


def counters(hq: HqTest, till: str) -> dict[tuple[str, str, str], int]:
    with hq.hq.db.read() as tx:
        rows = tx.all("SELECT card, name, day, value FROM card_counters WHERE till = ?", (till,))
    return {(r["card"], r["name"], r["day"]): int(r["value"]) for r in rows}


@pytest.fixture
def tills(hq: HqTest) -> tuple[TillClient, TillClient]:
    hq.publish()
    hq.cards(ANNA, BORIS)
    return hq.enroll("till-1"), hq.enroll("till-2")


def test_a_sale_counts_for_every_other_till(hq: HqTest, tills: Any) -> None:
    one, two = tills
    fact = sale(
        "R-1",
        ANNA,
        total="123.45",
        uses=["p-2", "p-1"],
        budget={"p-1": 10},
        stamps={"st": 2},
    )
    assert one.ok_push([], facts=[fact])["facts"] == ["sale:R-1"]
    counts = {
        "visits": 1,
        "spend": [[DAY, 12345]],
        "uses": {"p-1": {"total": 1, "days": {DAY: 1}}, "p-2": {"total": 1, "days": {DAY: 1}}},
        "stamps": {"st": 1},
    }
    page = two.changes(0)
    assert cards_of(page)[ANNA] == counts and cards_of(page)[BORIS] == {}
    assert page["budgets"] == {"p-1": 10}
    # The till that sold counts its own receipt itself: head office sends it nothing of it.
    page = one.changes(0)
    assert cards_of(page)[ANNA] == {} and page["budgets"] == {"p-1": 0}
    # A second sale at another till adds up; each till still sees only the others'.
    two.ok_push([], facts=[sale("S-1", ANNA, total="1.00", uses=["p-1"], budget={"p-1": 5})])
    assert cards_of(one.changes(0))[ANNA] == {
        "visits": 1,
        "spend": [[DAY, 100]],
        "uses": {"p-1": {"total": 1, "days": {DAY: 1}}},
        "stamps": {},
    }
    assert one.changes(0)["budgets"] == {"p-1": 5} and two.changes(0)["budgets"] == {"p-1": 10}
    third = hq.enroll("till-3")
    page = third.changes(0)
    assert cards_of(page)[ANNA]["visits"] == 2 and page["budgets"] == {"p-1": 15}
    assert cards_of(page)[ANNA]["spend"] == [[DAY, 12445]]


def test_a_fact_sent_again_counts_once(hq: HqTest, tills: Any) -> None:
    one, two = tills
    fact = sale("R-1", ANNA, uses=["p"], budget={"p": 7}, stamps={"st": 1})
    one.ok_push([], facts=[fact])
    before = counters(hq, "till-1")
    # A lost reply: the till sends the same facts again, with its next ones.
    reply = one.ok_push([], facts=[fact, sale("R-2", BORIS), fact])
    assert reply["facts"] == ["sale:R-1", "sale:R-2", "sale:R-1"]
    after = counters(hq, "till-1")
    assert {k: v for k, v in after.items() if k[0] == ANNA} == before
    assert before == {
        (ANNA, "visit", DAY): 1,
        (ANNA, "spend", DAY): 10000,
        (ANNA, "use:p", DAY): 1,
        (ANNA, "stamp:st", DAY): 1,
    }
    assert two.changes(0)["budgets"] == {"p": 7}


def test_a_refund_lowers_the_spend_of_its_sales_day(hq: HqTest, tills: Any) -> None:
    one, two = tills
    yesterday = (T0 - timedelta(days=1)).date().isoformat()
    one.ok_push([], facts=[sale("R-1", ANNA, total="300.00", local_time=f"{yesterday}T20:00")])
    cursor = two.changes(0)["cursor"]
    one.ok_push([], facts=[refund("F-1", "R-1", ANNA, 12050)])
    # The card moves in the feed; its visit stays (a refund gives back no visit or use).
    page = two.changes(cursor)
    assert cards_of(page)[ANNA] == {
        "visits": 1,
        "spend": [[yesterday, 17950]],
        "uses": {},
        "stamps": {},
    }
    # A refund whose sale head office never saw: on the refund's own day.
    one.ok_push([], facts=[refund("F-2", "OLD-1", ANNA, "10.00")])
    refund_day = (T0 + timedelta(days=2)).date().isoformat()
    assert cards_of(two.changes(0))[ANNA]["spend"] == [[yesterday, 17950], [refund_day, -1000]]
    # Sale and refund in one push: the refund finds the sale stored just before it.
    one.ok_push(
        [],
        facts=[
            sale("R-2", BORIS, total="50.00", local_time=f"{yesterday}T10:00"),
            refund("F-3", "R-2", BORIS, 5000),
        ],
    )
    assert cards_of(two.changes(0))[BORIS] == {
        "visits": 1,
        "spend": [],
        "uses": {},
        "stamps": {},
    }


def test_a_sale_without_a_card_counts_only_its_budget(hq: HqTest, tills: Any) -> None:
    one, two = tills
    one.ok_push([], facts=[sale("R-1", None, uses=["p"], budget={"p": 3})])
    assert counters(hq, "till-1") == {}
    page = two.changes(0)
    assert page["budgets"] == {"p": 3} and all(u == {} for u in cards_of(page).values())


def test_old_facts_without_promotions_count_visits_and_spend(hq: HqTest, tills: Any) -> None:
    one, two = tills
    fact = sale("R-1", ANNA, total="10.00")
    for key in ("uses", "budget", "stamps"):
        del fact["body"][key]
    one.ok_push([], facts=[fact])
    assert cards_of(two.changes(0))[ANNA] == {
        "visits": 1,
        "spend": [[DAY, 1000]],
        "uses": {},
        "stamps": {},
    }


def test_garbage_in_a_fact_is_skipped_and_never_fails_the_push(
    hq: HqTest, tills: Any, caplog: pytest.LogCaptureFixture
) -> None:
    one, two = tills
    garbage = [
        sale("G-1", 12345),  # a card that is not a string: nothing per card
        sale("G-2", "29 00 bad"),
        sale("G-3", ANNA, total="12,50", uses="p-1", stamps=["st"]),
        sale("G-4", ANNA, total=1e30, local_time="yesterday"),
        sale(
            "G-5",
            ANNA,
            total="99999999999999.99",
            uses=["ok", 7, None, "no spaces please", "x" * 65],
            budget={"ok": -5, "b": "10", "c": 10**20, "d": True, "e": 4},
        ),
        sale("G-6", BORIS, local_time=None, stamps={"st": "many"}),
        refund("G-7", "G-6", BORIS, "abc"),
        refund("G-8", "G-6", None, 100),  # the sale's card
        refund("G-8b", "G-6", BORIS, -100),
        refund("G-8c", "G-6", BORIS, True),
        refund("G-8d", "G-6", BORIS, 1.5),
        refund("G-9", "nothing", ["x"], "1.00"),
        {**sale("G-10", ANNA), "body": {"card": ANNA, "uses": {"deep": {"er": [1, 2]}}}},
        sale("G-11", ANNA, uses=[f"p{i}" for i in range(1001)]),  # more than a receipt holds
    ]
    reply = one.ok_push([], facts=garbage)
    assert len(reply["facts"]) == len(garbage)
    assert hq.count("receipt_facts") == len(garbage)
    created = T0.date().isoformat()  # G-4, G-6: no readable local time
    assert counters(hq, "till-1") == {
        # G-3, G-4 (created day), G-5, G-10 (no local time either), G-11
        (ANNA, "visit", DAY): 5,
        # G-5: 99999999999999.99 is over a receipt's ceiling; G-10: no total; G-11: 100.00
        (ANNA, "spend", DAY): 10000,
        (ANNA, "use:ok", DAY): 1,
        (BORIS, "visit", created): 1,
        (BORIS, "spend", created): 10000 - 100,  # G-8 takes 1.00 back on the sale's day
        (BORIS, "stamp:st", created): 1,  # its count is not a number, but a stamp it is
    }
    assert two.changes(0)["budgets"] == {"e": 4}
    assert "2900000000011" not in caplog.text and "2900•••••0011" in caplog.text
    # The till's pushes go on as before.
    assert one.ok_push([], facts=[sale("R-1", ANNA)])["facts"] == ["sale:R-1"]


def test_a_card_moves_in_the_feed_when_another_till_counts_it(hq: HqTest, tills: Any) -> None:
    one, two = tills
    cursor = two.changes(0)["cursor"]
    one.ok_push([], facts=[sale("R-1", ANNA, uses=["p"], budget={"p": 2})])
    page = two.changes(cursor)
    assert list(cards_of(page)) == [ANNA] and page["budgets"] == {"p": 2}
    cursor = page["cursor"]
    # Nothing new counted (a resend): nothing moves.
    one.ok_push([], facts=[sale("R-1", ANNA, uses=["p"], budget={"p": 2})])
    assert two.changes(cursor)["cards"] == []


def test_a_card_head_office_learns_of_later_brings_its_counts(hq: HqTest, tills: Any) -> None:
    one, two = tills
    newcomer = "2900000000998"
    one.ok_push([], facts=[sale("R-1", newcomer, total="5.00")])
    cursor = two.changes(0)["cursor"]
    assert newcomer not in cards_of(two.changes(0))
    hq.cards(newcomer)
    assert cards_of(two.changes(cursor))[newcomer]["visits"] == 1


def test_budgets_are_changes_and_pages_keep_their_limit(hq: HqTest, tills: Any) -> None:
    one, two = tills
    one.ok_push([], facts=[sale("R-1", ANNA, budget={"a": 1, "b": 2, "c": 3})])
    cursor, budgets, cards = 0, {}, []
    while True:
        page = two.changes(cursor, limit=2)
        assert len(page["cards"]) + len(page["budgets"]) + (page["program"] is not None) <= 2
        budgets |= page["budgets"]
        cards += [c["number"] for c in page["cards"]]
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert budgets == {"a": 1, "b": 2, "c": 3} and sorted(cards) == sorted([ANNA, BORIS])


def test_only_recent_days_are_sent_but_totals_count_them_all(hq: HqTest, tills: Any) -> None:
    one, two = tills
    today = T0.date()

    def day(n: int) -> str:
        return (today + timedelta(days=n)).isoformat()

    one.ok_push(
        [],
        facts=[
            sale("R-old", ANNA, total="1.00", local_time=f"{day(-3663)}T12:00", uses=["p"]),
            sale("R-window", ANNA, total="2.00", local_time=f"{day(-3662)}T12:00", uses=["p"]),
            sale("R-3", ANNA, total="3.00", local_time=f"{day(-3)}T12:00", uses=["p"]),
            sale("R-2", ANNA, total="4.00", local_time=f"{day(-2)}T12:00", uses=["p"]),
            sale("R-0", ANNA, total="5.00", local_time=f"{day(0)}T12:00", uses=["p"]),
            sale("R+2", ANNA, total="6.00", local_time=f"{day(2)}T12:00", uses=["p"]),
            sale("R+3", ANNA, total="7.00", local_time=f"{day(3)}T12:00", uses=["p"]),
        ],
    )
    counts = cards_of(two.changes(0))[ANNA]
    assert counts["visits"] == 7
    assert counts["spend"] == [
        [day(-3662), 200],
        [day(-3), 300],
        [day(-2), 400],
        [day(0), 500],
        [day(2), 600],
    ]
    assert counts["uses"] == {"p": {"total": 7, "days": {day(-2): 1, day(0): 1, day(2): 1}}}
