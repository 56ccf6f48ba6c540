"""Pull: each page of HQ's change feed and its cursor are applied together, or not at all."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ANNA, BORIS, COUPON10, program
from tests.sync.badhq import MisbehavingHq, hq_card
from tests.sync.pages import as_objects
from tests.sync.realhq import card
from tillgate.agent.store import meta, syncstate
from tillgate.core.errors import CardBlocked, HqBadReply
from tillgate.core.rules.coupons import promotion_tag

NEW = "2900000007777"


def cursor(chain: Any) -> int:
    with chain.service.db.read() as conn:
        return int(meta.get(conn, syncstate.CURSOR) or 0)


def test_program_cards_and_cursor_arrive(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    assert cursor(till) == hq.cursor() > 0  # the first pull: a full snapshot
    promo = {
        "id": "p1",
        "name": "Five off",
        "reward": {"kind": "percent", "value": 5, "on": "order"},
    }
    version = hq.publish(program(promo))
    hq.import_cards(card(NEW, holder="Дина", opening_balance=120))
    hq.import_cards(card(BORIS, status="blocked"))

    report = till.syncer.pull()

    assert report.program == version and cursor(till) == hq.cursor()
    assert till.service.catalog().by_id.keys() == {"p1"}  # the service saw the new version
    assert till.service.status()["promotions_version"] == version
    card_ = till.service.card_lookup(NEW)
    assert card_["holder"] == "Дина" and card_["balance"] == 120
    with pytest.raises(CardBlocked):
        till.calc("R-1", "100.00", card=BORIS)


def test_pages_follow_more_until_done(make_chain: Any, hq: Any) -> None:
    till = make_chain(page_limit=2)
    before = till.rows("SELECT COUNT(*) FROM hq_cards")[0][0]
    numbers = [f"29000000100{i:02d}" for i in range(5)]
    hq.import_cards(*(card(n, opening_balance=i + 1) for i, n in enumerate(numbers)))
    report = till.syncer.pull()
    assert report.pages == 3 and report.changes == 5 and cursor(till) == hq.cursor()
    assert till.rows("SELECT COUNT(*) FROM hq_cards") == [(before + 5,)]
    assert [till.balance(n) for n in numbers] == [1, 2, 3, 4, 5]
    # Nothing new: one empty page, nothing changes.
    assert till.syncer.pull().pages == 1 and cursor(till) == hq.cursor()


def test_a_bad_page_is_applied_not_at_all(make_chain: Any, hq: Any) -> None:
    """The program is applied last: when it fails, the cards before it roll back too.

    HQ validates programs with the till's own code, so it never sends one the till cannot
    use; a version skew is staged by spoiling the program of HQ's real page on the way.
    """
    till = make_chain()
    hq.import_cards(card("2900000005555", opening_balance=10))
    till.syncer.pull()
    kept_cursor, kept_version = cursor(till), till.service.status()["promotions_version"]
    kept_cards = till.rows("SELECT number, balance FROM hq_cards ORDER BY number")
    hq.import_cards(card(NEW, opening_balance=50), card(ANNA, opening_balance=999))
    hq.revoke_coupons("TGREVOKED")
    hq.publish(program(accrual_delay_days=1))
    page = till.link.alter_next_page(
        lambda p: p | {"program": p["program"] | {"body": BAD_PROGRAM}}
    )

    with pytest.raises(HqBadReply, match="program this till cannot use"):
        till.syncer.pull()

    got = page()
    assert {c["number"] for c in as_objects(got)["cards"]} == {NEW, ANNA} and got["coupons_revoked"]
    assert cursor(till) == kept_cursor
    assert till.rows("SELECT number, balance FROM hq_cards ORDER BY number") == kept_cards
    assert till.rows("SELECT COUNT(*) FROM cards WHERE number = ?", NEW) == [(0,)]
    assert till.rows("SELECT COUNT(*) FROM coupons_revoked") == [(0,)]
    assert till.service.status()["promotions_version"] == kept_version
    # The same page, unspoilt, goes in whole.
    till.syncer.pull()
    assert cursor(till) == hq.cursor() and till.balance(NEW) == 50 and till.balance(ANNA) == 999
    assert till.rows("SELECT code FROM coupons_revoked") == [("TGREVOKED",)]


BAD_PROGRAM = {"program": {"name": ""}, "promotions": "x"}


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
    till = make_chain()
    kept_cursor = cursor(till)
    kept_cards = till.rows("SELECT * FROM hq_cards ORDER BY number")
    hq.import_cards(card(NEW, opening_balance=5))  # a real change is waiting at HQ
    till.link.stub = MisbehavingHq(httpx.Response(200, json=page))
    with pytest.raises(HqBadReply, match=field.replace(".", r"\.")):
        till.syncer.pull()
    assert cursor(till) == kept_cursor
    assert till.rows("SELECT * FROM hq_cards ORDER BY number") == kept_cards
    till.syncer.pull()  # HQ itself again: the waiting change arrives
    assert cursor(till) == hq.cursor() and till.balance(NEW) == 5


def test_a_cursor_going_back_is_refused(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    hq.import_cards(card(NEW, opening_balance=2))
    till.syncer.pull()
    top = cursor(till)
    assert top == hq.cursor() and till.balance(NEW) == 2
    till.link.stub = MisbehavingHq(
        httpx.Response(200, json={"cursor": top - 1, "cards": [hq_card(NEW, balance=99)]})
    )
    with pytest.raises(HqBadReply, match=f"cursor {top - 1}"):
        till.syncer.pull()
    assert cursor(till) == top and till.balance(NEW) == 2


def test_a_page_applied_twice_changes_nothing(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    hq.import_cards(card(NEW, opening_balance=40))
    other = hq.other_till("till-2")
    other.ok_push(
        [],
        coupons_used=[{"code": "TGA", "receipt_id": "X", "used_at": "2026-11-23T06:00:00Z"}],
    )
    before = cursor(till)
    till.syncer.pull()
    with till.syncer.db.write() as conn:  # a crash after the commit, before the next ask
        meta.put(conn, syncstate.CURSOR, before)
    till.syncer.pull()
    assert till.balance(NEW) == 40
    assert till.rows("SELECT code, till FROM coupons_used") == [("TGA", "till-2")]
    assert cursor(till) == hq.cursor()


def test_a_coupon_used_at_another_till_is_refused_here(make_chain: Any, hq: Any) -> None:
    till = make_chain(data=program(COUPON10))
    other = make_chain("till-2", data=program(COUPON10))
    assert promotion_tag("c10")  # the code names the promotion by its tag
    used, revoked, fresh = hq.issue_coupons("c10", 3)
    # till-2 takes the first coupon on a sale and tells HQ; HQ revokes the second.
    calc, _ = other.sale("R-A", "100.00", card=BORIS, coupons=[used])
    assert calc["coupons"]["applied"] == [used]
    other.syncer.push()
    hq.revoke_coupons(revoked)

    till.syncer.pull()
    calc = till.calc("R-1", "100.00", card=ANNA, coupons=[used, revoked, fresh])
    reasons = {r["code"]: r["reason"] for r in calc["coupons"]["rejected"]}
    assert reasons == {used: "used", revoked: "revoked"}
    assert calc["coupons"]["applied"] == [fresh]
    # The use learnt from HQ is never pushed back as this till's own.
    till.service.confirm("R-1")
    till.syncer.push()
    sent = [c["code"] for b in till.link.pushes() for c in b["coupons_used"]]
    assert sent == [fresh]
    uses = hq.rows("SELECT code, till, receipt_id FROM coupons_used ORDER BY till")
    assert uses == [
        {"code": fresh, "till": "till-1", "receipt_id": "R-1"},
        {"code": used, "till": "till-2", "receipt_id": "R-A"},
    ]
    assert hq.flags()["coupon_double_uses"] == []
