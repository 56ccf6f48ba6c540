"""The change feed: cursor paging, snapshot at 0, per-till through_seq, expiry by HQ."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import ANNA, BORIS, VERA, program
from tests.hq.helpers import T0, HqTest
from tillgate.core.cards import phone_lookup_hash
from tillgate.hq.feed import CARD_COLUMNS

CSV = (
    "number,holder,phone,birthday,tier,segments,status,balance\n"
    f"{ANNA},Анна Иванова,+79161234567,1985-03-14,gold,,active,100\n"
    f"{BORIS},Борис,,,silver,pensioners;vip,active,\n"
    f"{VERA},Вера,,,silver,,blocked,\n"
)


def _import(hq: HqTest, text: str = CSV) -> dict[str, object]:
    r = hq.admin.post(
        "/v1/admin/cards/import", content=text.encode(), headers={"Content-Type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_new_till_gets_a_full_snapshot_at_cursor_0(hq: HqTest) -> None:
    version = hq.publish(program())
    _import(hq)
    till = hq.enroll("till-1")
    page = till.changes(0)
    assert page["more"] is False and page["cursor"] > 0
    assert page["program"]["version"] == version
    assert page["program"]["body"]["program"]["name"] == "Тест Бонус"
    cards = {c["number"]: c for c in page["cards"]}
    assert set(cards) == {ANNA, BORIS, VERA}
    anna = cards[ANNA]
    # What a till needs of the holder, never the full record (docs/security.md).
    assert (anna["holder"], anna["birthday"], anna["tier"]) == ("Анна И.", "--03-14", "gold")
    assert "phone" not in anna
    assert page["lookup_key"] == hq.hq.lookup_key.hex()
    assert anna["phone_hash"] == phone_lookup_hash(hq.hq.lookup_key, "+79161234567")
    assert cards[BORIS]["phone_hash"] is None and cards[BORIS]["birthday"] is None
    assert (anna["balance"], anna["pending"], anna["through_seq"]) == (100, 0, 0)
    assert anna["lots"] == [
        {"points": 100, "available_from": anna["lots"][0]["available_from"], "expires_at": None}
    ]
    assert cards[BORIS]["segments"] == ["pensioners", "vip"]
    assert cards[VERA]["status"] == "blocked"
    assert page["coupons_used"] == page["coupons_revoked"] == [] and page["budgets"] == {}
    # Nothing new: the same cursor comes back with nothing in it.
    again = till.changes(page["cursor"])
    assert (again["cursor"], again["cards"], again["program"]) == (page["cursor"], [], None)


def test_paging_by_cursor_gives_every_change_once(hq: HqTest) -> None:
    numbers = [f"29000000{i:05d}" for i in range(25)]
    _import(hq, "number,holder\n" + "".join(f"{n},h{n}\n" for n in numbers))
    hq.publish()
    till = hq.enroll("till-1")
    seen: list[str] = []
    programs = 0
    cursor, pages = 0, 0
    while True:
        page = till.changes(cursor, limit=7)
        pages += 1
        seen += [c["number"] for c in page["cards"]]
        programs += page["program"] is not None
        assert page["cursor"] > cursor
        cursor = page["cursor"]
        if not page["more"]:
            break
    assert pages == 4 and programs == 1
    assert sorted(seen) == numbers  # each card once, none missed
    # A card that changes again moves to the head of the log: a till past it sees it again.
    again = hq.enroll("till-2")
    again.ok_push([again.next(numbers[0], "accrue", 5)])
    page = till.changes(cursor)
    assert [c["number"] for c in page["cards"]] == [numbers[0]]
    assert page["cards"][0]["balance"] == 5


def test_bad_cursor_or_limit_is_400(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    absurd = [
        {"cursor": "1" + "0" * 22},  # 23 digits: SQLite cannot compare it, it was a 500
        {"cursor": str(2**63)},
        {"cursor": str(-(2**63) - 1)},
        {"cursor": "-" + "9" * 40},
        {"limit": "1" + "0" * 22},
        {"limit": str(-(2**64))},
        {"cursor": "1.5"},
        {"cursor": "1e3"},
        {"cursor": ""},
        {"limit": "true"},
    ]
    for params in ({"cursor": -1}, {"limit": 0}, {"limit": 2001}, {"cursor": "x"}, *absurd):
        r = till.http.get("/v1/sync/changes", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"]["code"] == "invalid_request", (params, r.text)
        assert next(iter(params)) in r.json()["error"]["message"], (params, r.text)
    # The largest cursor a database holds is a cursor past every change: an empty page.
    page = till.changes(2**63 - 1, limit=2000)
    assert (page["cursor"], page["more"], page["cards"]) == (2**63 - 1, False, [])


def test_through_seq_is_the_requesting_tills_own(hq: HqTest) -> None:
    hq.cards(ANNA)
    one, two = hq.enroll("till-1"), hq.enroll("till-2")
    one.ok_push([one.next(ANNA, "accrue", 100), one.next(ANNA, "redeem", -10)])
    two.ok_push([two.next(ANNA, "accrue", 7)])
    card_1 = next(c for c in one.changes()["cards"] if c["number"] == ANNA)
    card_2 = next(c for c in two.changes()["cards"] if c["number"] == ANNA)
    assert card_1["balance"] == card_2["balance"] == 97
    assert (card_1["through_seq"], card_2["through_seq"]) == (2, 1)


def test_pending_lots_and_expiry_written_by_hq(hq: HqTest) -> None:
    hq.cards(ANNA, BORIS)
    till = hq.enroll("till-1")
    accrue = till.next(ANNA, "accrue", 80, delay_days=14, expiry_days=30, receipt_id="R-1")
    till.ok_push([accrue, till.next(BORIS, "accrue", 5)])
    card = next(c for c in till.changes()["cards"] if c["number"] == ANNA)
    assert (card["balance"], card["pending"]) == (0, 80)
    assert card["lots"][0]["available_from"] == (T0 + timedelta(days=14)).isoformat(
        timespec="microseconds"
    )

    hq.clock.advance(days=15)
    assert (hq.card(ANNA)["balance"], hq.card(ANNA)["pending"]) == (80, 0)
    till.ok_push([till.next(ANNA, "redeem", -30, at=T0 + timedelta(days=15))])

    # Past its expiry the lot is gone from the balance at once, and HQ writes it off.
    hq.clock.advance(days=30)
    page = till.changes()
    card = next(c for c in page["cards"] if c["number"] == ANNA)
    assert (card["balance"], card["lots"]) == (0, [])
    from tillgate.hq.ledger import expire_due

    assert expire_due(hq.hq.db, hq.clock.now()) == 1
    assert expire_due(hq.hq.db, hq.clock.now()) == 0  # once only
    shown = hq.card(ANNA)
    expire = shown["entries"][-1]
    assert (expire["till"], expire["kind"], expire["points"], expire["seq"]) == (
        "hq",
        "expire",
        -50,
        1,
    )
    assert shown["balance"] == 0 and sum(e["points"] for e in shown["entries"]) == 0
    # Other tills are told: the card moved in the feed.
    assert ANNA in [c["number"] for c in till.changes(page["cursor"])["cards"]]


def test_card_show_writes_due_expiry_first(hq: HqTest) -> None:
    hq.cards(ANNA)
    till = hq.enroll("till-1")
    till.ok_push([till.next(ANNA, "accrue", 10, expiry_days=1)])
    hq.clock.advance(days=2)
    shown = hq.card(ANNA)
    assert [e["kind"] for e in shown["entries"]] == ["accrue", "expire"]
    assert shown["balance"] == 0


def test_revoked_coupons_reach_the_tills(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    r = hq.admin.post(
        "/v1/admin/coupons/revoke",
        json={"codes": ["tg0000000000000000000000a"], "reason": "stolen batch"},
    )
    assert r.status_code == 200, r.text
    revoked = till.changes()["coupons_revoked"]
    assert [(c["code"], c["reason"]) for c in revoked] == [
        ("TG0000000000000000000000A", "stolen batch")
    ]


def test_a_compact_page_carries_the_same_cards_as_rows(hq: HqTest) -> None:
    """``cards=rows``: the cards' columns named once and each card a row of its values, the
    same values as a page of objects, whether built for this page or kept from another."""
    hq.publish(program())
    _import(hq)
    till = hq.enroll("till-1")

    def page(shape: str | None) -> dict[str, Any]:
        params = {"cursor": 0} | ({"cards": shape} if shape else {})
        r = till.http.get("/v1/sync/changes", params=params)
        assert r.status_code == 200, r.text
        return dict(r.json())

    for first, then in (("rows", "objects"), ("objects", "rows")):  # built, then kept
        a, b = page(first), page(then)
        rows, objects = (a, b) if first == "rows" else (b, a)
        assert "cards" not in rows and "card_rows" not in objects
        assert rows["card_columns"] == list(CARD_COLUMNS)
        as_objects = [dict(zip(CARD_COLUMNS, r, strict=True)) for r in rows["card_rows"]]
        assert as_objects == objects["cards"] and len(as_objects) == 3
        assert {k: v for k, v in rows.items() if not k.startswith("card_")} == {
            k: v for k, v in objects.items() if k != "cards"
        }
    assert page(None)["cards"] == objects["cards"]  # a till from before asks for neither
    hq.clock.advance(timedelta(days=400))  # past midnight: every part built again
    assert [r[0] for r in page("rows")["card_rows"]] == [c["number"] for c in objects["cards"]]


def test_an_unknown_cards_shape_is_a_clear_400(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    r = till.http.get("/v1/sync/changes", params={"cursor": 0, "cards": "columns"})
    assert r.status_code == 400 and "cards: must be one of objects, rows" in r.text
