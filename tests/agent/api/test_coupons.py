"""Coupons over the POS API: issued, honoured later; expired, forged, reused."""

from __future__ import annotations

from datetime import date

from tests.conftest import ANNA, BORIS, KEY, line, program
from tillgate.core.rules.coupons import CouponSigner, serial_for

COFFEE_COUPON = {
    "id": "coffee-15",
    "name": "−15% на кофе",
    "who": {"card": True},
    "when": {"min_total": "500.00", "items": {"categories": ["bakery"]}},
    "reward": {
        "kind": "coupon",
        "title": "−15% на кофе",
        "valid_days": 30,
        "items": {"categories": ["coffee"]},
        "discount": {"kind": "percent", "value": 15, "on": "matching"},
    },
}


def issue(till) -> str:
    r = till.sale("ISSUE", [line("cake", "600.00", 1, "bakery")], card=ANNA)
    coupons = [p for p in r["print"] if p["kind"] == "coupon"]
    assert len(coupons) == 1, r["print"]
    assert coupons[0]["valid_until"] == "2026-12-23"
    assert r["confirmed"]["printed"] == r["print"]
    return str(coupons[0]["code"])


def test_coupon_issued_then_honoured_once(make_till):
    till = make_till(program(COFFEE_COUPON))
    code = issue(till)
    r = till.ok_calc("USE", [line("latte", "200.00", 1, "coffee")], card=BORIS, coupons=[code])
    assert r["coupons"] == {"applied": [code], "rejected": []}
    assert r["discount"] == "30.00"
    assert till.confirm("USE").status_code == 200
    again = till.ok_calc("AGAIN", [line("latte", "200.00", 1, "coffee")], coupons=[code])
    assert again["coupons"]["rejected"] == [{"code": code, "reason": "used"}]
    assert again["discount"] == "0.00"


def test_coupon_code_is_deterministic_per_receipt(make_till):
    till = make_till(program(COFFEE_COUPON))
    a = till.ok_calc("SAME", [line("cake", "600.00", 1, "bakery")], card=ANNA)
    b = till.ok_calc("SAME", [line("cake", "600.00", 1, "bakery")], card=ANNA)
    assert a["print"] == b["print"]


def test_expired_forged_and_foreign_coupons_are_rejected(make_till):
    till = make_till(program(COFFEE_COUPON))
    signer = CouponSigner(KEY)
    expired = signer.issue(
        promotion_id="coffee-15", serial=serial_for("x", "y"), valid_until=date(2026, 11, 22)
    )
    good = signer.issue(
        promotion_id="coffee-15", serial=serial_for("x", "z"), valid_until=date(2026, 12, 31)
    )
    forged = good[:-1] + ("A" if good[-1] != "A" else "B")
    foreign = CouponSigner(b"other-chain-key-000000000000000!").issue(
        promotion_id="coffee-15", serial=1, valid_until=date(2026, 12, 31)
    )
    unknown = signer.issue(promotion_id="no-such-promo", serial=2, valid_until=date(2026, 12, 31))
    r = till.ok_calc(
        "R1",
        [line("latte", "200.00", 1, "coffee")],
        coupons=[expired, forged, foreign, unknown, "garbage!!"],
    )
    reasons = {c["code"]: c["reason"] for c in r["coupons"]["rejected"]}
    assert reasons[expired] == "expired"
    assert reasons[forged] == "invalid"
    assert reasons[foreign] == "invalid"
    assert reasons[unknown] == "unknown_promotion"
    assert reasons["garbage!!"] == "invalid"
    assert r["discount"] == "0.00"
    warnings = [h for h in r["hints"] if h["kind"] == "warning"]
    assert warnings


def test_a_coupon_accepted_by_two_open_receipts_is_used_once(make_till):
    till = make_till(program(COFFEE_COUPON))
    code = issue(till)
    till.ok_calc("A", [line("latte", "200.00", 1, "coffee")], coupons=[code])
    till.ok_calc("B", [line("latte", "200.00", 1, "coffee")], coupons=[code])
    assert till.confirm("A").status_code == 200
    r = till.confirm("B")
    assert r.status_code == 409 and r.json()["error"]["code"] == "coupon_already_used"
    # nothing of B was written: it can be recalculated and confirmed without the coupon
    again = till.ok_calc("B", [line("latte", "200.00", 1, "coffee")])
    assert again["discount"] == "0.00"
    assert till.confirm("B").status_code == 200


def test_coupon_only_promotion_needs_its_code(make_till):
    signer = CouponSigner(KEY)
    promo = {
        "id": "vip-20",
        "name": "VIP",
        "who": {"card": False},
        "when": {"coupon": True},
        "reward": {"kind": "percent", "value": 20, "on": "order"},
    }
    till = make_till(program(promo))
    plain = till.ok_calc("R1", [line("a", "100.00")])
    assert plain["discount"] == "0.00"
    code = signer.issue(promotion_id="vip-20", serial=7, valid_until=date(2027, 1, 1))
    r = till.ok_calc("R2", [line("a", "100.00")], coupons=[code.lower()])
    assert r["discount"] == "20.00" and r["coupons"]["applied"] == [code]
