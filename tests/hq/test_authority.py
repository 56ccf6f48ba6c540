"""Head office is the authority: it takes from a till only what a till makes.

Each test forges what an attacker with one till's credential would push — a till-written
``adjust`` or ``expire``, points out of all bounds, an unknown card, a far-future entry —
and checks that head office keeps it **quarantined** (stored, flagged with its reason, left
out of every balance), that it never blocks the entries after it, and that an admin's
decision (``release``/``reject``) reaches every till through the change feed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import ANNA, BORIS, program
from tests.hq.helpers import T0, HqTest, TillClient, iso

NEW_CARD = "2900000099998"


def _chain(hq: HqTest, **overrides: Any) -> tuple[TillClient, TillClient]:
    """A program, ANNA with 100 points and BORIS with none, and two enrolled tills."""
    hq.publish(program(**overrides))
    hq.cards(BORIS, **{ANNA: 100})
    return hq.enroll("till-1"), hq.enroll("till-2")


def _feed_card(till: TillClient, number: str) -> dict[str, Any] | None:
    cards = {c["number"]: c for c in till.changes(0)["cards"]}
    return cards.get(number)


def _quarantined(hq: HqTest) -> list[dict[str, Any]]:
    r = hq.admin.get("/v1/admin/flags")
    assert r.status_code == 200, r.text
    return list(r.json()["quarantined"])


FORGED: list[tuple[str, dict[str, Any], str]] = [
    ("a till's adjust", {"kind": "adjust", "points": 10**9}, "hq_only_kind"),
    ("a till's expire", {"kind": "expire", "points": -100, "ref": "x"}, "hq_only_kind"),
    ("10^12 points", {"kind": "accrue", "points": 10**12}, "points_out_of_bounds"),
    ("a credit as a debit", {"kind": "redeem", "points": 50}, "wrong_sign"),
    ("a debit as a credit", {"kind": "accrue", "points": -50}, "wrong_sign"),
    ("a far-future entry", {"kind": "accrue", "points": 10, "at": "9999-12-31"}, "future"),
    ("an unknown card", {"kind": "accrue", "points": 10, "card": "2900000077777"}, "unknown_card"),
    ("a return of nothing", {"kind": "return", "points": 500, "receipt_id": "R-9"}, "over_return"),
]


@pytest.mark.parametrize(("what", "forged", "code"), FORGED, ids=[f[0] for f in FORGED])
def test_what_a_till_does_not_make_is_quarantined_never_spendable(
    hq: HqTest, what: str, forged: dict[str, Any], code: str
) -> None:
    one, two = _chain(hq)
    spec = dict(forged)
    at = T0
    if spec.pop("at", None) == "9999-12-31":
        at = T0.replace(year=9999, month=12, day=31)
    card = spec.pop("card", ANNA)
    kind, points = spec.pop("kind"), spec.pop("points")
    bad = one.next(card, kind, points, at=at, **spec)
    honest = one.next(ANNA, "accrue", 7, receipt_id="R-2")
    reply = one.ok_push([bad, honest])
    # Quarantined entries count as stored: the till's sync moves on.
    assert (reply["through_seq"], reply["stored"], reply["conflicts"]) == (2, 2, [])
    assert [(q["seq"], q["id"], q["code"]) for q in reply["quarantined"]] == [
        (1, bad["id"], code)
    ], reply
    assert reply["quarantined"][0]["reason"]
    # Left out of HQ's balance; the honest entry after it counts.
    assert hq.card(ANNA)["balance"] == 107
    for till in (one, two):
        anna = _feed_card(till, ANNA)
        assert anna is not None and anna["balance"] == 107
        assert sum(lot["points"] for lot in anna["lots"]) == 107
    # Listed for an admin, with its reason.
    flags = _quarantined(hq)
    assert [(f["till"], f["seq"], f["kind"], f["points"], f["code"]) for f in flags] == [
        ("till-1", 1, kind, points, code)
    ]
    assert flags[0]["status"] == "open"


def test_an_unknown_card_gets_no_card_row_and_reaches_no_till(hq: HqTest) -> None:
    one, two = _chain(hq, register_unknown_cards=False)
    reply = one.ok_push([one.next("2900000077777", "accrue", 10**6, receipt_id="R-1")])
    assert [q["code"] for q in reply["quarantined"]] == ["unknown_card"]
    assert hq.admin.get("/v1/admin/cards/2900000077777").status_code == 404
    assert _feed_card(two, "2900000077777") is None


def test_entries_that_were_refused_whole_before_are_quarantined_now(hq: HqTest) -> None:
    """An unknown kind or points no entry can have used to refuse the whole push (a wedge)."""
    one, _ = _chain(hq)
    batch = [
        one.next(ANNA, "accrue", 5),
        one.next(ANNA, "gift", 5),
        one.next(ANNA, "accrue", 10**13),
        one.next(ANNA, "accrue", 6),
    ]
    reply = one.ok_push(batch)
    assert reply["through_seq"] == 4
    assert [(q["seq"], q["code"]) for q in reply["quarantined"]] == [
        (2, "unknown_kind"),
        (3, "points_out_of_bounds"),
    ]
    assert hq.card(ANNA)["balance"] == 111
    # The next push goes on from seq 5.
    assert one.ok_push([one.next(ANNA, "accrue", 1)])["through_seq"] == 5


def test_clock_skew_bound(hq: HqTest) -> None:
    one, _ = _chain(hq)
    near = one.next(ANNA, "accrue", 1, at=T0 + timedelta(seconds=299))
    far = one.next(ANNA, "accrue", 2, at=T0 + timedelta(seconds=301))
    reply = one.ok_push([near, far])
    assert [q["seq"] for q in reply["quarantined"]] == [2]
    assert "ahead of head office" in reply["quarantined"][0]["reason"]
    # Once head office's clock has caught up, the same time is fine.
    hq.clock.advance(seconds=10)
    reply = one.ok_push([one.next(ANNA, "accrue", 4, at=T0 + timedelta(seconds=301))])
    assert reply["quarantined"] == []


def test_the_program_sets_the_clock_skew_it_allows(hq: HqTest) -> None:
    one, _ = _chain(hq, limits={"max_clock_skew_seconds": 3600})
    hour = one.next(ANNA, "accrue", 1, at=T0 + timedelta(minutes=59), available_from=iso(T0))
    more = one.next(ANNA, "accrue", 2, at=T0 + timedelta(minutes=61), available_from=iso(T0))
    reply = one.ok_push([hour, more])
    assert [q["seq"] for q in reply["quarantined"]] == [2]
    assert "at most 3600 s" in reply["quarantined"][0]["reason"]


def test_the_program_sets_how_many_points_one_entry_may_move(hq: HqTest) -> None:
    # At 0.01 a point, half of a 100 000 000.00 receipt is 5·10^9 points: a till can redeem
    # that much, so head office takes it; past what any receipt can move it still refuses.
    one, _ = _chain(hq, point_value="0.01", max_redeem_percent=50)
    big = one.next(ANNA, "accrue", 3 * 10**9, receipt_id="R-1", available_from=iso(T0))
    huge = one.next(ANNA, "accrue", 10**13, receipt_id="R-2", available_from=iso(T0))
    reply = one.ok_push([big, huge])
    assert [(q["seq"], q["code"]) for q in reply["quarantined"]] == [(2, "points_out_of_bounds")]


def test_a_card_registered_on_first_use_in_the_same_push_is_taken(hq: HqTest) -> None:
    one, two = _chain(hq)  # the test program registers unknown cards
    reply = one.ok_push(
        [one.next(NEW_CARD, "accrue", 10, receipt_id="R-1")],
        cards_new=[{"number": NEW_CARD, "status": "new", "created_at": iso(T0)}],
    )
    assert reply["quarantined"] == []
    assert hq.card(NEW_CARD)["balance"] == 10
    assert _feed_card(two, NEW_CARD) is not None


def test_a_registration_the_program_does_not_allow_is_ignored(hq: HqTest) -> None:
    one, _ = _chain(hq, register_unknown_cards=False)
    reply = one.ok_push(
        [one.next(NEW_CARD, "accrue", 10)],
        cards_new=[{"number": NEW_CARD, "status": "new", "created_at": iso(T0)}],
    )
    assert [q["code"] for q in reply["quarantined"]] == ["unknown_card"]
    assert hq.admin.get(f"/v1/admin/cards/{NEW_CARD}").status_code == 404


def test_a_registration_arriving_after_its_entries_releases_them(hq: HqTest) -> None:
    """A till sends at most a batch of new cards per push: a card may come a push late."""
    one, two = _chain(hq)
    first = one.ok_push([one.next(NEW_CARD, "accrue", 10, receipt_id="R-1")])
    assert [q["code"] for q in first["quarantined"]] == ["unknown_card"]
    one.ok_push([], cards_new=[{"number": NEW_CARD, "status": "new", "created_at": iso(T0)}])
    assert hq.card(NEW_CARD)["balance"] == 10
    assert _feed_card(two, NEW_CARD)["balance"] == 10  # type: ignore[index]
    assert [f["status"] for f in _quarantined(hq)] == []


def test_importing_the_card_afterwards_lets_its_entries_count(hq: HqTest) -> None:
    one, two = _chain(hq, register_unknown_cards=False)
    first = one.ok_push([one.next(NEW_CARD, "accrue", 10), one.next(NEW_CARD, "adjust", 99)])
    assert [q["code"] for q in first["quarantined"]] == ["unknown_card", "hq_only_kind"]
    hq.cards(NEW_CARD)
    assert hq.card(NEW_CARD)["balance"] == 10  # the adjust stays out
    assert _feed_card(two, NEW_CARD)["balance"] == 10  # type: ignore[index]
    assert [f["code"] for f in _quarantined(hq)] == ["hq_only_kind"]


def test_returns_only_give_back_what_the_receipt_took(hq: HqTest) -> None:
    one, _ = _chain(hq)
    batch = [
        one.next(ANNA, "redeem", -40, receipt_id="R-1"),
        one.next(ANNA, "return", 30, receipt_id="R-1"),
        one.next(ANNA, "return", 20, receipt_id="R-1"),  # 50 > 40 taken
        one.next(ANNA, "return", 10, receipt_id="R-1"),  # exactly what is left
    ]
    reply = one.ok_push(batch)
    assert [(q["seq"], q["code"]) for q in reply["quarantined"]] == [(3, "over_return")]
    assert hq.card(ANNA)["balance"] == 100
    # Another till's receipt of the same id is another receipt.
    two = hq.enroll("till-3")
    reply = two.ok_push([two.next(ANNA, "return", 5, receipt_id="R-1")])
    assert [q["code"] for q in reply["quarantined"]] == ["over_return"]


def test_release_makes_the_entry_count_everywhere(hq: HqTest) -> None:
    one, two = _chain(hq)
    # A till whose clock ran two hours fast: its lot was spendable at once all the same.
    fast = one.next(ANNA, "accrue", 50, at=T0 + timedelta(hours=2), available_from=iso(T0))
    reply = one.ok_push([fast])
    flag = reply["quarantined"][0]
    (listed,) = _quarantined(hq)
    r = hq.admin.post(f"/v1/admin/flags/{listed['id']}/release", json={"reason": "clock fixed"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "released"
    assert hq.card(ANNA)["balance"] == 150
    assert _feed_card(one, ANNA)["balance"] == _feed_card(two, ANNA)["balance"] == 150  # type: ignore[index]
    assert _quarantined(hq) == []
    assert flag["id"] == listed["entry_id"]
    # A decision is final.
    again = hq.admin.post(f"/v1/admin/flags/{listed['id']}/reject", json={})
    assert again.status_code == 400 and "already released" in again.json()["error"]["message"]
    audit = _point_changes(hq)
    assert [(a["action"], a["reason"]) for a in audit] == [("flag.release", "clock fixed")]


def _point_changes(hq: HqTest) -> list[dict[str, Any]]:
    """The audit rows of changes to points (the log also has the set-up's program, cards…)."""
    audit = hq.admin.get("/v1/admin/audit").json()["audit"]
    return [a for a in audit if a["action"].startswith(("flag.", "card.adjust"))]


def test_reject_keeps_it_out_and_both_tills_agree(hq: HqTest) -> None:
    one, two = _chain(hq)
    one.ok_push([one.next(ANNA, "adjust", 10**9)])
    (listed,) = _quarantined(hq)
    r = hq.admin.post(f"/v1/admin/flags/{listed['id']}/reject", json={"reason": "forged"})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["balance"]) == ("rejected", 100)
    assert _feed_card(one, ANNA)["balance"] == _feed_card(two, ANNA)["balance"] == 100  # type: ignore[index]
    shown = hq.card(ANNA)
    assert [(e["kind"], e["quarantine"]) for e in shown["entries"]] == [
        ("adjust", None),
        ("adjust", "rejected"),
    ]
    assert hq.admin.post("/v1/admin/flags/999/release", json={}).status_code == 404
    assert hq.admin.post(f"/v1/admin/flags/{2**64}/release", json={}).status_code == 404
    assert hq.admin.post("/v1/admin/flags/x/release", json={}).status_code == 400


