"""Keyboard wedges: the fixed US key map, and evdev input_event records from a FIFO or file."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from tillgate.core.errors import DeviceError
from tillgate.drivers.keyboard import (
    EV_KEY,
    EVENT,
    EvdevKeySource,
    FakeKeySource,
    KeyboardPort,
    KeyMap,
    key_events,
)

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="evdev is Linux")

SWIPE = "%B2900000000011^IVANOVA/ANNA^2812?;2900000000011=2812?\r"


def typed(events: list[tuple[int, int]]) -> str:
    keys = KeyMap()
    return "".join(keys.feed(code, value) for code, value in events)


def records(events: list[tuple[int, int]]) -> bytes:
    """input_event records as the kernel writes them, with SYN reports in between."""
    out = b""
    for code, value in events:
        out += EVENT.pack(1700000000, 0, EV_KEY, code, value)
        out += EVENT.pack(1700000000, 0, 0, 0, 0)  # EV_SYN: not a key, skipped
    return out


def test_us_map_types_track_data_and_codes() -> None:
    for text in (SWIPE, "TGC:2900000000011\r", "+7(916)123-45-67\t", "Aa1!@#$%^&*()_+{}|<>~"):
        assert typed(key_events(text)) == text


def test_known_key_codes() -> None:
    # KEY_SEMICOLON 39, KEY_2 3, KEY_9 10, KEY_EQUAL 13, shift+KEY_SLASH 53 → "?", KEY_ENTER 28.
    events = [(39, 1), (39, 0), (3, 1), (3, 0), (10, 1), (13, 1)]
    events += [(42, 1), (53, 1), (53, 0), (42, 0), (28, 1)]
    assert typed(events) == ";29=?\r"


def test_caps_lock_auto_repeat_and_keys_that_are_not_characters() -> None:
    # caps lock on: letters upper, digits unchanged; shift+letter then lower.
    events = [(58, 1), (58, 0), (30, 1), (30, 0), (2, 1), (2, 0), (42, 1), (30, 1), (42, 0)]
    assert typed(events) == "A1a"
    # auto-repeat (value 2) repeats; ctrl (29), F1 (59) and unknown codes type nothing.
    assert typed([(30, 1), (30, 2), (30, 0), (29, 1), (59, 1), (999, 1)]) == "aa"


def test_key_events_refuses_what_a_us_keyboard_cannot_type() -> None:
    with pytest.raises(ValueError, match="cannot be typed"):
        key_events("ж")


def test_evdev_records_from_a_file_including_a_split_record(tmp_path: Path) -> None:
    data = records(key_events(SWIPE))
    path = tmp_path / "event3"
    path.write_bytes(data)
    source = EvdevKeySource(str(path), grab=False)
    port = KeyboardPort(source)
    port.open()
    try:
        got = b""
        deadline = time.monotonic() + 5
        while b"\r" not in got and time.monotonic() < deadline:
            got += port.read(4096, 0.05)
        assert got.decode() == SWIPE
        assert port.read(4096, 0.01) == b""  # end of the recording: waits, no error
    finally:
        port.close()


def test_evdev_from_a_fifo_written_in_pieces(tmp_path: Path) -> None:
    fifo = tmp_path / "event4"
    os.mkfifo(fifo)
    data = records(key_events(";2900000000011=2812?\r"))
    source = EvdevKeySource(str(fifo), grab=False)
    port = KeyboardPort(source)
    port.open()

    def write() -> None:
        with open(fifo, "wb", buffering=0) as f:
            for i in range(0, len(data), 7):  # records split across writes
                f.write(data[i : i + 7])

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        got = b""
        deadline = time.monotonic() + 5
        while b"\r" not in got and time.monotonic() < deadline:
            got += port.read(4096, 0.05)
        assert got == b";2900000000011=2812?\r"
    finally:
        writer.join(5)
        port.close()


def test_evdev_grab_of_something_that_is_not_an_input_device(tmp_path: Path) -> None:
    fifo = tmp_path / "event5"
    os.mkfifo(fifo)
    with pytest.raises(
        DeviceError, match=r"evdev .*event5 cannot be grabbed exclusively: not an input event"
    ):
        EvdevKeySource(str(fifo)).open()


def test_evdev_missing_node(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="cannot be opened: no such device"):
        EvdevKeySource(str(tmp_path / "nothing")).open()
    with pytest.raises(DeviceError, match="not open"):
        EvdevKeySource(str(tmp_path / "nothing")).read_keys(0.01)


def test_keyboard_port_cannot_be_written_and_fake_source_fails_on_demand() -> None:
    source = FakeKeySource()
    port = KeyboardPort(source)
    port.open()
    with pytest.raises(DeviceError, match="cannot be written"):
        port.write(b"x")
    source.press("12\r")
    assert port.read(64, 1) == b"12\r"
    source.fail(DeviceError("unplugged"))
    with pytest.raises(DeviceError, match="unplugged"):
        port.read(64, 1)
    assert port.read(64, 0.01) == b""
