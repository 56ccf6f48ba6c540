"""Online holds: two chain tills and a real head office on loopback (in-process).

While both tills are online, a card's points and a coupon code are spent once across the
chain: calculate reserves them at HQ in one round trip, confirm and cancel resolve the
hold there (once), and a till that gets no answer in time prices the receipt offline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import BORIS, COUPON10, program
from tests.sync.realhq import Chain, ChainHq, card
from tillgate.agent.api.schemas import CalculateIn
from tillgate.core import errors

# No accrual delay and no expiry: balances are exact sums (BORIS is gold: 5% accrued).
ANYONE = {  # a coupon anyone may bring, card or not
    "id": "c5",
    "name": "Coupon 5%",
    "when": {"coupon": True},
    "who": {"card": False},
    "reward": {"kind": "percent", "value": 5, "on": "order"},
}
DATA = program(
    COUPON10,
    ANYONE,
    accrual_delay_days=0,
    expiry_days=0,
    max_redeem_percent=100,
    offline={"max_hours": 24, "redeem_per_card": 100, "redeem_per_till": 5000},
)


@pytest.fixture
def pair(make_chain: Callable[..., Chain], hq: ChainHq) -> tuple[Chain, Chain]:
    a = make_chain("till-a", data=DATA, holds=True)
    b = make_chain("till-b", data=DATA, holds=True)
    hq.import_cards(card(BORIS, opening_balance=1000))
    for t in (a, b):
        t.syncer.run_once()
    return a, b


def holds_at_hq(hq: ChainHq, every: bool = False) -> list[dict[str, Any]]:
    return list(hq.ok("GET", "/v1/admin/holds", params={"every": every})["holds"])


def sync_all(*tills: Chain) -> None:
    for _ in range(2):
        for t in tills:
            t.syncer.run_once()


def test_two_tills_cannot_spend_the_same_points(pair: tuple[Chain, Chain], hq: ChainHq) -> None:
    a, b = pair
    ra = a.calc("A-1", "700.00", card=BORIS, redeem="max")
    assert ra["redeemed"]["points"] == 700 and ra["offline"] is False
    # B's own cache still says 1000; head office grants only what A left.
    rb = b.calc("B-1", "700.00", card=BORIS, redeem="max")
    assert rb["redeemed"]["points"] == 300 and rb["total"] == "400.00"
    [ha, hb] = sorted(holds_at_hq(hq), key=lambda h: h["till"])
    assert (ha["points"], ha["status"], hb["points"]) == (700, "active", 300)
    a.service.confirm("A-1")
    b.service.confirm("B-1")
    # Confirmed: the points stay reserved until the redeem entries arrive, then settle.
    assert {h["status"] for h in holds_at_hq(hq)} == {"confirmed"}
    sync_all(a, b)
    assert holds_at_hq(hq) == []
    # 1000 − 700 − 300, and 5% of the 400.00 B's customer paid.
    assert hq.card(BORIS)["balance"] == 20
    assert a.balance(BORIS) == b.balance(BORIS) == 20


def test_an_exact_number_beyond_the_chain_is_refused(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, b = pair
    a.calc("A-1", "900.00", card=BORIS, redeem=800)
    with pytest.raises(errors.InsufficientPoints) as refused:
        b.calc("B-1", "900.00", card=BORIS, redeem=300)
    assert refused.value.details["redeemable"] == 200
    # Nothing changed at HQ for B's receipt; B may take what is there.
    assert [h["till"] for h in holds_at_hq(hq)] == ["till-a"]
    assert b.calc("B-1", "900.00", card=BORIS, redeem=200)["redeemed"]["points"] == 200


def test_calculating_again_replaces_the_hold_and_cancel_releases_it(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, b = pair
    a.calc("A-1", "900.00", card=BORIS, redeem="max")
    assert holds_at_hq(hq)[0]["points"] == 900
    a.calc("A-1", "900.00", card=BORIS, redeem=100)
    assert holds_at_hq(hq)[0]["points"] == 100
    assert b.calc("B-1", "900.00", card=BORIS, redeem="max")["redeemed"]["points"] == 900
    b.service.cancel("B-1")
    released = [h for h in holds_at_hq(hq, every=True) if h["till"] == "till-b"]
    assert released[0]["status"] == "released"
    assert b.calc("B-2", "900.00", card=BORIS, redeem="max")["redeemed"]["points"] == 900
    # A basket without points or coupons makes no round trip and leaves the hold alone.
    calls = len(a.link.requests)
    a.calc("A-2", "50.00", card=BORIS)
    assert len(a.link.requests) == calls


def test_a_coupon_is_refused_at_the_other_till_until_released(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, b = pair
    first, second = hq.issue_coupons("c10", 2)
    ra = a.calc("A-1", "100.00", card=BORIS, coupons=[first])
    assert ra["coupons"]["applied"] == [first]
    rb = b.calc("B-1", "100.00", card=BORIS, coupons=[first])
    assert rb["coupons"]["applied"] == []
    assert rb["coupons"]["rejected"] == [{"code": first, "reason": "in_use"}]
    assert rb["total"] == "100.00"
    a.service.confirm("A-1")
    rb = b.calc("B-1", "100.00", card=BORIS, coupons=[first])
    assert rb["coupons"]["rejected"][0]["code"] == first  # used at A
    sync_all(a, b)
    rb = b.calc("B-1", "100.00", card=BORIS, coupons=[first])
    assert rb["coupons"]["rejected"] == [{"code": first, "reason": "used"}]
    # A cancels an open receipt with the second code: B may use it at once.
    a.calc("A-2", "100.00", card=BORIS, coupons=[second])
    assert b.calc("B-2", "100.00", card=BORIS, coupons=[second])["coupons"]["applied"] == []
    a.service.cancel("A-2")
    rb = b.calc("B-2", "100.00", card=BORIS, coupons=[second])
    assert rb["coupons"]["applied"] == [second]
    b.service.confirm("B-2")
    sync_all(a, b)
    assert hq.flags()["coupon_double_uses"] == []


def test_no_answer_in_time_prices_the_receipt_offline_and_sync_releases(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, b = pair
    a.link.down = True
    r = a.calc("A-1", "900.00", card=BORIS, redeem="max")
    # program.offline.redeem_per_card = 100; the response says why.
    assert r["offline"] is True and r["redeemed"]["points"] == 100
    assert r["hints"][0]["kind"] == "offline"
    # The hint panel hears it too: the receipt event says offline (its banner) with the hint.
    loop = asyncio.new_event_loop()
    sub, replay = a.service.events.subscribe(loop)
    a.service.events.unsubscribe(sub)
    loop.close()
    latest = {e.kind: e.data for e in replay}
    assert latest["receipt"]["offline"] is True
    assert latest["hints"]["hints"][0]["kind"] == "offline"
    a.service.confirm("A-1")
    assert holds_at_hq(hq) == []  # HQ never heard of it
    # B is online: HQ does not know A's offline redemption yet, so B may spend it all.
    assert b.calc("B-1", "1000.00", card=BORIS, redeem="max")["redeemed"]["points"] == 1000
    b.service.confirm("B-1")
    a.link.down = False
    sync_all(a, b)
    # The overspend is the offline one, within program.offline.redeem_per_card (A's
    # customer earned 5% of the 800.00 paid).
    assert hq.card(BORIS)["balance"] == 1000 - 100 - 1000 + 40
    assert holds_at_hq(hq) == []
    assert a.rows("SELECT COUNT(*) FROM hq_holds WHERE sent_at IS NULL") == [(0,)]


def test_a_hold_head_office_made_after_the_till_gave_up_is_released_by_sync(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, _ = pair
    a.link.drop_replies = 1  # HQ makes the hold; its answer is lost
    r = a.calc("A-1", "900.00", card=BORIS, redeem="max")
    assert r["offline"] is True and r["redeemed"]["points"] == 100
    assert holds_at_hq(hq)[0]["points"] == 900
    a.syncer.run_once()  # the receipt is still open: HQ's hold is released all the same
    assert holds_at_hq(hq) == []
    a.service.confirm("A-1")
    a.syncer.run_once()
    assert hq.card(BORIS)["balance"] == 1000 - 100 + 40


def test_a_lost_resolution_arrives_with_the_push(pair: tuple[Chain, Chain], hq: ChainHq) -> None:
    a, b = pair
    a.calc("A-1", "600.00", card=BORIS, redeem="max")
    a.link.down = True
    a.service.confirm("A-1")  # HQ does not hear of the confirm: its hold stays active
    assert holds_at_hq(hq)[0]["status"] == "active"
    assert b.calc("B-1", "900.00", card=BORIS, redeem="max")["redeemed"]["points"] == 400
    a.link.down = False
    a.syncer.run_once()
    assert holds_at_hq(hq) == [h for h in holds_at_hq(hq) if h["till"] == "till-b"]
    assert hq.card(BORIS)["balance"] == 400


def test_a_timed_out_hold_is_reserved_again_at_confirm(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, b = pair
    a.calc("A-1", "600.00", card=BORIS, redeem="max")
    hq.clock.advance(seconds=601)  # [program.holds] max_seconds = 600
    # Over once A has synced (till then A may have confirmed it while cut off).
    assert [h["receipt_id"] for h in holds_at_hq(hq)] == ["A-1"]
    a.syncer.run_once()
    assert holds_at_hq(hq) == []
    assert b.calc("B-1", "900.00", card=BORIS, redeem="max")["redeemed"]["points"] == 900
    with pytest.raises(errors.InsufficientPoints):
        a.service.confirm("A-1")
    b.service.cancel("B-1")
    assert a.service.confirm("A-1")["redeemed"]["points"] == 600
    a.syncer.run_once()
    assert hq.card(BORIS)["balance"] == 400


def test_a_coupon_receipt_without_a_card_says_head_office_did_not_answer(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, _ = pair
    (code,) = hq.issue_coupons("c5", 1)
    a.link.down = True
    r = a.service.calculate(
        CalculateIn.model_validate(
            {
                "receipt_id": "A-1",
                "coupons": [code],
                "lines": [{"sku": "A", "name": "a", "qty": 1, "price": "100.00"}],
            }
        ).to_request()
    )
    assert r["offline"] is True and r["coupons"]["applied"] == [code]
    assert r["hints"][0] == {
        "kind": "offline",
        "text": "Офис не ответил вовремя: чек рассчитан по офлайн-правилам",
        "promotion": None,
    }


def test_a_till_cut_off_does_not_spend_what_another_till_holds(
    make_chain: Callable[..., Chain], hq: ChainHq
) -> None:
    a = make_chain("till-a", data=DATA, holds=True)
    b = make_chain("till-b", data=DATA, holds=True)
    hq.import_cards(card(BORIS, opening_balance=650))
    sync_all(a, b)
    assert b.calc("B-1", "600.00", card=BORIS, redeem="max")["redeemed"]["points"] == 600
    a.syncer.run_once()  # A hears that B's open receipt holds 600 at head office
    assert a.service.card_lookup(BORIS)["redeemable"] == 50
    a.link.down = True
    r = a.calc("A-1", "500.00", card=BORIS, redeem="max")
    # Offline it may spend 100 (program.offline.redeem_per_card), but only 50 are there.
    assert r["offline"] is True and r["redeemed"]["points"] == 50
    a.service.confirm("A-1")
    b.service.confirm("B-1")
    a.link.down = False
    sync_all(a, b)
    assert hq.card(BORIS)["balance"] >= 0


def test_a_confirm_after_the_hold_timed_out_keeps_to_the_offline_limit(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, _ = pair
    a.calc("A-1", "600.00", card=BORIS, redeem="max")
    hq.clock.advance(seconds=601)
    a.link.down = True  # the hold cannot be made again: 600 is beyond the offline 100
    with pytest.raises(errors.OfflineLimit):
        a.service.confirm("A-1")
    a.calc("A-1", "600.00", card=BORIS, redeem="max")  # priced again: offline, 100
    assert a.service.confirm("A-1")["redeemed"]["points"] == 100


def test_a_calculate_that_fails_after_head_office_answered_leaves_no_hold_there(
    pair: tuple[Chain, Chain], hq: ChainHq
) -> None:
    a, _ = pair
    a.link.drop_replies = 1  # HQ holds 600 for A-1; the till hears nothing: offline rules
    with pytest.raises(errors.OfflineLimit):  # 600 asked, offline at most 100
        a.calc("A-1", "900.00", card=BORIS, redeem=600)
    assert holds_at_hq(hq)[0]["points"] == 600
    a.syncer.run_once()  # the push releases it
    assert holds_at_hq(hq) == []