def test_points_beyond_the_bound_cannot_be_released(hq: HqTest) -> None:
    one, _ = _chain(hq)
    one.ok_push([one.next(ANNA, "accrue", 2**63 - 1)])
    (listed,) = _quarantined(hq)
    r = hq.admin.post(f"/v1/admin/flags/{listed['id']}/release", json={})
    assert r.status_code == 400 and "cannot be released" in r.json()["error"]["message"]
    assert _quarantined(hq)[0]["status"] == "open" and _point_changes(hq) == []
    r = hq.admin.post(f"/v1/admin/flags/{listed['id']}/reject", json={})
    assert r.status_code == 200 and r.json()["balance"] == 100


def test_hq_adjust_credits_and_debits_with_an_audit_row(hq: HqTest) -> None:
    _, two = _chain(hq)
    cursor = two.changes(0)["cursor"]
    r = hq.admin.post(
        f"/v1/admin/cards/{ANNA}/adjust",
        json={"points": 25, "reason": "goodwill"},
        headers={"X-Tillgate-Operator": "alice"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == 125
    r = hq.admin.post(f"/v1/admin/cards/{ANNA}/adjust", json={"points": -50, "reason": "typo"})
    assert r.status_code == 200 and r.json()["balance"] == 75
    page = two.changes(cursor)
    assert [(c["number"], c["balance"]) for c in page["cards"]] == [(ANNA, 75)]
    entries = hq.card(ANNA)["entries"]
    assert [(e["till"], e["kind"], e["points"]) for e in entries] == [
        ("hq", "adjust", 100),
        ("hq", "adjust", 25),
        ("hq", "adjust", -50),
    ]
    audit = _point_changes(hq)
    assert [(a["action"], a["subject"], a["reason"], a["operator"]) for a in audit] == [
        ("card.adjust", ANNA, "goodwill", "alice"),
        ("card.adjust", ANNA, "typo", None),
    ]
    assert audit[0]["detail"]["points"] == 25 and audit[0]["at"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"points": 0, "reason": "x"}, 400, "points:"),
        ({"points": 10**10, "reason": "x"}, 400, "points:"),
        ({"points": 5}, 400, "reason: is required"),
        ({"points": 5, "reason": ""}, 400, "reason:"),
        ({"points": "5", "reason": "x"}, 400, "points: must be a whole number"),
    ],
)
def test_bad_adjusts_are_refused_and_write_nothing(
    hq: HqTest, body: dict[str, Any], status: int, words: str
) -> None:
    _chain(hq)
    before = hq.snapshot()
    r = hq.admin.post(f"/v1/admin/cards/{ANNA}/adjust", json=body)
    assert r.status_code == status and words in r.json()["error"]["message"], r.text
    assert hq.snapshot() == before


