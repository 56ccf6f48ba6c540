"""Pull: each page of HQ's change feed and its cursor are applied together, or not at all."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, KEY, program
from tests.sync.fakehq import hq_card
from tillgate.agent.errors import CardBlocked, HqBadReply
from tillgate.agent.rules.coupons import CouponSigner, promotion_tag, serial_for
from tillgate.agent.store import syncstate

NEW = "2900000007777"
COUPON_PROMO = {
    "id": "c10",
    "name": "Coupon 10%",
    "when": {"coupon": True},
    "reward": {"kind": "percent", "value": 10, "on": "order"},
}


def cursor(chain: Any) -> int:
    with chain.service.db.read() as conn:
        return int(syncstate.get(conn, syncstate.CURSOR) or 0)


def test_program_cards_and_cursor_arrive(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    promo = {
        "id": "p1",
        "name": "Five off",
        "reward": {"kind": "percent", "value": 5, "on": "order"},
    }
    hq.change(program={"version": "7", "body": program(promo)})
    hq.change(cards=[hq_card(NEW, balance=120, holder="Дина", through_seq=0)])
    hq.change(cards=[hq_card(BORIS, balance=0, status="blocked")])

    report = till.syncer.pull()

    assert report.program == "7" and cursor(till) == 3
    assert till.service.catalog().by_id.keys() == {"p1"}  # the service saw the new version
    assert till.service.status()["promotions_version"] == "7"
    card = till.service.card_lookup(NEW)
    assert card["holder"] == "Дина" and card["balance"] == 120
    with pytest.raises(CardBlocked):
        till.calc("R-1", "100.00", card=BORIS)


def test_pages_follow_more_until_done(make_chain: Any, hq: Any) -> None:
    till = make_chain(page_limit=2)
    for i in range(5):
        hq.change(cards=[hq_card(f"29000000100{i:02d}", balance=i)])
    report = till.syncer.pull()
    assert report.pages == 3 and cursor(till) == 5
    assert till.rows("SELECT COUNT(*) FROM hq_cards") == [(5,)]
    # Nothing new: one empty page, nothing changes.
    assert till.syncer.pull().pages == 1 and cursor(till) == 5


def test_a_bad_page_is_applied_not_at_all(make_chain: Any, hq: Any) -> None:
    """The program is applied last: when it fails, the cards before it roll back too."""
    till = make_chain()
    hq.change(cards=[hq_card("2900000005555", balance=10)])
    till.syncer.pull()
    hq.change(
        cards=[hq_card(NEW, balance=50), hq_card(ANNA, balance=999)],
        coupons_revoked=[{"code": "TGREVOKED", "revoked_at": "2026-11-23T06:00:00+00:00"}],
        program={"version": "8", "body": {"program": {"name": ""}, "promotions": "x"}},
    )
    with pytest.raises(HqBadReply, match="program this till cannot use"):
        till.syncer.pull()
    assert cursor(till) == 1
    assert till.rows("SELECT number FROM hq_cards") == [("2900000005555",)]
    assert till.rows("SELECT COUNT(*) FROM cards WHERE number = ?", NEW) == [(0,)]
    assert till.rows("SELECT COUNT(*) FROM coupons_revoked") == [(0,)]
    assert till.service.status()["promotions_version"] == "v1"


@pytest.mark.parametrize(
    ("page", "field"),
    [
        ({"cursor": "x"}, "cursor"),
        ({"cursor": 1, "cards": [{"number": ANNA, "balance": "ten"}]}, "cards.0.balance"),
        ({"cursor": 1, "cards": [{"number": ANNA, "status": "gone"}]}, "cards.0.status"),
        ({"cursor": 1, "cards": [{"number": ANNA, "lots": [{"points": 1}]}]}, "available_from"),
        (["not", "an", "object"], "top level"),
    ],
)
def test_a_malformed_page_names_its_field(make_chain: Any, hq: Any, page: Any, field: str) -> None:
    import httpx

    till = make_chain()
    hq.answers = [httpx.Response(200, json=page)]
    with pytest.raises(HqBadReply, match=field.replace(".", r"\.")):
        till.syncer.pull()
    assert cursor(till) == 0 and till.rows("SELECT COUNT(*) FROM hq_cards") == [(0,)]


def test_a_cursor_going_back_is_refused(make_chain: Any, hq: Any) -> None:
    import httpx

    till = make_chain()
    hq.change(cards=[hq_card(NEW, balance=1)])
    hq.change(cards=[hq_card(NEW, balance=2)])
    till.syncer.pull()
    hq.answers = [httpx.Response(200, json={"cursor": 1, "cards": [hq_card(NEW, balance=99)]})]
    with pytest.raises(HqBadReply, match="cursor 1"):
        till.syncer.pull()
    assert cursor(till) == 2 and till.balance(NEW) == 2


def test_a_page_applied_twice_changes_nothing(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    hq.change(
        cards=[hq_card(NEW, balance=40)],
        coupons_used=[
            {"code": "TGA", "till": "till-2", "receipt_id": "X", "used_at": "2026-11-23T06:00Z"}
        ],
    )
    till.syncer.pull()
    with till.syncer.db.write() as conn:  # a crash after the commit, before the next ask
        syncstate.put(conn, syncstate.CURSOR, 0)
    till.syncer.pull()
    assert till.balance(NEW) == 40
    assert till.rows("SELECT code, till FROM coupons_used") == [("TGA", "till-2")]


def coupon_code(receipt_id: str) -> str:
    return CouponSigner(KEY).issue(
        promotion_id="c10",
        serial=serial_for("till-2", receipt_id, "c10"),
        valid_until=__import__("datetime").date(2027, 1, 1),
    )


def test_a_coupon_used_at_another_till_is_refused_here(make_chain: Any, hq: Any) -> None:
    till = make_chain(data=program(COUPON_PROMO))
    assert promotion_tag("c10")  # the code names the promotion by its tag
    used, revoked, fresh = coupon_code("R-A"), coupon_code("R-B"), coupon_code("R-C")
    hq.change(
        coupons_used=[
            {
                "code": used,
                "promotion_id": "c10",
                "till": "till-2",
                "receipt_id": "R-A",
                "used_at": "2026-11-23T06:00:00+00:00",
            }
        ],
        coupons_revoked=[{"code": revoked, "revoked_at": "2026-11-23T06:00:00+00:00"}],
    )
    till.syncer.pull()
    calc = till.service.calculate(
        __import__("tillgate.agent.api.schemas", fromlist=["CalculateIn"]).CalculateIn(
            receipt_id="R-1",
            card=ANNA,
            coupons=[used, revoked, fresh],
            lines=[{"sku": "A", "qty": 1, "price": "100.00"}],
        )
    )
    reasons = {r["code"]: r["reason"] for r in calc["coupons"]["rejected"]}
    assert reasons == {used: "used", revoked: "revoked"}
    assert calc["coupons"]["applied"] == [fresh]
    # The use learnt from HQ is never pushed back as this till's own.
    till.syncer.push()
    assert all(c["code"] != used for b in hq.bodies for c in b["coupons_used"])
