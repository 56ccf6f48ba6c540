"""The printer driver on real ports: a file printer, and a real pty playing a serial printer."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.drivers.fake_printer import Events, PtyPrinter, wait_until
from tillgate.core.config import PrinterSection, parse_device_url
from tillgate.drivers.base import DeviceStatus
from tillgate.drivers.escpos.model import Barcode
from tillgate.drivers.escpos.parser import parse
from tillgate.drivers.ports import open_port
from tillgate.drivers.printer import Printer, SubmitResult
from tillgate.drivers.printer_status import answer, decode, is_status_answer
from tillgate.drivers.runner import Backoff

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs ptys")

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.0)
JOB = b"\x1b@COUPON ONE\n\x1dV\x01"
JOB2 = b"\x1b@COUPON TWO\n\x1dV\x01"


@pytest.fixture
def pty_printer() -> Iterator[PtyPrinter]:
    sim = PtyPrinter()
    yield sim
    sim.close()


@pytest.fixture
def make_printer() -> Iterator[Callable[..., Printer]]:
    made: list[Printer] = []

    def make(url: str, **kw: Any) -> Printer:
        address = parse_device_url(url)
        options: dict[str, Any] = {
            "status_poll": True,
            "poll_seconds": 0.1,
            "reply_timeout": 0.3,
            "backoff": FAST,
        }
        options.update(kw)
        printer = Printer(lambda: open_port(address), **options)
        made.append(printer)
        return printer

    yield make
    for printer in made:
        printer.stop()
    left = [t.name for t in threading.enumerate() if t.name in ("printer-writer", "device-printer")]
    assert not left, f"threads left behind: {left}"


# ---------------------------------------------------------------- status bytes


def test_status_answers_decode_per_epsons_bit_layout() -> None:
    assert is_status_answer(0x12) and is_status_answer(0x72)
    assert not is_status_answer(0x00)  # the first byte of an Automatic Status Back block
    assert not is_status_answer(0x20)  # a GS I model id
    online = decode({1: 0x12, 2: 0x12, 3: 0x12, 4: 0x12})
    assert online.status is DeviceStatus.ONLINE and not online.paper_near_end
    paper = decode({1: 0x1A, 2: 0x32, 3: 0x12, 4: 0x7E})
    assert paper.status is DeviceStatus.PAPER_OUT and paper.offline and paper.paper_near_end
    assert decode({1: 0x1A, 2: 0x16}).status is DeviceStatus.COVER_OPEN
    cutter = decode({1: 0x1A, 2: 0x52, 3: 0x1A, 4: 0x12})
    assert (cutter.status, cutter.error) == (DeviceStatus.ERROR, "autocutter")
    assert decode({1: 0x1A}).error == "offline"  # offline, with no cause it names
    assert decode({1: 0x1A, 2: 0x1A}).status is DeviceStatus.ONLINE  # paper fed by FEED
    near = decode({4: 0x1E})
    assert near.status is DeviceStatus.ONLINE and near.paper_near_end
    with pytest.raises(ValueError, match=r"only 1\.\.4"):
        answer(5)


# ---------------------------------------------------------------- file printer


def test_file_printer_prints_jobs_in_order_without_polling(tmp_path: Path) -> None:
    out = tmp_path / "printer.bin"
    events = Events()
    section = PrinterSection(url=f"file://{out}")
    printer = Printer.from_config(section, on_event=events)
    printer.start()
    try:
        events.wait("online", "")
        coupon = {"kind": "coupon", "title": "Кофе", "code": "TG123", "valid_until": "2026-12-31"}
        assert printer.print_items([coupon], receipt_id="R1") is SubmitResult.QUEUED
        assert printer.submit(JOB2, kind="prompt", receipt_id="R1") is SubmitResult.QUEUED
        assert printer.wait_idle(10)
    finally:
        printer.stop()
    data = out.read_bytes()
    assert data.endswith(JOB2)
    assert data.count(b"\x1b@") == 2  # two jobs, each once
    # A short code fits the paper as CODE128 (a 25-character one would be a QR code).
    assert [b.data for b in parse(data).blocks if isinstance(b, Barcode)] == ["TG123"]
    assert b"\x10\x04" not in data  # a file never answers: no status polls were sent
    assert events.statuses()[-1] == "stopped"
    assert printer.status is DeviceStatus.STOPPED


def test_the_same_receipt_is_printed_once(tmp_path: Path) -> None:
    out = tmp_path / "printer.bin"
    printer = Printer.from_config(PrinterSection(url=f"file://{out}"))
    printer.start()
    try:
        assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.QUEUED
        # A POS retrying confirm gets the same response; its coupons must not print again.
        assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.DUPLICATE
        assert printer.submit(JOB, kind="coupons", receipt_id="R2") is SubmitResult.QUEUED
        assert printer.wait_idle(10)
        assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.DUPLICATE
    finally:
        printer.stop()
    assert out.read_bytes() == JOB * 2


def test_no_printer_configured() -> None:
    events = Events()
    printer = Printer.from_config(PrinterSection(url="none"), on_event=events)
    printer.start()
    assert printer.status is DeviceStatus.NOT_CONFIGURED
    assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.NO_PRINTER
    assert printer.forward(b"x")  # interception is refused by config; nothing breaks here
    printer.stop()
    assert events.statuses() == ["not_configured"]


# ---------------------------------------------------------------- a serial printer on a pty


def test_pty_printer_online_prints_and_polls(
    pty_printer: PtyPrinter, make_printer: Callable[..., Printer]
) -> None:
    events = Events()
    printer = make_printer(f"serial://{pty_printer.path}", on_event=events)
    printer.start()
    events.wait("online", "")
    assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.QUEUED
    wait_until(lambda: pty_printer.got() == JOB, "the job on the printer")
    # Polls go on while idle, and nothing but the job reached the paper.
    seen = pty_printer.queries
    wait_until(lambda: pty_printer.queries >= seen + 8, "two more status polls")
    assert pty_printer.got() == JOB


def test_paper_out_holds_jobs_and_tells_the_cashier(
    pty_printer: PtyPrinter, make_printer: Callable[..., Printer]
) -> None:
    pty_printer.paper_end = True
    events = Events()
    printer = make_printer(f"serial://{pty_printer.path}", on_event=events)
    printer.start()
    events.wait("paper_out", "Принтер: нет бумаги")
    assert printer.status is DeviceStatus.PAPER_OUT

    assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.QUEUED
    events.wait("paper_out", "Принтер: нет бумаги: чеки в очереди (1)")
    seen = pty_printer.queries
    wait_until(lambda: pty_printer.queries >= seen + 8, "two polls while out of paper")
    assert pty_printer.got() == b""  # held, not sent into a printer without paper

    pty_printer.paper_end = False
    wait_until(lambda: pty_printer.got() == JOB, "the job after paper was loaded")
    events.wait("online", "")
    assert printer.queued == 0


def test_cover_open_and_paper_near_end(
    pty_printer: PtyPrinter, make_printer: Callable[..., Printer]
) -> None:
    pty_printer.cover_open = True
    events = Events()
    printer = make_printer(f"serial://{pty_printer.path}", on_event=events, language="en")
    printer.start()
    events.wait("cover_open", "Printer: cover open")
    pty_printer.cover_open = False
    pty_printer.near_end = True
    events.wait("online", "Printer: paper is running low")
    # Near end still prints.
    assert printer.submit(JOB, kind="coupons", receipt_id="R1") is SubmitResult.QUEUED
    wait_until(lambda: pty_printer.got() == JOB, "the job")
    assert printer.snapshot()["paper_near_end"] is True


def test_a_printer_that_does_not_answer_is_offline_until_it_does(
    pty_printer: PtyPrinter,
    make_printer: Callable[..., Printer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    pty_printer.answering = False  # switched off at the end of a serial cable
    events = Events()
    printer = make_printer(f"serial://{pty_printer.path}", on_event=events, language="en")
    with caplog.at_level(logging.WARNING, logger="tillgate.drivers.printer"):
        printer.start()
        events.wait("offline", "Printer does not answer")
    assert "status_poll = false" in caplog.text
    printer.submit(JOB, kind="coupons", receipt_id="R1")
    events.wait("offline", "Printer does not answer: receipts are queued (1)")
    pty_printer.answering = True
    wait_until(lambda: pty_printer.got().endswith(JOB), "the job once it answers")
    events.wait("online", "")


@pytest.mark.parametrize("begin", [True, False], ids=["begin_receipt", "forward_alone"])
def test_forwarded_receipt_is_never_interleaved_with_a_job(
    pty_printer: PtyPrinter, make_printer: Callable[..., Printer], begin: bool
) -> None:
    events = Events()
    printer = make_printer(f"serial://{pty_printer.path}", on_event=events)
    printer.start()
    events.wait("online", "")

    if begin:
        printer.begin_receipt()
    assert printer.forward(b"\x1b@POS receipt part 1\n")
    wait_until(lambda: pty_printer.got().endswith(b"part 1\n"), "part 1")
    printer.submit(JOB, kind="coupons", receipt_id="R9")
    assert not printer.wait_idle(0.5)  # held while the POS's receipt is open
    assert printer.forward(b"POS receipt part 2\n\x1dV\x01")
    printer.end_receipt()
    wait_until(lambda: pty_printer.got().endswith(JOB), "the job after the receipt")
    assert pty_printer.got() == b"\x1b@POS receipt part 1\nPOS receipt part 2\n\x1dV\x01" + JOB


def test_printer_replies_to_the_pos_go_back_to_the_pos(
    pty_printer: PtyPrinter, make_printer: Callable[..., Printer]
) -> None:
    replies: list[bytes] = []
    got = threading.Event()

    def on_reply(data: bytes) -> None:
        replies.append(data)
        got.set()

    events = Events()
    printer = make_printer(f"serial://{pty_printer.path}", on_event=events, on_reply=on_reply)
    printer.start()
    events.wait("online", "")

    pty_printer.paper_end = True
    printer.begin_receipt()
    printer.forward(b"\x10\x04\x04")  # the POS asks about the paper itself
    assert got.wait(10)
    assert replies == [bytes([answer(4, paper_end=True, paper_near_end=True)])]
    got.clear()
    printer.forward(b"\x1dI\x01")  # and the model id
    assert got.wait(10)
    assert replies[-1] == b"\x20"
    # The POS's answers are the POS's: our own status did not move (we poll only when idle).
    assert printer.status is DeviceStatus.ONLINE
    printer.end_receipt()
    events.wait("paper_out", "Принтер: нет бумаги")
    assert len(replies) == 2  # our own polls' answers were not passed on
