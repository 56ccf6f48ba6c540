"""Idempotency as Stripe does it, and amounts a POS cannot mean, over a real POS API.

A retried confirm or refund with the same body answers what the first one answered; the
same id with another body is 409 ``idempotency_mismatch`` naming the field, and changes
nothing. Amounts are ASCII digits only; a line sold by the unit returns in whole units.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from tests.conftest import ANNA, line, program
from tillgate.agent.usecases.request import sale_request
from tillgate.core.errors import InvalidRequest


def state(till: Any) -> dict[str, Any]:
    """Everything a confirm or a refund writes, as it stands."""
    with till.service.db.read() as conn:

        def rows(sql: str) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in conn.execute(sql).fetchall()]

        return {
            "receipts": rows(
                "SELECT receipt_id, status, paid, fiscal_id, response, returned_kop"
                " FROM receipts ORDER BY receipt_id"
            ),
            "ledger": rows(
                "SELECT id, kind, points, receipt_id, refund_id FROM ledger ORDER BY seq"
            ),
            "refunds": rows("SELECT refund_id, receipt_id, request, response FROM refunds"),
            "refund_lines": rows("SELECT * FROM refund_lines ORDER BY receipt_id, line_index"),
            "facts": rows("SELECT id, body FROM facts ORDER BY id"),
            "lots": rows("SELECT id, remaining FROM lots ORDER BY id"),
        }


def mismatch(r: httpx.Response, field: str) -> dict[str, Any]:
    assert r.status_code == 409, r.text
    error = dict(r.json()["error"])
    assert error["code"] == "idempotency_mismatch" and error["field"] == field
    assert field in error["message"] and "Nothing was changed" in error["message"]
    return error


# ---------------------------------------------------------------- confirm


def test_confirm_retried_with_another_paid_or_fiscal_id_is_409_and_changes_nothing(
    make_till: Any,
) -> None:
    till = make_till(program())
    till.ok_calc("R1", [line("a", "1000.00")], card=ANNA)
    first = till.confirm("R1", paid="1000.00", fiscal_id="FN-1")
    assert first.status_code == 200, first.text
    after_first = state(till)

    # The same body, or the same amount written otherwise: the first answer again.
    assert till.confirm("R1", paid="1000.00", fiscal_id="FN-1").json() == first.json()
    assert till.confirm("R1", paid="1000", fiscal_id="FN-1").json() == first.json()

    error = mismatch(till.confirm("R1", paid="999.00", fiscal_id="FN-1"), "paid")
    assert error["first"] == "1000.00" and "'999.00'" in error["message"]
    error = mismatch(till.confirm("R1", paid="1000.00", fiscal_id="FN-2"), "fiscal_id")
    assert error["first"] == "FN-1" and "'FN-2'" in error["message"]
    mismatch(till.confirm("R1", paid="1000.00"), "fiscal_id")  # fiscal_id left out
    mismatch(till.confirm("R1"), "paid")  # no body at all
    assert state(till) == after_first


def test_a_confirm_without_a_body_is_retried_without_one(make_till: Any) -> None:
    till = make_till(program())
    till.ok_calc("R1", [line("a", "100.00")], card=ANNA)
    first = till.confirm("R1")
    assert first.status_code == 200
    assert till.confirm("R1").json() == first.json()
    assert till.http.post("/v1/receipts/R1/confirm", json={}).json() == first.json()
    before = state(till)
    error = mismatch(till.confirm("R1", paid="100.00"), "paid")
    assert error["first"] is None and "with paid nothing" in error["message"]
    assert state(till) == before


# ---------------------------------------------------------------- refund


def refund(till: Any, rid: str, refund_id: str, lines: Any = None) -> httpx.Response:
    body: dict[str, Any] = {"refund_id": refund_id}
    if lines is not None:
        body["lines"] = lines
    return till.http.post(f"/v1/receipts/{rid}/refund", json=body)


def test_refund_retried_with_other_lines_or_receipt_is_409_and_changes_nothing(
    make_till: Any,
) -> None:
    till = make_till(program())
    till.sale("R1", [line("a", "100.00", 3), line("b", "50.00", 2)], card=ANNA)
    till.sale("R2", [line("a", "100.00", 3)], card=ANNA)
    first = refund(till, "R1", "RF-1", [{"index": 0, "qty": 1}, {"index": 1, "qty": 1}])
    assert first.status_code == 200, first.text
    after_first = state(till)

    # The same lines, however written or ordered: the first answer again.
    for same in (
        [{"index": 0, "qty": 1}, {"index": 1, "qty": 1}],
        [{"index": 1, "qty": "1.000"}, {"index": 0, "qty": "1"}],
    ):
        assert refund(till, "R1", "RF-1", same).json() == first.json()

    error = mismatch(refund(till, "R1", "RF-1", [{"index": 0, "qty": 2}]), "lines")
    assert error["first"] == [{"index": 0, "qty": "1"}, {"index": 1, "qty": "1"}]
    assert "line 0 × 2" in error["message"]
    mismatch(refund(till, "R1", "RF-1", [{"index": 0, "qty": 1}]), "lines")
    error = mismatch(refund(till, "R1", "RF-1"), "lines")  # the whole receipt instead
    assert "the rest of the receipt" in error["message"]
    error = mismatch(refund(till, "R2", "RF-1", [{"index": 0, "qty": 1}]), "receipt_id")
    assert error["first"] == "R1"
    assert state(till) == after_first

    # A whole-receipt refund is retried as one.
    whole = refund(till, "R2", "RF-2")
    assert whole.status_code == 200
    assert refund(till, "R2", "RF-2").json() == whole.json()
    mismatch(refund(till, "R2", "RF-2", [{"index": 0, "qty": 3}]), "lines")


def test_concurrent_retries_with_two_bodies_make_one_refund(make_till: Any) -> None:
    till = make_till(program())
    till.sale("R1", [line("a", "100.00", 4)], card=ANNA)
    bodies = [[{"index": 0, "qty": 1}], [{"index": 0, "qty": 2}]] * 3
    barrier = threading.Barrier(len(bodies))
    out: list[httpx.Response | None] = [None] * len(bodies)

    def go(k: int) -> None:
        barrier.wait()
        out[k] = refund(till, "R1", "RF-1", bodies[k])

    threads = [threading.Thread(target=go, args=(k,)) for k in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    answers = [r for r in out if r is not None]
    assert len(answers) == len(bodies)
    won = [r for r in answers if r.status_code == 200]
    lost = [r for r in answers if r.status_code != 200]
    assert len(won) == 3 and len({r.text for r in won}) == 1
    for r in lost:
        mismatch(r, "lines")
    with till.service.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM refunds").fetchone()[0] == 1
        [(returned,)] = conn.execute("SELECT returned_qty FROM refund_lines").fetchall()
    winner = next(b for b, r in zip(bodies, out, strict=True) if r is not None and r in won)
    assert returned == str(winner[0]["qty"])


# ---------------------------------------------------------------- ASCII digits only


NOT_ASCII = ["１０.00", "١٠.٠٠", "۱۰.۰۰", "१०.००", "1_000.00", "1 000.00", "1,000.00", "NaN"]


@pytest.mark.parametrize("price", NOT_ASCII)
def test_prices_in_other_digits_or_with_separators_are_400(make_till: Any, price: str) -> None:
    till = make_till(program())
    r = till.calc("R1", [line("a", price)], card=ANNA)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert "ASCII digits" in error["message"] and "89.00" in error["message"]
    assert state(till)["receipts"] == []  # nothing was calculated


def test_quantities_and_paid_in_other_digits_are_400(make_till: Any) -> None:
    till = make_till(program())
    for qty in ("２", "٢", "1_0", "1e1_0"):
        r = till.calc("R1", [line("a", "10.00", qty)])
        assert r.status_code == 400 and "ASCII digits" in r.text, (qty, r.text)
    assert state(till)["receipts"] == []
    till.ok_calc("R1", [line("a", "10.00")], card=ANNA)
    before = state(till)
    for paid in ("１０.00", "1_0.00"):
        r = till.confirm("R1", paid=paid)
        assert r.status_code == 400 and "ASCII digits" in r.json()["error"]["message"]
    assert state(till) == before  # still only calculated
    # ASCII is as before: plain, with a point, with an exponent.
    for price in ("89", "89.5", "8.9e1", " 89.00 "):
        assert till.ok_calc("R2", [line("a", price)])["lines"][0]["price"] in ("89.00", "89.50")


def test_a_printed_receipt_is_held_to_the_same_digits() -> None:
    """Receipt interception builds its sale from the same checks as the POS API."""
    with pytest.raises(InvalidRequest, match="ASCII digits"):
        sale_request("R1", [{"sku": "a", "qty": 1, "price": "١٠٠.٠٠"}])
    assert sale_request("R1", [{"sku": "a", "qty": 1, "price": "100.00"}]).lines[0].price == 100


# ---------------------------------------------------------------- whole units


def test_a_line_sold_by_the_unit_refunds_in_whole_units_a_weighed_one_in_any(
    make_till: Any,
) -> None:
    till = make_till(program())
    till.sale(
        "R1",
        [
            line("bread", "100.00", 2),  # by the unit
            line("cheese", "800.00", "0.750"),  # weighed: a fractional quantity
            line("apples", "150.00", 1, weighed=True),  # weighed, 1 kg exactly
            line("milk", "90.00", 3, weighed=False),  # by the unit, said so
        ],
        card=ANNA,
    )
    before = state(till)
    for index, qty in ((0, "0.5"), (0, "1.5"), (3, "0.001")):
        r = refund(till, "R1", f"RF-{index}-{qty}", [{"index": index, "qty": qty}])
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "fractional_quantity" and error["index"] == index
        assert f"line {index}" in error["message"] and "whole number of units" in error["message"]
    assert state(till) == before

    ok = [(0, "1"), (0, "1.000"), (1, "0.250"), (2, "0.5"), (3, 2)]
    for index, qty in ok:
        r = refund(till, "R1", f"OK-{index}-{qty}", [{"index": index, "qty": qty}])
        assert r.status_code == 200, (index, qty, r.text)
    with till.service.db.read() as conn:
        returned = dict(conn.execute("SELECT line_index, returned_qty FROM refund_lines"))
    assert {i: float(q) for i, q in returned.items()} == {0: 2, 1: 0.25, 2: 0.5, 3: 2}
    # What is left of a weighed line still returns in part, and the rest in one go.
    assert refund(till, "R1", "LAST", [{"index": 2, "qty": "0.5"}]).status_code == 200
    assert refund(till, "R1", "REST").status_code == 200
