"""The change feed's shared card parts (hq/feedparts.py): built once per change of a card
and spliced into every till's page, never stale — not after the card changes, not when
time matures or expires a lot, not when the day the counters' windows end on turns."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import ANNA, BORIS
from tests.hq.helpers import T0, HqTest, TillClient
from tests.hq.test_counters import sale
from tillgate.hq import feed
from tillgate.hq.counters import Totals
from tillgate.hq.feedparts import CardParts, Part
from tillgate.hq.tills import TillId


def pull(
    hq: HqTest, till: TillClient, parts: CardParts, now: datetime, cursor: int = 0
) -> dict[str, Any]:
    """``till``'s page as head office serves it at ``now``, with ``parts`` kept between."""
    body = feed.changes(
        hq.hq.db,
        TillId(id=till.id, store=till.store),
        cursor=cursor,
        limit=feed.MAX_LIMIT,
        now=now,
        lookup_key=hq.hq.lookup_key,
        parts=parts,
    )
    return dict(json.loads(body))


def card(page: dict[str, Any], number: str) -> dict[str, Any]:
    return dict(next(c for c in page["cards"] if c["number"] == number))


def test_a_card_changed_between_two_tills_pulls_is_never_served_stale(hq: HqTest) -> None:
    hq.cards(ANNA, BORIS)
    one, two, three = hq.enroll("till-1"), hq.enroll("till-2"), hq.enroll("till-3")
    one.ok_push([one.next(ANNA, "accrue", 100)])
    parts = CardParts(hq.hq.lookup_key)
    now = hq.clock.now()
    first = pull(hq, two, parts, now)
    assert card(first, ANNA)["balance"] == 100 and parts.misses == 2
    assert card(pull(hq, three, parts, now), ANNA)["balance"] == 100
    assert parts.hits == 2  # both cards, built once for two tills
    one.ok_push([one.next(ANNA, "redeem", -10)])
    # A till past the old change and one reading a snapshot both see the new balance.
    assert card(pull(hq, two, parts, now, first["cursor"]), ANNA)["balance"] == 90
    assert card(pull(hq, three, parts, now), ANNA)["balance"] == 90
    # A change to the card's row (blocked at head office) moves it too.
    r = hq.admin.post(f"/v1/admin/cards/{ANNA}/block", json={"reason": "lost"})
    assert r.status_code == 200, r.text
    assert card(pull(hq, two, parts, now), ANNA)["status"] == "blocked"
    # Every page equals the one built with nothing kept.
    for till in (one, two, three):
        assert pull(hq, till, parts, now) == pull(hq, till, CardParts(hq.hq.lookup_key), now)


def test_a_pending_lot_matures_and_a_lot_expires_with_no_change(hq: HqTest) -> None:
    hq.cards(ANNA)
    one, two = hq.enroll("till-1"), hq.enroll("till-2")
    one.ok_push([one.next(ANNA, "accrue", 80, delay_days=1, expiry_days=1, at=T0)])
    parts = CardParts(hq.hq.lookup_key)
    shown = card(pull(hq, one, parts, T0), ANNA)
    assert (shown["balance"], shown["pending"], len(shown["lots"])) == (0, 80, 1)
    shown = card(pull(hq, two, parts, T0 + timedelta(hours=17)), ANNA)  # before midnight
    assert (shown["balance"], shown["pending"]) == (0, 80) and parts.hits == 1
    # The lot matures: the same change, a new fold.
    shown = card(pull(hq, two, parts, T0 + timedelta(days=1)), ANNA)
    assert (shown["balance"], shown["pending"], len(shown["lots"])) == (80, 0, 1)
    # It expires: gone from the page though head office has written nothing yet.
    shown = card(pull(hq, one, parts, T0 + timedelta(days=2)), ANNA)
    assert (shown["balance"], shown["pending"], shown["lots"]) == (0, 0, [])
    # A page read at an earlier ``now`` (another request's clock) is never served a later
    # fold, nor does it replace it.
    shown = card(pull(hq, two, parts, T0 + timedelta(hours=1)), ANNA)
    assert (shown["balance"], shown["pending"]) == (0, 80)
    assert card(pull(hq, one, parts, T0 + timedelta(days=2)), ANNA)["lots"] == []


