"""The till trusts nothing blindly: a reply that cannot be true changes nothing on the till.

A push reply claiming HQ stored more than the till sent marks nothing synced (the entries
and coupon uses are sent again later, and reach the real HQ exactly once); a change page
with numbers no database holds, more changes than asked for, or a bad field anywhere is
refused whole: nothing of it applied, the cursor where it was.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.conftest import ANNA, BORIS, COUPON10, program
from tests.sync.badhq import MisbehavingHq, hq_card, last_sent, push_reply
from tests.sync.realhq import card
from tillgate.agent.store import meta, syncstate
from tillgate.core.errors import HqBadReply

NEW = "2900000007777"


def forged(beyond: int) -> Any:
    """A push reply claiming HQ holds ``beyond`` seqs more than the push carried."""
    return lambda request: httpx.Response(200, json=push_reply(last_sent(request) + beyond))


def unsent_coupons(till: Any) -> list[str]:
    return [r[0] for r in till.rows("SELECT code FROM coupons_used WHERE synced_at IS NULL")]


def cursor(chain: Any) -> int:
    with chain.service.db.read() as conn:
        return int(meta.get(conn, syncstate.CURSOR) or 0)


def check_all_at_hq(till: Any, hq: Any, coupons: list[str]) -> None:
    """Every entry of the till at HQ once, in order; its coupon uses too; nothing unsynced."""
    assert till.unsynced() == [] and unsent_coupons(till) == []
    assert hq.seqs(till.name) == till.seqs()
    ids = [r[0] for r in till.rows("SELECT id FROM ledger ORDER BY seq")]
    assert [e["id"] for e in hq.entries(till.name)] == ids
    at_hq = hq.rows("SELECT code FROM coupons_used WHERE till = ? ORDER BY code", till.name)
    assert [r["code"] for r in at_hq] == sorted(coupons)


def test_a_forged_through_seq_marks_nothing_synced(
    make_chain: Any, hq: Any, caplog: pytest.LogCaptureFixture
) -> None:
    till = make_chain(data=program(COUPON10))
    (code,) = hq.issue_coupons("c10", 1)
    till.sale("R-1", "500.00", card=ANNA)
    till.sale("R-2", "300.00", card=BORIS, coupons=[code])
    before = till.unsynced()
    assert before and unsent_coupons(till) == [code]
    till.link.stub = MisbehavingHq(forged(1_000_000))

    with caplog.at_level(logging.WARNING, logger="tillgate.sync"):
        assert till.syncer.attempt() is None  # the scheduled job: logged, never raised

    assert till.unsynced() == before and unsent_coupons(till) == [code]
    assert hq.entries("till-1") == []  # the forged reply came from in front of HQ
    error = till.syncer.state()["error"]
    assert f"through seq {before[-1] + 1_000_000}" in error and f"seq {before[-1]}" in error
    assert "sync failed" in caplog.text and "through seq" in caplog.text
    # Retried later, at the real HQ: everything arrives, once.
    till.syncer.run_once()
    check_all_at_hq(till, hq, [code])


def test_a_sale_rung_up_while_a_push_is_on_the_wire_is_never_marked_by_a_forged_reply(
    make_chain: Any, hq: Any
) -> None:
    """The observed loss: entries written after the batch was read, at or below the forged
    ``through_seq``, were marked synced without ever being sent."""
    till = make_chain(data=program(COUPON10))
    (code,) = hq.issue_coupons("c10", 1)
    till.sale("R-1", "500.00", card=ANNA)

    def sell_then_forge(request: httpx.Request) -> httpx.Response:
        till.sale("R-2", "300.00", card=BORIS, coupons=[code])  # the till keeps selling
        return forged(5)(request)

    till.link.stub = MisbehavingHq(sell_then_forge)
    with pytest.raises(HqBadReply, match="through seq"):
        till.syncer.push()

    assert till.unsynced() == till.seqs() and len(till.seqs()) > 1
    assert unsent_coupons(till) == [code]
    till.syncer.push()
    check_all_at_hq(till, hq, [code])


def test_a_forged_through_seq_to_a_push_without_entries_marks_nothing(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain(data=program(COUPON10))
    (code,) = hq.issue_coupons("c10", 1)
    till.sale("R-1", "500.00", card=ANNA)
    till.syncer.push()
    assert till.unsynced() == []
    # A coupon on a sale too small to earn a point: a coupon use and no ledger entry.
    calc, _ = till.sale("R-2", "10.00", card=ANNA, coupons=[code])
    assert calc["coupons"]["applied"] == [code] and calc["accrued"]["points"] == 0
    assert unsent_coupons(till) == [code] and till.unsynced() == []
    top = till.seqs()[-1]

    def sell_then_forge(request: httpx.Request) -> httpx.Response:
        assert last_sent(request) == 0  # nothing but the coupon use went
        till.sale("R-3", "400.00", card=BORIS)  # written while the push is on the wire
        return httpx.Response(200, json=push_reply(top + 10))

    till.link.stub = MisbehavingHq(sell_then_forge)
    with pytest.raises(HqBadReply, match=f"through seq {top + 10}"):
        till.syncer.push()
    assert unsent_coupons(till) == [code]
    assert till.unsynced() == [s for s in till.seqs() if s > top] != []  # R-3, never sent
    till.syncer.push()
    check_all_at_hq(till, hq, [code])


# ------------------------------------------------------------ change pages


LOT = {"points": 1, "available_from": "2026-11-23T06:00:00Z"}


@pytest.mark.parametrize(
    ("page", "field"),
    [
        ({"cursor": 10**22}, "cursor"),  # the 23-digit cursor HQ itself once choked on
        ({"cards": [hq_card(NEW, balance=10**30)]}, "cards.0.balance"),
        ({"cards": [hq_card(NEW, balance=1) | {"through_seq": 2**63}]}, "cards.0.through_seq"),
        (
            {"cards": [hq_card(NEW, balance=1) | {"lots": [LOT | {"points": -(2**64)}]}]},
            "cards.0.lots.0.points",
        ),
        ({"budgets": {"p1": 10**40}}, "budgets.p1"),
    ],
)
def test_numbers_no_database_holds_are_refused(
    make_chain: Any, hq: Any, page: Any, field: str
) -> None:
    till = make_chain()
    kept_cursor = cursor(till)
    kept_cards = till.rows("SELECT * FROM hq_cards ORDER BY number")
    hq.import_cards(card(NEW, opening_balance=5))
    page = {"cursor": kept_cursor + 1} | page
    till.link.stub = MisbehavingHq(httpx.Response(200, json=page))
    with pytest.raises(HqBadReply, match=field.replace(".", r"\.")):
        till.syncer.pull()
    assert cursor(till) == kept_cursor
    assert till.rows("SELECT * FROM hq_cards ORDER BY number") == kept_cards
    till.syncer.pull()  # HQ itself again: its cursor, not the absurd one, is asked next
    assert cursor(till) == hq.cursor() and till.balance(NEW) == 5
    assert till.link.requests[-1].url.params["cursor"] == str(kept_cursor)


def test_a_page_with_more_changes_than_asked_for_is_refused(make_chain: Any, hq: Any) -> None:
    till = make_chain(page_limit=2)
    kept_cursor = cursor(till)
    cards = [hq_card(f"29000000066{i:02d}", balance=i) for i in range(3)]
    till.link.stub = MisbehavingHq(httpx.Response(200, json={"cursor": 99, "cards": cards}))
    with pytest.raises(HqBadReply, match=r"3 changes.*at most 2"):
        till.syncer.pull()
    assert cursor(till) == kept_cursor
    assert till.rows("SELECT COUNT(*) FROM hq_cards WHERE number LIKE '29000000066%'") == [(0,)]


def test_a_page_bad_only_at_its_end_is_refused_whole(make_chain: Any, hq: Any) -> None:
    """Checked whole before any of it is applied: good cards, a revocation and a program
    before the bad field go in no more than the bad field does."""
    till = make_chain()
    kept_cursor, kept_version = cursor(till), till.service.status()["promotions_version"]
    kept_cards = till.rows("SELECT * FROM hq_cards ORDER BY number")
    page = {
        "cursor": kept_cursor + 10,
        "program": {"version": "999", "body": hq.published},
        "cards": [hq_card(NEW, balance=70), hq_card(ANNA, balance=12345)],
        "coupons_revoked": [{"code": "TGX", "revoked_at": "2026-11-23T06:00:00Z"}],
        "coupons_used": [
            {"code": "TGY", "till": "till-2", "receipt_id": "X", "used_at": "2026-11-23T06:00Z"},
            {"code": "TGZ", "till": "till-2", "used_at": "2026-11-23T06:00:00Z"},
        ],
    }
    till.link.stub = MisbehavingHq(httpx.Response(200, json=page))
    with pytest.raises(HqBadReply, match=r"coupons_used\.1\.receipt_id"):
        till.syncer.pull()
    assert cursor(till) == kept_cursor
    assert till.service.status()["promotions_version"] == kept_version
    assert till.rows("SELECT * FROM hq_cards ORDER BY number") == kept_cards
    assert till.rows("SELECT COUNT(*) FROM cards WHERE number = ?", NEW) == [(0,)]
    assert till.rows("SELECT COUNT(*) FROM coupons_revoked") == [(0,)]
    assert till.rows("SELECT COUNT(*) FROM coupons_used") == [(0,)]
