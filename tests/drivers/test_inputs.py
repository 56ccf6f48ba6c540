"""Scanners and card readers end to end: real ptys, sockets and FIFOs in, events out.

Also the device runner under them: a device that goes away is reported offline and comes
back online by itself; stop() ends the thread; a bug in a handler never kills it.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.drivers.conftest import FAST, Events
from tillgate.core.config import InputDeviceSection, parse_device_url
from tillgate.core.errors import DeviceError
from tillgate.drivers.base import BytePort, DeviceEvent, DeviceStatus
from tillgate.drivers.inputs import InputDevice, InputSettings
from tillgate.drivers.keyboard import (
    EV_KEY,
    EVENT,
    EvdevKeySource,
    FakeKeySource,
    KeyboardPort,
    key_events,
)
from tillgate.drivers.msr import lrc
from tillgate.drivers.ports import open_port
from tillgate.drivers.runner import DeviceRunner

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="ptys and FIFOs are POSIX")

ANNA, BORIS = "2900000000011", "2900000000028"
T1 = f"%B{ANNA}^IVANOVA/ANNA^2812101000000000?"
T2 = f";{ANNA}=2812101000?"
CARDS = r"^29\d{11}$"


def reader(
    tmp_path: Path, events: Events, role: str = "card_reader", **keys: object
) -> InputDevice:
    section = InputDeviceSection.model_validate({"url": f"pty:{tmp_path}/{role}", **keys})
    device = InputDevice.from_config(
        "card_reader" if role == "card_reader" else "scanner",
        section,
        events,
        number_pattern=lambda: CARDS,
        backoff=FAST,
    )
    device.start()
    events.status("online")
    return device


def send(tmp_path: Path, role: str, data: bytes) -> None:
    """Write as the device would: open the pty's other end through its link."""
    fd = os.open(tmp_path / role, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def test_card_reader_swipes_on_a_pty(
    tmp_path: Path, events: Events, no_device_threads: Callable[[], None]
) -> None:
    device = reader(tmp_path, events)
    try:
        assert device.status is DeviceStatus.ONLINE
        send(tmp_path, "card_reader", (T1 + T2 + "\r").encode())
        card = events.next("card_presented")
        assert card == DeviceEvent(
            device="card_reader",
            kind="card_presented",
            data={"raw": ANNA, "kind": "number", "form": "track2", "source": "card_reader"},
        )
        # Two swipes in a row in one burst, then a half swipe, garbage and a typed number.
        send(tmp_path, "card_reader", f"{T2};{BORIS}=2901?\r".encode())
        assert events.next("card_presented").data["raw"] == ANNA
        assert events.next("card_presented").data["raw"] == BORIS
        send(tmp_path, "card_reader", f";{ANNA}=28\r\x00\x07\x13\r4600000000008\r".encode())
        half = events.next()
        assert half.kind == "read_rejected" and "half swipe" in half.data["reason"]
        garbage = events.next()
        assert garbage.kind == "read_rejected" and "control characters" in garbage.data["reason"]
        product = events.next()
        assert product.kind == "read_rejected" and "card_number_pattern" in product.data["reason"]
        send(tmp_path, "card_reader", f"{BORIS}\r".encode())
        typed = events.next("card_presented")
        assert (typed.data["raw"], typed.data["form"]) == (BORIS, "number")
        assert events.reads()[-1] == typed  # nothing else came out
    finally:
        assert device.stop()
    assert device.status is DeviceStatus.STOPPED
    assert not (tmp_path / "card_reader").exists()
    no_device_threads()


def test_reader_prefix_suffix_and_a_swipe_without_terminator(
    tmp_path: Path, events: Events, no_device_threads: Callable[[], None]
) -> None:
    device = reader(tmp_path, events, prefix="\u0002", suffix="\u0003", scan_timeout_ms=50)
    try:
        send(tmp_path, "card_reader", f"\x02{T2}\x03\r\n\x02;{BORIS}=2901?\x03".encode())
        assert events.next("card_presented").data["raw"] == ANNA
        assert events.next("card_presented").data["raw"] == BORIS
        send(tmp_path, "card_reader", T2.encode())  # no suffix, no terminator: the pause ends it
        assert events.next("card_presented").data["raw"] == ANNA
    finally:
        device.stop()


def test_reader_that_ends_each_track_with_cr(
    tmp_path: Path, events: Events, no_device_threads: Callable[[], None]
) -> None:
    device = reader(tmp_path, events, scan_timeout_ms=50)
    bad_lrc = T2 + ("0" if lrc(2, T2) != "0" else "1")
    try:
        # Track 1 and track 2 as two reads: one card, from track 2.
        send(tmp_path, "card_reader", f"{T1}\r{T2}\r".encode())
        assert events.next("card_presented").data["form"] == "track2"
        # Track 1 alone: given once the pause shows no track 2 follows.
        send(tmp_path, "card_reader", f"{T1}\r".encode())
        assert events.next("card_presented").data["form"] == "track1"
        # Track 2 unreadable: track 1 was enough, and no rejection is shown.
        send(tmp_path, "card_reader", f"{T1}\r{bad_lrc}\r".encode())
        assert events.next("card_presented").data["form"] == "track1"
        # Another card's track 2 after a track 1: two cards.
        send(tmp_path, "card_reader", f"{T1}\r;{BORIS}=2901?\r".encode())
        assert events.next("card_presented").data["raw"] == ANNA
        assert events.next("card_presented").data["raw"] == BORIS
        send(tmp_path, "card_reader", b"2900000000035\r")  # a marker: nothing came before it
        assert events.next().data["raw"] == "2900000000035"
    finally:
        assert device.stop()


def test_scanner_over_tcp(events: Events, no_device_threads: Callable[[], None]) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    host, port = server.getsockname()
    section = InputDeviceSection(url=f"tcp://{host}:{port}", scan_timeout_ms=50)
    device = InputDevice.from_config(
        "scanner", section, events, number_pattern=lambda: CARDS, backoff=FAST
    )
    device.start()
    conn, _ = server.accept()
    try:
        events.status("online")
        conn.sendall(b"4600000000008\r\n" + f"TGC:{ANNA}\t".encode())
        conn.sendall("+7 916 123-45-67\rКупон-5\r".encode("cp1251") + ANNA.encode())
        assert events.next() == DeviceEvent(
            device="scanner",
            kind="barcode_scanned",
            data={"code": "4600000000008", "source": "scanner"},
        )
        qr = events.next("card_presented").data
        assert (qr["raw"], qr["form"]) == (ANNA, "qr")
        phone = events.next("card_presented").data
        assert (phone["raw"], phone["kind"]) == ("+79161234567", "phone")
        assert events.next("barcode_scanned").data["code"] == "Купон-5"
        card = events.next("card_presented").data  # no terminator: ended by the pause
        assert (card["raw"], card["form"]) == (ANNA, "barcode")
        conn.close()  # the scanner goes away: offline, and back when it listens again
        assert "closed the connection" in events.status("offline").data["error"]
        conn, _ = server.accept()
        events.status("online")
        conn.sendall(b"4600000000015\r")
        assert events.next("barcode_scanned").data["code"] == "4600000000015"
    finally:
        assert device.stop()
        conn.close()
        server.close()


def test_a_serial_device_that_disappears_and_comes_back(
    tmp_path: Path, events: Events, no_device_threads: Callable[[], None]
) -> None:
    link = tmp_path / "ttyUSB0"  # a USB serial reader: the node goes when unplugged
    master, slave = os.openpty()
    link.symlink_to(os.ttyname(slave))
    device = InputDevice(
        role="card_reader",
        on_event=events,
        open_port=lambda: open_port(parse_device_url(f"serial://{link}")),
        backoff=FAST,
    )
    device.start()
    try:
        events.status("online")
        os.write(master, (T2 + "\r").encode())
        assert events.next("card_presented").data["raw"] == ANNA
        os.close(master)  # unplugged
        os.close(slave)
        offline = events.status("offline")
        assert "serial" in offline.data["error"]
        assert device.status is DeviceStatus.OFFLINE and device.error
        master, slave = os.openpty()  # plugged in again
        tmp = tmp_path / "new"
        tmp.symlink_to(os.ttyname(slave))
        tmp.replace(link)
        events.status("online")
        os.write(master, f";{BORIS}=2901?\r".encode())
        assert events.next("card_presented").data["raw"] == BORIS
    finally:
        assert device.stop()
        os.close(master)
        os.close(slave)


def test_evdev_reader_missing_then_plugged_in(
    tmp_path: Path, events: Events, no_device_threads: Callable[[], None]
) -> None:
    node = tmp_path / "event7"
    device = InputDevice(
        role="card_reader",
        on_event=events,
        # A FIFO cannot be grabbed like a real input node; the grab has its own test.
        open_port=lambda: KeyboardPort(EvdevKeySource(str(node), grab=False)),
        backoff=FAST,
    )
    device.start()
    try:
        assert "no such device" in events.status("offline").data["error"]
        os.mkfifo(node)
        events.status("online")
        data = b"".join(EVENT.pack(0, 0, EV_KEY, c, v) for c, v in key_events(T2 + "\n"))
        with open(node, "wb") as f:
            f.write(data)
        assert events.next("card_presented").data["raw"] == ANNA
    finally:
        assert device.stop()


def test_evdev_from_config_reports_a_failed_grab(
    tmp_path: Path, events: Events, no_device_threads: Callable[[], None]
) -> None:
    os.mkfifo(tmp_path / "event8")
    section = InputDeviceSection(url=f"evdev:{tmp_path}/event8")
    device = InputDevice.from_config("scanner", section, events, backoff=FAST)
    device.start()
    try:
        error = events.status("offline").data["error"]
        assert "cannot be grabbed exclusively: not an input event device" in error
    finally:
        assert device.stop()


def test_keyboard_wedge_with_a_fake_key_source_survives_a_failure(
    events: Events, no_device_threads: Callable[[], None]
) -> None:
    source = FakeKeySource()
    device = InputDevice(
        role="scanner",
        on_event=events,
        open_port=lambda: KeyboardPort(source),
        settings=InputSettings(card_number_pattern=CARDS),
        backoff=FAST,
    )
    device.start()
    try:
        events.status("online")
        source.press(f"{ANNA}\n")
        assert events.next("card_presented").data["form"] == "barcode"
        source.fail(DeviceError("fake keyboard: unplugged"))
        assert events.status("offline").data["error"] == "fake keyboard: unplugged"
        events.status("online")
        assert source.opened == 2
        source.press("4600000000008\n")
        assert events.next("barcode_scanned").data["code"] == "4600000000008"
    finally:
        assert device.stop()


def test_disabled_device_drops_reads(
    events: Events, caplog: pytest.LogCaptureFixture, no_device_threads: Callable[[], None]
) -> None:
    source = FakeKeySource()
    device = InputDevice(role="scanner", on_event=events, open_port=lambda: KeyboardPort(source))

    def dropped() -> int:
        return sum("read dropped" in r.getMessage() for r in caplog.records)

    def wait_dropped(count: int) -> None:
        deadline = time.monotonic() + 10
        while dropped() < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert dropped() == count

    caplog.set_level(logging.DEBUG, logger="tillgate.drivers.inputs")
    device.open()  # open but not enabled
    try:
        events.status("online")
        source.press("111\n")
        wait_dropped(1)
        device.enable()
        source.press("222\n")
        assert events.next("barcode_scanned").data["code"] == "222"
        device.disable()
        source.press("333\n")
        wait_dropped(2)
        device.enable()
        source.press("444\n")
        assert events.next("barcode_scanned").data["code"] == "444"
    finally:
        assert device.stop()


def test_a_bug_in_reading_is_logged_and_the_device_keeps_going(
    events: Events, caplog: pytest.LogCaptureFixture, no_device_threads: Callable[[], None]
) -> None:
    calls = []

    def pattern() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(f"broken program while reading {ANNA}")
        return CARDS

    source = FakeKeySource()
    device = InputDevice(
        role="scanner",
        on_event=events,
        open_port=lambda: KeyboardPort(source),
        number_pattern=pattern,
    )
    device.start()
    try:
        events.status("online")
        with caplog.at_level(logging.ERROR, logger="tillgate.drivers.inputs"):
            source.press(f"{ANNA}\n{BORIS}\n")
            failed = events.next()
            assert failed.kind == "read_rejected" and "could not be processed" in str(failed.data)
            assert events.next("card_presented").data["raw"] == BORIS
        [record] = caplog.records
        assert "could not handle a read" in record.getMessage()
        assert ANNA not in record.getMessage()
        assert device.status is DeviceStatus.ONLINE
    finally:
        assert device.stop()


def test_not_configured_device_starts_no_thread(
    events: Events, no_device_threads: Callable[[], None]
) -> None:
    device = InputDevice.from_config("scanner", InputDeviceSection(), events)
    device.start()
    assert device.status is DeviceStatus.NOT_CONFIGURED
    no_device_threads()
    assert device.stop()
    assert events.reads() == []


def test_runner_on_loop_writes_and_reopens_after_a_failed_write(
    events: Events, no_device_threads: Callable[[], None]
) -> None:
    received = bytearray()
    ports: list[BytePort] = []

    def make() -> BytePort:
        ports.append(open_port(parse_device_url("loop://")))
        return ports[-1]

    runner = DeviceRunner("printer", make, on_data=received.extend, on_event=events, backoff=FAST)
    with pytest.raises(DeviceError, match="printer is stopped"):
        runner.write(b"early")
    runner.start()
    try:
        events.status("online")
        runner.write(b"\x1b@hello")  # loop:// echoes what is written back to the reader
        deadline = time.monotonic() + 10
        while bytes(received) != b"\x1b@hello" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert bytes(received) == b"\x1b@hello"
        ports[-1].close()  # the port breaks under the runner: the next write fails
        with pytest.raises(DeviceError):
            runner.write(b"lost")
        assert runner.status is DeviceStatus.OFFLINE
        events.status("offline")
        events.status("online")
        assert len(ports) == 2
        runner.write(b"again")
    finally:
        assert runner.stop()
    assert runner.status is DeviceStatus.STOPPED


def test_a_failing_status_listener_does_not_stop_the_device(
    no_device_threads: Callable[[], None],
) -> None:
    seen: list[str] = []

    def listener(event: DeviceEvent) -> None:
        seen.append(event.data["status"])
        raise RuntimeError("listener bug")

    runner = DeviceRunner("scanner", lambda: KeyboardPort(FakeKeySource()), on_event=listener)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while "online" not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert seen[:2] == ["starting", "online"]
    finally:
        assert runner.stop()
    assert seen[-1] == "stopped"
