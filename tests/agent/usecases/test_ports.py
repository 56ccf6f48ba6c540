"""The use cases' collaborators come in through the constructor, with do-nothing defaults."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ANNA, CARDS, KEY, line, program
from tillgate.agent.store.db import Database
from tillgate.agent.usecases import TillService, TillSettings, sale_request
from tillgate.agent.usecases.ports import AlwaysOnline, NoDevices, NoPrinter
from tillgate.agent.usecases.session import CardSession
from tillgate.core.clock import ManualClock
from tillgate.core.errors import InsufficientPoints, InvalidRequest
from tillgate.core.rules.coupons import CouponSigner
from tillgate.core.rules.program import parse_program
from tillgate.sync.engine import OnlineState

COUPON = {
    "id": "coffee-coupon",
    "name": "Купон на кофе",
    "when": {"min_total": "100.00"},
    "reward": {
        "kind": "coupon",
        "title": "−15% на кофе",
        "valid_days": 14,
        "discount": {"kind": "percent", "value": 15, "on": "matching"},
        "items": {"categories": ["coffee"]},
    },
}


class Printed:
    def __init__(self) -> None:
        self.jobs: list[tuple[str, list[dict[str, Any]]]] = []

    def submit(self, receipt_id: str, items: Sequence[dict[str, Any]]) -> None:
        self.jobs.append((receipt_id, list(items)))


class PaperOut:
    def hints(self) -> list[dict[str, Any]]:
        return [{"kind": "device", "text": "Нет бумаги", "promotion": None}]


def make(tmp_path: Path, clock: ManualClock, **ports: Any) -> TillService:
    service = TillService(
        db=Database(tmp_path / "till.sqlite3"),
        settings=TillSettings(till="till", store="store-01", timezone="Europe/Moscow"),
        clock=clock,
        session=CardSession(seconds=120),
        signer=CouponSigner(KEY),
        **ports,
    )
    service.install_program(parse_program(program(COUPON)), version="v1")
    service.import_cards(list(CARDS))
    return service


def test_defaults_print_nothing_hint_nothing_and_are_online(
    tmp_path: Path, clock: ManualClock
) -> None:
    service = make(tmp_path, clock)
    assert isinstance(service.connectivity, AlwaysOnline)
    assert isinstance(service.printer, NoPrinter) and isinstance(service.devices, NoDevices)
    calc = service.calculate(sale_request("R-1", [line("c", "150.00")], card=ANNA))
    assert calc["offline"] is False and all(h["kind"] != "device" for h in calc["hints"])
    assert service.confirm("R-1")["printed"][0]["kind"] == "coupon"
    service.db.close()


def test_the_print_queue_and_device_hints_handed_in_are_used(
    tmp_path: Path, clock: ManualClock
) -> None:
    printed, online = Printed(), OnlineState()
    service = make(tmp_path, clock, printer=printed, devices=PaperOut(), connectivity=online)
    calc = service.calculate(sale_request("R-1", [line("c", "150.00")], card=ANNA))
    assert calc["hints"][-1] == {"kind": "device", "text": "Нет бумаги", "promotion": None}
    service.confirm("R-1")
    service.confirm("R-1")  # a retry prints nothing more
    [(receipt_id, items)] = printed.jobs
    assert receipt_id == "R-1" and [i["kind"] for i in items] == ["coupon"]
    # Interception prints inside the POS's receipt: nothing goes to the queue.
    service.calculate(sale_request("R-2", [line("c", "150.00")], card=ANNA))
    service.confirm("R-2", print_items=False)
    assert len(printed.jobs) == 1
    # Sync's online state is read on every call.
    online.set(True)
    assert service.calculate(sale_request("R-3", [line("c", "10.00")]))["offline"] is True
    service.db.close()


def test_a_refused_redemption_says_how_much_can_be_spent(
    tmp_path: Path, clock: ManualClock
) -> None:
    service = make(tmp_path, clock)
    with pytest.raises(InsufficientPoints) as info:
        service.calculate(sale_request("R-1", [line("c", "150.00")], card=ANNA, redeem=5))
    assert info.value.details == {"redeemable": 0}
    service.db.close()


def test_a_printed_receipt_is_checked_like_a_pos_request() -> None:
    with pytest.raises(InvalidRequest, match="qty must be greater than 0"):
        sale_request("R-1", [{"sku": "x", "qty": "0", "price": "1.00"}])
    with pytest.raises(InvalidRequest, match="more than two decimal places"):
        sale_request("R-1", [{"sku": "x", "qty": "1", "price": "1.001"}])
    with pytest.raises(InvalidRequest, match="receipt_id"):
        sale_request("no spaces allowed", [])
    req = sale_request("R-1", [{"sku": " x ", "qty": "2", "price": "89"}])
    assert (req.lines[0].sku, str(req.lines[0].qty), str(req.lines[0].price)) == ("x", "2", "89.00")


def test_the_pos_api_error_body_carries_the_details(make_till: Any) -> None:
    till = make_till()
    r = till.calc("R-1", [line("c", "150.00")], card=ANNA, redeem=5)
    assert r.status_code == 409
    assert r.json() == {
        "error": {
            "code": "insufficient_points",
            "message": "5 points asked, at most 0 can be spent on this receipt",
            "redeemable": 0,
        }
    }
