"""Printer faults: a port missing, vanishing mid-job, a full queue, stopping — nothing lost.

A fake byte port (the seam every device is written against) injects the faults; the
printer driver, its runner and its threads are the real ones.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import ANNA, line, program
from tests.drivers.fake_printer import Events, wait_until
from tillgate.core.errors import DeviceError
from tillgate.drivers.base import BytePort, DeviceEvent, DeviceStatus
from tillgate.drivers.escpos.model import QRCode
from tillgate.drivers.escpos.parser import parse
from tillgate.drivers.printer import Layout, Printer, SubmitResult
from tillgate.drivers.runner import Backoff

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)


class FakePort:
    """A printer port that can be unplugged, plugged back, or die after N bytes."""

    def __init__(self, *, present: bool = True) -> None:
        self.present = present
        self.is_open = False
        self.opens = 0
        self.written = bytearray()
        self.fail_after: int | None = None  # unplugged once this many bytes were written
        self.lock = threading.Lock()
        self._closed = threading.Event()

    @property
    def name(self) -> str:
        return "fake /dev/usb/lp0"

    def open(self) -> None:
        if not self.present:
            raise DeviceError(f"{self.name} cannot be opened: no such device (is it plugged in?)")
        self.is_open = True
        self.opens += 1
        self._closed.clear()

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes:
        if not (self.present and self.is_open):
            raise DeviceError(f"{self.name} stopped answering: gone")
        self._closed.wait(timeout)
        return b""

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        with self.lock:
            if not (self.present and self.is_open):
                raise DeviceError(f"{self.name}: write failed: gone")
            if self.fail_after is not None and len(self.written) + len(data) > self.fail_after:
                self.written += data[: self.fail_after - len(self.written)]
                self.present = False
                self.fail_after = None
                raise DeviceError(f"{self.name}: write failed: device unplugged")
            self.written += data

    def close(self) -> None:
        self.is_open = False
        self._closed.set()

    def got(self) -> bytes:
        with self.lock:
            return bytes(self.written)


def job(n: int, size: int = 40) -> bytes:
    head = f"\x1b@JOB {n:03d} ".encode()
    return head + b"." * (size - len(head))


@pytest.fixture
def make_printer() -> Iterator[Callable[..., Printer]]:
    made: list[Printer] = []

    def make(port: BytePort, **kw: Any) -> Printer:
        options: dict[str, Any] = {"backoff": FAST, "chunk_size": 16}
        options.update(kw)
        printer = Printer(lambda: port, **options)
        made.append(printer)
        return printer

    yield make
    for printer in made:
        printer.stop()
    left = [t.name for t in threading.enumerate() if t.name in ("printer-writer", "device-printer")]
    assert not left, f"threads left behind: {left}"


def test_port_missing_at_start_is_offline_then_prints_when_plugged_in(
    make_printer: Callable[..., Printer],
) -> None:
    port = FakePort(present=False)
    events = Events()
    printer = make_printer(port, on_event=events)
    printer.start()  # never raises for a missing printer: the sale goes on

    event = events.wait("offline", "Принтер не на связи")
    assert "no such device" in event.data["error"]
    assert printer.status is DeviceStatus.OFFLINE
    assert "no such device" in printer.snapshot()["error"]

    assert printer.submit(job(1), kind="coupons", receipt_id="R1") is SubmitResult.QUEUED
    assert printer.submit(job(2), kind="coupons", receipt_id="R2") is SubmitResult.QUEUED
    events.wait("offline", "Принтер не на связи: чеки в очереди (2)")

    port.present = True
    assert printer.wait_idle(10)
    assert port.got() == job(1) + job(2)
    events.wait("online", "")


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


def test_sale_completes_with_no_printer_and_its_coupon_prints_when_it_returns(
    make_till: Any, make_printer: Callable[..., Printer]
) -> None:
    port = FakePort(present=False)
    events = Events()
    printer = make_printer(port, on_event=events, layout=Layout(profile="TM-T88V"), chunk_size=1024)
    printer.start()
    events.wait("offline")
    till = make_till(program(COFFEE_COUPON))

    sale = till.sale("R1", [line("cake", "600.00", 1, "bakery")], card=ANNA)
    printed = sale["confirmed"]["printed"]
    # What the daemon does after confirm: hand the coupons over, never wait for paper.
    assert printer.print_items(printed, receipt_id="R1") is SubmitResult.QUEUED
    events.wait("offline", "Принтер не на связи: чеки в очереди (1)")

    port.present = True
    assert printer.wait_idle(10)
    codes = [b.data for b in parse(port.got()).blocks if isinstance(b, QRCode)]
    assert codes == [printed[0]["code"]]
    events.wait("online", "")


def test_port_lost_mid_job_reprints_that_job_from_its_start(
    make_printer: Callable[..., Printer], caplog: pytest.LogCaptureFixture
) -> None:
    port = FakePort()
    events = Events()
    printer = make_printer(port, on_event=events)
    printer.start()
    events.wait("online", "")

    port.fail_after = 20  # inside the second 16-byte piece of the first job
    with caplog.at_level(logging.WARNING, logger="tillgate.drivers.printer"):
        printer.submit(job(1), kind="coupons", receipt_id="R1")
        events.wait("offline")
        printer.submit(job(2), kind="coupons", receipt_id="R2")
        port.present = True
        assert printer.wait_idle(10)
    # What reached the printer: the part of job 1 before the loss, then job 1 whole (the
    # documented reprint), then job 2 — nothing lost, nothing else twice.
    assert port.got() == job(1)[:20] + job(1) + job(2)
    assert port.opens == 2
    assert "printed again from its start" in caplog.text
    assert "after 16 of 40 bytes of job 1 (coupons for receipt R1)" in caplog.text


def test_port_lost_mid_receipt_forwarded_bytes_arrive_in_order(
    make_printer: Callable[..., Printer],
) -> None:
    port = FakePort()
    events = Events()
    printer = make_printer(port, on_event=events)
    printer.start()
    events.wait("online", "")

    printer.begin_receipt()
    printer.forward(b"POS line 1\n")
    wait_until(lambda: port.got() == b"POS line 1\n", "line 1")
    port.fail_after = len(port.got()) + 4
    printer.forward(b"POS line 2\n")
    events.wait("offline")
    printer.submit(job(1), kind="coupons", receipt_id="R1")
    printer.forward(b"POS line 3\n\x1dV\x01")
    printer.end_receipt()
    port.present = True
    assert printer.wait_idle(10)
    # The piece that failed is written again; the job waits for the POS's cut.
    assert port.got() == b"POS line 1\nPOS " + b"POS line 2\nPOS line 3\n\x1dV\x01" + job(1)


def test_queue_full_refuses_with_a_warning_and_loses_nothing_queued(
    make_printer: Callable[..., Printer], caplog: pytest.LogCaptureFixture
) -> None:
    port = FakePort(present=False)
    events = Events()
    printer = make_printer(port, on_event=events, queue_limit=3, language="en")
    printer.start()
    events.wait("offline")
    for n in range(3):
        assert printer.submit(job(n), kind="coupons", receipt_id=f"R{n}") is SubmitResult.QUEUED
    with caplog.at_level(logging.WARNING, logger="tillgate.drivers.printer"):
        assert printer.submit(job(9), kind="coupons", receipt_id="R9") is SubmitResult.FULL
    assert "queue full" in caplog.text and "R9 NOT printed" in caplog.text
    events.wait("offline", "Printer queue full: printing for receipt R9 was skipped")
    # Refused does not mean remembered: it can be submitted again once there is room.
    port.present = True
    assert printer.wait_idle(10)
    assert port.got() == job(0) + job(1) + job(2)
    assert printer.submit(job(9), kind="coupons", receipt_id="R9") is SubmitResult.QUEUED
    assert printer.wait_idle(10)
    assert port.got().endswith(job(9))


def test_forward_limit_drops_new_bytes_and_keeps_the_old(
    make_printer: Callable[..., Printer], caplog: pytest.LogCaptureFixture
) -> None:
    port = FakePort(present=False)
    printer = make_printer(port, forward_limit=20)
    printer.start()
    assert printer.forward(b"0123456789")
    with caplog.at_level(logging.ERROR, logger="tillgate.drivers.printer"):
        assert not printer.forward(b"ABCDEFGHIJK")
    assert "dropped" in caplog.text
    port.present = True
    assert printer.wait_idle(10)
    assert port.got() == b"0123456789"


def test_stop_is_prompt_and_reports_unprinted_jobs(
    make_printer: Callable[..., Printer], caplog: pytest.LogCaptureFixture
) -> None:
    port = FakePort(present=False)
    events = Events()
    printer = make_printer(port, on_event=events, backoff=Backoff(initial=30, maximum=30))
    printer.start()
    events.wait("offline")
    printer.submit(job(1), kind="coupons", receipt_id="R1")
    with caplog.at_level(logging.WARNING, logger="tillgate.drivers.printer"):
        printer.stop(timeout=5)  # the runner is in a 30 s back-off: stop must not wait it out
    assert not [t for t in threading.enumerate() if t.name in ("printer-writer", "device-printer")]
    assert "1 job(s) not printed (0 kept in the spool" in caplog.text
    assert "job 1 (coupons for receipt R1)" in caplog.text
    assert printer.status is DeviceStatus.STOPPED
    events.wait("stopped", "Принтер остановлен: чеки в очереди (1)")


def test_jobs_wait_for_enable_and_a_receipt_left_open_times_out(
    make_printer: Callable[..., Printer], caplog: pytest.LogCaptureFixture
) -> None:
    port = FakePort()
    printer = make_printer(port, receipt_idle_seconds=0.3)
    printer.open()
    printer.submit(job(1), kind="coupons", receipt_id="R1")
    assert not printer.wait_idle(0.3)  # opened, not enabled: held
    printer.begin_receipt()  # …and the POS never says the receipt ended
    with caplog.at_level(logging.WARNING, logger="tillgate.drivers.printer"):
        printer.enable()
        assert printer.wait_idle(10)
    assert "no receipt end from the POS" in caplog.text
    assert port.got() == job(1)


def test_a_failing_listener_does_not_stop_the_printer(
    make_printer: Callable[..., Printer],
) -> None:
    port = FakePort()

    def broken(event: DeviceEvent) -> None:
        raise RuntimeError("listener bug")

    printer = make_printer(port, on_event=broken)
    printer.start()
    printer.submit(job(1), kind="coupons", receipt_id="R1")
    assert printer.wait_idle(10)
    assert port.got() == job(1)


def test_bad_input_is_refused_and_nothing_is_queued(
    make_printer: Callable[..., Printer], caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError, match="queue_limit"):
        Printer(lambda: FakePort(), queue_limit=0)
    port = FakePort()
    printer = make_printer(port)
    printer.start()
    with pytest.raises(ValueError, match="needs bytes"):
        printer.submit(b"", kind="coupons", receipt_id="R1")
    with caplog.at_level(logging.ERROR, logger="tillgate.drivers.printer"):
        # A layout problem is logged and dropped: it must never fail the sale.
        assert printer.print_items([{"kind": "ticket"}], receipt_id="R2") is None
    assert "cannot lay out coupons for receipt R2" in caplog.text
    assert printer.print_items([], receipt_id="R3") is None
    assert printer.queued == 0
    # R1 was refused, not remembered: it still prints when submitted properly.
    assert printer.submit(job(1), kind="coupons", receipt_id="R1") is SubmitResult.QUEUED
    assert printer.wait_idle(10)
    assert port.got() == job(1)
