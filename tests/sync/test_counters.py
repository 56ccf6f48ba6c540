"""Chain-wide counters across two tills of one real head office: per-card limits, budgets,
stamp cards and tiers count every till's receipts once the tills have synced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, program
from tests.sync.pages import as_objects
from tests.sync.realhq import Chain
from tillgate.agent.store import syncstate
from tillgate.core.errors import HqBadReply
from tillgate.hq import counters
from tillgate.sync import wire


def promo(pid: str, reward: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"id": pid, "name": pid, "reward": reward, **kw}


def effects(calc: dict[str, Any]) -> dict[str, Any]:
    """Promotion id → (discount, points) of what applied on a calculated receipt."""
    return {p["id"]: (p["discount"], p["points"]) for p in calc["promotions"]}


def sync(*tills: Chain) -> None:
    for till in tills:
        till.syncer.run_once()


def two_tills(make_chain: Callable[..., Chain], data: dict[str, Any]) -> tuple[Chain, Chain]:
    return make_chain("till-a", data=data), make_chain("till-b", data=data)


def test_a_per_card_total_used_at_one_till_is_used_at_the_other(make_chain: Any) -> None:
    data = program(
        promo(
            "once",
            {"kind": "amount", "value": "10.00"},
            limits={"per_card_total": 1},
        )
    )
    a, b = two_tills(make_chain, data)
    _, done = a.sale("A-1", "100.00", card=ANNA)
    assert done["status"] == "confirmed"
    assert effects(a.calc("A-2", "100.00", card=ANNA)) == {}  # the till's own count
    sync(a, b)
    assert effects(b.calc("B-1", "100.00", card=ANNA)) == {}
    assert effects(b.calc("B-2", "100.00", card=BORIS)) == {"once": ("10.00", 0)}
    b.clock.advance(days=3)  # "ever" is ever
    assert effects(b.calc("B-3", "100.00", card=ANNA)) == {}


def test_a_per_card_per_day_limit_counts_the_other_tills_today(make_chain: Any) -> None:
    data = program(
        promo("daily", {"kind": "amount", "value": "5.00"}, limits={"per_card_per_day": 2})
    )
    a, b = two_tills(make_chain, data)
    a.sale("A-1", "100.00", card=ANNA)
    sync(a, b)
    b.sale("B-1", "100.00", card=ANNA)  # the second use today, chain-wide
    assert effects(b.calc("B-2", "100.00", card=ANNA)) == {}
    sync(b, a)
    assert effects(a.calc("A-2", "100.00", card=ANNA)) == {}
    # A new local day at both tills: the limit starts again.
    a.clock.advance(days=1)
    assert effects(a.calc("A-3", "100.00", card=ANNA)) == {"daily": ("5.00", 0)}
    assert effects(b.calc("B-3", "100.00", card=ANNA)) == {"daily": ("5.00", 0)}


def test_a_budget_gives_at_one_till_only_what_the_chain_has_left(make_chain: Any) -> None:
    data = program(
        promo("bonus", {"kind": "points", "value": 40}, limits={"budget_points": 100}),
        accrual_delay_days=0,
    )
    a, b = two_tills(make_chain, data)
    for n in range(2):
        calc, _ = a.sale(f"A-{n}", "10.00", card=ANNA)
        assert effects(calc)["bonus"] == ("0.00", 40)
    sync(a, b)
    calc, _ = b.sale("B-1", "10.00", card=BORIS)  # another card: the budget is the chain's
    assert effects(calc)["bonus"] == ("0.00", 20)
    assert "bonus" not in effects(b.calc("B-2", "10.00", card=BORIS))
    sync(b, a)
    assert "bonus" not in effects(a.calc("A-3", "10.00", card=ANNA))
    assert a.hq.rows("SELECT SUM(points) AS n FROM budget_counters")[0]["n"] == 100


def test_a_stamp_card_collects_stamps_at_every_till(make_chain: Any) -> None:
    data = program(
        promo(
            "coffee",
            {"kind": "stamp", "every": 3, "reward": {"kind": "points", "value": 100}},
        )
    )
    a, b = two_tills(make_chain, data)
    got: list[int] = []

    def buy(till: Chain, receipt: str) -> None:
        calc, _ = till.sale(receipt, "10.00", card=ANNA)
        got.append(effects(calc).get("coffee", ("0.00", 0))[1])
        sync(till)

    buy(a, "A-1")
    buy(a, "A-2")
    sync(b)
    buy(b, "B-3")  # the 3rd stamp of the card, the 1st at this till
    buy(b, "B-4")
    sync(a)
    buy(a, "A-5")
    buy(a, "A-6")
    assert got == [0, 0, 100, 0, 0, 100]
    # Each till keeps only its own stamps; head office counts each till's.
    assert a.rows("SELECT count FROM stamps") == [(4,)]
    assert b.rows("SELECT count FROM stamps") == [(2,)]


def test_a_tier_counts_the_other_tills_spend_and_visits(make_chain: Any) -> None:
    data = program(
        promo("regular", {"kind": "points", "value": 7}, who={"min_visits": 2}),
        accrual_delay_days=0,
    )
    a, b = two_tills(make_chain, data)
    # silver 3%, gold from 20000.00 of rolling spend 5%.
    calc, _ = a.sale("A-1", "15000.00", card=ANNA)
    assert calc["accrued"]["points"] == 450
    calc = b.calc("B-0", "100.00", card=ANNA)
    assert calc["accrued"]["points"] == 3  # B has not heard of A's receipt yet
    sync(a, b)
    assert "regular" not in effects(b.calc("B-0", "100.00", card=ANNA))  # one visit so far
    calc, _ = b.sale("B-1", "5000.00", card=ANNA)  # 15000 + 5000: gold on the next receipt
    calc = b.calc("B-2", "100.00", card=ANNA)
    assert calc["accrued"]["points"] == 5 + 7 and effects(calc)["regular"] == ("0.00", 7)
    sync(b, a)
    calc = a.calc("A-2", "100.00", card=ANNA)
    assert calc["accrued"]["points"] == 5 + 7


def test_a_refund_at_one_till_lowers_the_spend_the_other_sees(make_chain: Any) -> None:
    a, b = two_tills(make_chain, program(accrual_delay_days=0))
    a.sale("A-1", "20000.00", card=ANNA)
    sync(a, b)
    assert b.calc("B-1", "100.00", card=ANNA)["accrued"]["points"] == 5  # gold
    a.service.refund("A-1", refund_id="F-1", lines=None)
    sync(a, b)
    assert b.calc("B-1", "100.00", card=ANNA)["accrued"]["points"] == 3  # silver again


def test_offline_tills_overshoot_a_limit_by_at_most_one_use_each(make_chain: Any) -> None:
    data = program(
        promo("once", {"kind": "amount", "value": "10.00"}, limits={"per_card_total": 1})
    )
    a, b = two_tills(make_chain, data)
    # No sync between the sales: each till knows only its own use.
    for till in (a, b):
        calc, _ = till.sale(f"{till.name}-1", "100.00", card=ANNA)
        assert effects(calc) == {"once": ("10.00", 0)}
    sync(a, b, a)
    for till in (a, b):
        assert effects(till.calc(f"{till.name}-2", "100.00", card=ANNA)) == {}


def test_a_tills_own_receipts_never_come_back_to_it(make_chain: Any) -> None:
    """Head office's counts of this till's own receipts never come back to it."""
    data = program(
        promo("twice", {"kind": "amount", "value": "1.00"}, limits={"per_card_total": 2})
    )
    a = make_chain("till-a", data=data)
    a.sale("A-1", "100.00", card=ANNA)
    sync(a, a)
    assert a.rows("SELECT uses FROM hq_cards WHERE number = ?", ANNA) == [
        ('{"visits": 0, "spend": [], "uses": {}, "stamps": {}}',)
    ]
    assert effects(a.calc("A-2", "100.00", card=ANNA)) == {"twice": ("1.00", 0)}


BAD_USES: list[Any] = [
    "many",
    {"visits": -1},
    {"visits": 2**63},
    {"spend": {"2026-11-23": 100}},
    {"spend": [["yesterday", 100]]},
    {"spend": [["2026-11-23"]]},
    {"spend": [["2026-11-23", 1.5]]},
    {"spend": [["2026-11-23", 1]] * (wire.MAX_SPEND_DAYS + 1)},
    {"uses": {"p": 3}},
    {"uses": {"p": {"total": -1}}},
    {"uses": {"p": {"total": 1, "days": {"today": 1}}}},
    {"uses": {"": {"total": 1}}},
    {"stamps": {"p": None}},
    {"stamps": {f"p{i}": 1 for i in range(wire.MAX_PROMOTIONS + 1)}},
]


@pytest.mark.parametrize("bad", BAD_USES, ids=range(len(BAD_USES)))
def test_a_malformed_uses_is_a_bad_reply_and_nothing_is_applied(make_chain: Any, bad: Any) -> None:
    data = program(
        promo("once", {"kind": "amount", "value": "10.00"}, limits={"per_card_total": 1})
    )
    a, b = two_tills(make_chain, data)
    a.sale("A-1", "100.00", card=ANNA)
    sync(a)
    before = b.rows("SELECT value FROM meta WHERE key = ?", syncstate.CURSOR)
    stored = b.rows("SELECT number, uses FROM hq_cards ORDER BY number")

    def spoil(page: Any) -> Any:
        page = as_objects(page)
        for card in page["cards"]:
            card["uses"] = bad
        return page

    b.link.alter_next_page(spoil)
    with pytest.raises(HqBadReply, match="uses"):
        b.syncer.pull()
    assert b.rows("SELECT value FROM meta WHERE key = ?", syncstate.CURSOR) == before
    assert b.rows("SELECT number, uses FROM hq_cards ORDER BY number") == stored
    # The till keeps selling as it did, and the next good page puts it right.
    assert effects(b.calc("B-1", "100.00", card=ANNA)) == {"once": ("10.00", 0)}
    b.syncer.pull()
    assert effects(b.calc("B-1", "100.00", card=ANNA)) == {}


def test_a_malformed_budget_is_a_bad_reply(make_chain: Any) -> None:
    data = program(promo("bonus", {"kind": "points", "value": 40}, limits={"budget_points": 100}))
    a, b = two_tills(make_chain, data)
    a.sale("A-1", "10.00", card=ANNA)
    sync(a)
    b.link.alter_next_page(lambda page: page | {"budgets": {"bonus": -5}})
    with pytest.raises(HqBadReply, match="budgets"):
        b.syncer.pull()
    assert b.rows("SELECT * FROM hq_budgets") == []
    b.syncer.pull()
    assert b.rows("SELECT promotion_id, points FROM hq_budgets") == [("bonus", 40)]
    assert effects(b.calc("B-1", "10.00", card=BORIS))["bonus"] == ("0.00", 40)  # 60 left


def test_unknown_fields_in_uses_are_ignored(make_chain: Any) -> None:
    a, b = two_tills(make_chain, program())
    a.sale("A-1", "20000.00", card=ANNA)
    sync(a)

    def extend(page: Any) -> Any:
        page = as_objects(page)
        for card in page["cards"]:
            card["uses"] = card["uses"] | {"coupons": [1, 2], "later": {"x": "y"}}
        return page

    b.link.alter_next_page(extend)
    b.syncer.pull()
    assert b.calc("B-1", "100.00", card=ANNA)["accrued"]["points"] == 5


def test_head_office_sends_no_more_than_a_till_takes() -> None:
    """The bounds of hq/counters.py and sync/wire.py agree."""
    assert counters.MAX_PROMOTIONS == wire.MAX_PROMOTIONS
    assert counters.SPEND_DAYS + counters.USE_DAYS + 1 <= wire.MAX_SPEND_DAYS
    assert 2 * counters.USE_DAYS + 1 <= wire.MAX_USE_DAYS