def test_each_till_gets_the_others_counts_from_one_shared_part(hq: HqTest) -> None:
    hq.publish()
    hq.cards(ANNA)
    one, two, three = hq.enroll("till-1"), hq.enroll("till-2"), hq.enroll("till-3")
    day = T0.date().isoformat()
    one.ok_push([], facts=[sale("R-1", ANNA, total="10.00", uses=["p"], stamps={"s": 1})])
    two.ok_push([], facts=[sale("S-1", ANNA, total="1.00", uses=["p"])])
    parts = CardParts(hq.hq.lookup_key)
    now = T0 + timedelta(hours=1)
    every = card(pull(hq, three, parts, now), ANNA)["uses"]
    assert every == {
        "visits": 2,
        "spend": [[day, 1100]],
        "uses": {"p": {"total": 2, "days": {day: 2}}},
        "stamps": {"s": 1},
    }
    assert card(pull(hq, one, parts, now), ANNA)["uses"] == {
        "visits": 1,
        "spend": [[day, 100]],
        "uses": {"p": {"total": 1, "days": {day: 1}}},
        "stamps": {},
    }
    assert card(pull(hq, two, parts, now), ANNA)["uses"] == {
        "visits": 1,
        "spend": [[day, 1000]],
        "uses": {"p": {"total": 1, "days": {day: 1}}},
        "stamps": {"s": 1},
    }
    assert parts.misses == 1 and parts.hits == 2
    # Three days on, the same change: the day's uses fall out of the window, totals stay.
    later = card(pull(hq, three, parts, now + timedelta(days=3)), ANNA)["uses"]
    assert later["uses"] == {"p": {"total": 2, "days": {}}} and later["visits"] == 2


def test_parts_made_with_another_lookup_key_are_not_used(hq: HqTest) -> None:
    hq.cards(ANNA)
    till = hq.enroll("till-1")
    other = CardParts(b"\x01" * 32)
    page = pull(hq, till, other, hq.clock.now())
    assert page == pull(hq, till, CardParts(hq.hq.lookup_key), hq.clock.now())
    assert len(other) == 0


def test_a_till_pulling_back_to_back_is_noted_once(hq: HqTest) -> None:
    till = hq.enroll("till-1")
    parts = CardParts(hq.hq.lookup_key)

    def last_pull() -> str | None:
        with hq.hq.db.read() as tx:
            return tx.scalar("SELECT last_pull FROM tills WHERE id = ?", (till.id,))

    pull(hq, till, parts, T0)
    noted = last_pull()
    assert noted is not None
    pull(hq, till, parts, T0 + feed.SEEN_EVERY - timedelta(seconds=1))
    assert last_pull() == noted
    pull(hq, till, parts, T0 + feed.SEEN_EVERY + timedelta(seconds=1))
    assert last_pull() != noted


def _part(change: int, since: datetime, until: datetime | None = None) -> Part:
    return Part(
        change=change, since=since, until=until, body=b"{", row=b"[", totals=Totals(), uses=b"{}"
    )


def test_a_part_holds_for_its_change_and_time_window_only() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    parts = CardParts(b"k", limit=2)
    parts.put("a", _part(5, t, t + timedelta(hours=1)))
    assert parts.get("a", 5, t) is not None
    assert parts.get("a", 5, t + timedelta(minutes=59)) is not None
    assert parts.get("a", 5, t + timedelta(hours=1)) is None  # a lot matured or expired
    assert parts.get("a", 5, t - timedelta(seconds=1)) is None  # an earlier clock
    assert parts.get("a", 4, t) is None and parts.get("a", 6, t) is None
    # An older change (a page read in an older snapshot) never replaces a newer one.
    parts.put("a", _part(4, t + timedelta(minutes=5)))
    assert parts.get("a", 5, t) is not None and parts.get("a", 4, t + timedelta(minutes=5)) is None
    # At most ``limit`` cards, the least recently read going first.
    parts.put("b", _part(1, t))
    assert parts.get("a", 5, t) is not None
    parts.put("c", _part(1, t))
    assert len(parts) == 2 and parts.get("b", 1, t) is None and parts.get("a", 5, t) is not None
