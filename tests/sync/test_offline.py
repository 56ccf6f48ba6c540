"""Online/offline state and the offline redemption limits of ``program.offline``, at the bounds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, program
from tests.sync.realhq import card
from tillgate.core.errors import OfflineLimit

LIMITS = {"max_hours": 2, "redeem_per_card": 100, "redeem_per_till": 150}


def sync_events(chain: Any) -> list[dict[str, Any]]:
    """Every ``sync`` event published so far that a new screen would still be sent."""
    loop = asyncio.new_event_loop()
    try:
        _, latest = chain.service.events.subscribe(loop)
    finally:
        loop.close()
    return [e.data | {"_id": e.id} for e in latest if e.kind == "sync"]


def test_offline_after_offline_after_seconds_without_a_completed_sync(
    make_chain: Any, hq: Any
) -> None:
    till = make_chain(offline_after=60)
    assert till.syncer.refresh()["offline"] is True  # never synced
    assert till.service.offline is True
    first = sync_events(till)[0]

    assert till.syncer.attempt() is not None
    assert till.service.offline is False
    online = sync_events(till)[0]
    assert online["offline"] is False and online["last_sync"] and online["_id"] > first["_id"]

    till.link.fail_before = [503] * 10  # HQ is away; the proxy in front of it answers
    till.clock.advance(seconds=59)
    assert till.syncer.attempt() is None  # failed, logged, not raised
    assert till.service.offline is False  # 59 s since the last completed sync
    assert sync_events(till)[0]["_id"] == online["_id"]  # nothing changed: no new event
    status = till.service.status()
    assert "503" in status["last_sync_error"] and status["last_sync"] == online["last_sync"]

    till.clock.advance(seconds=1)
    till.syncer.attempt()
    assert till.service.offline is True
    event = sync_events(till)[0]
    assert event["offline"] is True and event["error"]

    till.link.fail_before = []
    till.syncer.attempt()
    assert till.service.offline is False
    assert till.service.status()["last_sync_error"] is None
    till.link.down = True  # and a connection that drops: offline again in time
    till.clock.advance(seconds=60)
    till.syncer.attempt()
    assert till.service.offline is True
    assert "cannot reach head office" in till.service.status()["last_sync_error"]


def test_unsynced_count_changes_are_published(make_chain: Any, hq: Any) -> None:
    till = make_chain()
    till.syncer.attempt()
    till.sale("R-1", "100.00", card=ANNA)
    till.syncer.refresh()
    assert sync_events(till)[0]["unsynced_entries"] == len(till.seqs()) > 0
    till.syncer.attempt()
    assert sync_events(till)[0]["unsynced_entries"] == 0
    assert hq.seqs("till-1") == till.seqs()


@pytest.fixture
def offline_till(make_chain: Any, hq: Any) -> Any:
    """A till that synced once (cards with 1000 points each), then lost HQ for 61 s."""
    till = make_chain(data=program(offline=LIMITS), offline_after=60)
    hq.import_cards(card(ANNA, opening_balance=1000), card(BORIS, opening_balance=1000))
    till.syncer.attempt()
    assert till.balance(ANNA) == till.balance(BORIS) == 1000
    hq.stop()  # head office goes away: connections are refused
    till.clock.advance(seconds=61)
    till.syncer.attempt()
    assert till.service.offline
    assert "cannot reach head office" in till.service.status()["last_sync_error"]
    return till


def test_per_card_limit_is_exact(offline_till: Any) -> None:
    till = offline_till
    calc, done = till.sale("R-1", "1000.00", card=ANNA, redeem=100)  # exactly the limit
    assert done["redeemed"]["points"] == 100 and done["offline"] is True
    with pytest.raises(OfflineLimit, match="at most 0") as exc:
        till.calc("R-2", "1000.00", card=ANNA, redeem=1)
    assert exc.value.details == {"redeemable": 0, "limit": "per_card"}
    calc = till.calc("R-3", "1000.00", card=ANNA, redeem="max")  # "max" just caps
    assert calc["redeemed"]["points"] == 0
    assert calc["hints"][0]["kind"] == "offline"
    assert till.calc("R-4", "1000.00", card=BORIS, redeem=50)["redeemed"]["points"] == 50


def test_per_till_limit_counts_every_card(offline_till: Any) -> None:
    till = offline_till
    till.sale("R-1", "1000.00", card=ANNA, redeem=100)
    with pytest.raises(OfflineLimit) as exc:
        till.calc("R-2", "1000.00", card=BORIS, redeem=51)
    assert exc.value.details["limit"] == "per_till"
    assert till.calc("R-2", "1000.00", card=BORIS, redeem=50)["redeemed"]["points"] == 50


def test_open_holds_of_other_receipts_count(offline_till: Any) -> None:
    till = offline_till
    assert till.calc("R-1", "1000.00", card=ANNA, redeem=60)["redeemed"]["points"] == 60
    assert till.calc("R-2", "1000.00", card=ANNA, redeem="max")["redeemed"]["points"] == 40
    # A receipt's own hold is its own: recalculating R-1 may keep its 60.
    assert till.calc("R-1", "1000.00", card=ANNA, redeem=60)["redeemed"]["points"] == 60
    till.service.cancel("R-2")
    assert till.calc("R-1", "1000.00", card=ANNA, redeem=100)["redeemed"]["points"] == 100


def test_no_redemption_at_all_after_max_hours(offline_till: Any) -> None:
    till = offline_till
    till.clock.advance(hours=2, seconds=-62)  # one second before max_hours since the sync
    assert till.calc("R-1", "1000.00", card=ANNA, redeem=10)["redeemed"]["points"] == 10
    till.clock.advance(seconds=1)
    with pytest.raises(OfflineLimit, match="max_hours"):
        till.calc("R-1", "1000.00", card=ANNA, redeem=10)
    calc = till.calc("R-1", "1000.00", card=ANNA, redeem="max")
    assert calc["redeemed"]["points"] == 0
    assert calc["hints"][0] == {
        "kind": "offline",
        "text": "Нет связи с офисом более 2 ч: списание баллов недоступно",
        "promotion": None,
    }
    # Accruing and confirming go on offline.
    assert till.service.confirm("R-1")["accrued"]["points"] > 0


def test_limits_reset_when_a_sync_completes(offline_till: Any, hq: Any) -> None:
    till = offline_till
    till.sale("R-1", "1000.00", card=ANNA, redeem=100)
    hq.start()  # back, on the same address and database
    till.syncer.attempt()
    assert not till.service.offline
    assert hq.card(ANNA)["balance"] == 900  # the offline redemption is at HQ
    # Online: HQ's view decides; no offline limit.
    assert till.calc("R-2", "1000.00", card=ANNA, redeem=300)["redeemed"]["points"] == 300
    till.service.cancel("R-2")
    hq.stop()
    till.clock.advance(seconds=61)
    till.syncer.attempt()
    assert till.service.offline
    # What was redeemed before the last completed sync is at HQ: a fresh allowance.
    assert till.calc("R-3", "1000.00", card=ANNA, redeem=100)["redeemed"]["points"] == 100
