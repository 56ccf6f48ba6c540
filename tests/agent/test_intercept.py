"""The interceptor on a real till service: boundaries, idle receipts, copies, bad receipts.

The printer side is a recorder (the seam the device layer plugs the real printer into); the
service, its data file and the rules engine are real.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import ANNA, program
from tillgate.agent.intercept import FEED_BEFORE_CUT, BlockStyle, Interceptor
from tillgate.core.templates import Template
from tillgate.drivers.base import DeviceEvent

BONUS = {
    "id": "bonus-50",
    "name": "50 баллов",
    "who": {"card": True},
    "reward": {"kind": "points", "value": 50},
}


class Recorder:
    """What the printer driver gets from the interceptor."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.receipts: list[str] = []

    def forward(self, data: bytes) -> bool:
        self.data += data
        return True

    def begin_receipt(self) -> None:
        self.receipts.append("begin")

    def end_receipt(self) -> None:
        self.receipts.append("end")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def receipt(number: int, *, total: str = "223.00", cut: bool = True) -> bytes:
    body = (
        f"ЧЕК № {number}\n"
        "Молоко 3,2% 1л     2 x 89.00   =178.00\n"
        "Хлеб               1 x 45.00    =45.00\n"
        f"ИТОГ                           ={total}\n"
    )
    return b"\x1b@\x1bt\x11" + body.encode("cp866") + (b"\x1dV\x01" if cut else b"")


def make(till: Any) -> tuple[Interceptor, Recorder, list[DeviceEvent], Clock]:
    printer, events, clock = Recorder(), [], Clock()
    interceptor = Interceptor(
        service=till.service,
        printer=printer,
        template=Template.default(),
        style=BlockStyle(profile="TM-T88V", codepage="cp866", columns=42),
        on_event=events.append,
        idle_seconds=3,
        monotonic=clock,
    )
    return interceptor, printer, events, clock


def accruals(till: Any) -> list[tuple[str, int]]:
    history = till.card(ANNA)["history"]
    return [(h["receipt_id"], h["points"]) for h in history if h["kind"] == "accrue"]


def test_receipt_with_card_gets_its_block_before_the_cut(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, events, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    raw = receipt(7)
    for k in range(0, len(raw), 5):  # any chunking
        interceptor.feed(raw[k : k + 5])
    out = bytes(printer.data)
    cut = raw.rindex(b"\x1dV")
    assert out.startswith(raw[:cut]) and out.endswith(raw[cut:])
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in out[cut:].decode("cp866", errors="replace")
    assert printer.receipts == ["begin", "end"]
    [(receipt_id, points)] = accruals(till)
    assert receipt_id.startswith("pos-7-") and points == 56  # silver 3% of 223 → 6, + 50
    assert events[-1].data["ok"] is True and ANNA not in str(events[-1].data)


def test_a_copy_of_the_same_receipt_is_confirmed_once(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, _, _, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    interceptor.feed(receipt(8))
    till.service.present(ANNA, source="card_reader")
    interceptor.feed(receipt(8))  # the cashier printed a copy
    assert len(accruals(till)) == 1


def test_receipt_ended_by_init_without_a_cut(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, _, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    first, second = receipt(9, cut=False), receipt(10, cut=False)
    interceptor.feed(first + second)
    # The block of receipt 9 is printed between it and the ESC @ that starts receipt 10.
    out = bytes(printer.data)
    assert out.startswith(first) and out.endswith(second)
    assert len(out) > len(first) + len(second)
    [(receipt_id, _)] = accruals(till)  # receipt 10 has not ended yet
    assert receipt_id.startswith("pos-9-")


def test_idle_reads_a_receipt_without_a_cut_only_when_it_is_complete(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, _, clock = make(till)
    raw = receipt(11, cut=False)
    half = raw.index("Хлеб".encode("cp866"))
    interceptor.feed(raw[:half])  # a POS printing line by line, waiting for the next item
    clock.now += 10
    interceptor.idle()
    assert bytes(printer.data) == raw[:half]  # not read yet: no total, no block
    interceptor.feed(raw[half:])
    clock.now += 1
    interceptor.idle()  # not quiet long enough
    assert bytes(printer.data) == raw
    clock.now += 3
    interceptor.idle()
    assert len(printer.data) > len(raw)  # no card: the "ask for a card" prompt
    assert "карт" in bytes(printer.data[len(raw) :]).decode("cp866", errors="replace").lower()
    assert interceptor.stats.confirmed == 1
    assert printer.receipts == ["begin", "end"]


def test_receipt_that_does_not_add_up_is_forwarded_untouched(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, events, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    raw = receipt(12, total="999.00")
    interceptor.feed(raw)
    assert bytes(printer.data) == raw
    assert interceptor.stats.unreadable == 1 and interceptor.stats.confirmed == 0
    assert events[-1].data["ok"] is False and "999" in events[-1].data["problem"]
    assert accruals(till) == []


def test_garbage_from_the_pos_is_forwarded_byte_for_byte(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, _, clock = make(till)
    junk = bytes(range(256)) * 4 + b"\x1d(k\xff\xff" + b"\x1b"  # truncated commands at the end
    interceptor.feed(junk)
    clock.now += 10
    interceptor.idle()
    assert bytes(printer.data) == junk
    assert accruals(till) == []


def test_blocked_card_the_receipt_still_prints(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, events, _ = make(till)
    till.service.present("2900000000042", source="card_reader")  # Глеб: blocked
    raw = receipt(13)
    interceptor.feed(raw)
    out = bytes(printer.data)
    cut = raw.rindex(b"\x1dV")
    assert out.startswith(raw[:cut]) and out.endswith(raw[cut:])
    assert "2900000000042" not in str([e.data for e in events])


def test_the_pos_code_page_is_selected_again_after_the_block(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, _, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    # This POS prints in WPC1251 (ESC t 46), selected once, with no ESC @ per receipt.
    body = "ЧЕК № 21\nХлеб               1 x 45.00    =45.00\nИТОГ    =45.00\n"
    first = b"\x1b@\x1bt\x2e" + body.encode("cp1251") + b"\x1dV\x01"
    interceptor.feed(first)
    out = bytes(printer.data)
    cut = out.rindex(b"\x1dV")
    block = out[len(first) - 3 : cut]
    assert b"\x1bt\x11" in block  # the block itself is in CP866 (the configured code page)
    # and hands WPC1251 back before it feeds past the cutter and cuts
    assert block.endswith(b"\x1bt\x2e" + FEED_BEFORE_CUT)
    # A receipt without a block (unreadable) adds nothing.
    printer.data.clear()
    interceptor.feed(b"\xcf\xf0\xe8\xe2\xe5\xf2\n\x1dV\x01")
    assert bytes(printer.data) == b"\xcf\xf0\xe8\xe2\xe5\xf2\n\x1dV\x01"