def test_adjusting_an_unknown_card_is_404(hq: HqTest) -> None:
    _chain(hq)
    r = hq.admin.post("/v1/admin/cards/2900000077777/adjust", json={"points": 5, "reason": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "card_not_found"
    assert "2900000077777" not in r.text


def test_a_till_credential_cannot_decide_or_adjust(hq: HqTest) -> None:
    one, _ = _chain(hq)
    one.ok_push([one.next(ANNA, "adjust", 5)])
    assert one.http.post("/v1/admin/flags/1/release", json={}).status_code == 403
    assert (
        one.http.post(f"/v1/admin/cards/{ANNA}/adjust", json={"points": 5, "reason": "x"})
    ).status_code == 403
    assert one.http.get("/v1/admin/flags").status_code == 403


def test_hq_expiry_is_computed_from_lots_not_taken_from_a_till(hq: HqTest) -> None:
    one, _ = _chain(hq)
    lot = one.next(BORIS, "accrue", 40, receipt_id="R-1", expiry_days=1)
    forged = one.next(BORIS, "expire", -40, ref=lot["id"])
    reply = one.ok_push([lot, forged])
    assert [q["code"] for q in reply["quarantined"]] == ["hq_only_kind"]
    assert hq.card(BORIS)["balance"] == 40
    hq.clock.advance(days=2)
    shown = hq.card(BORIS)  # head office writes its own expire for the lot
    assert shown["balance"] == 0
    assert [(e["till"], e["kind"], e["quarantine"]) for e in shown["entries"]] == [
        ("till-1", "accrue", None),
        ("till-1", "expire", "open"),
        ("hq", "expire", None),
    ]
