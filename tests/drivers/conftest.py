"""Fixtures for device tests: an event collector, and a check that no device thread is left."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tillgate.drivers.base import DeviceEvent
from tillgate.drivers.runner import Backoff

FAST = Backoff(initial=0.05, maximum=0.2, jitter=0.1)  # reopen quickly in tests


class Events:
    """Collects DeviceEvents from a device's thread; waits for them with a bound."""

    def __init__(self) -> None:
        self.queue: queue.Queue[DeviceEvent] = queue.Queue()
        self.seen: list[DeviceEvent] = []

    def __call__(self, event: DeviceEvent) -> None:
        self.queue.put(event)

    def next(self, kind: str | None = None, timeout: float = 10.0) -> DeviceEvent:
        """The next event (of ``kind``), skipping others; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                event = self.queue.get(timeout=max(left, 0.001))
            except queue.Empty:
                raise AssertionError(
                    f"no {kind or 'event'} within {timeout} s; saw {self.seen}"
                ) from None
            self.seen.append(event)
            if kind is None or event.kind == kind:
                return event

    def status(self, status: str, timeout: float = 10.0) -> DeviceEvent:
        """Wait until a status_changed event reports ``status``."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.next("status_changed", timeout=max(deadline - time.monotonic(), 0.001))
            if event.data["status"] == status:
                return event

    def reads(self) -> list[DeviceEvent]:
        """Everything except status changes that has arrived so far (without waiting)."""
        while True:
            try:
                self.seen.append(self.queue.get_nowait())
            except queue.Empty:
                return [e for e in self.seen if e.kind != "status_changed"]


@pytest.fixture
def events() -> Events:
    return Events()


def device_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("device-")]


@pytest.fixture
def no_device_threads() -> Iterator[Callable[[], None]]:
    """Fails the test if a device thread it started outlives it (``check()`` also works early)."""
    before = set(device_threads())

    def check() -> None:
        deadline = time.monotonic() + 5
        while (left := set(device_threads()) - before) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not left, f"device threads left running: {left}"

    yield check
    check()
