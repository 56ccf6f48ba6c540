"""A serial receipt printer played by a test thread on a real pty (driver and daemon tests)."""

from __future__ import annotations

import os
import select
import threading
import time
import tty
from collections.abc import Callable

from tillgate.drivers.base import DeviceEvent
from tillgate.drivers.printer_status import answer


class PtyPrinter:
    """A test thread playing a serial receipt printer on the master end of a real pty.

    It answers ``DLE EOT 1..4`` from its paper/cover state (when ``answering``), answers
    ``GS I n`` with a model id, and keeps every other byte it got in ``received``.
    """

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.paper_end = False
        self.near_end = False
        self.cover_open = False
        self.answering = True
        self.received = bytearray()
        self.queries = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-pty-printer", daemon=True)
        self._thread.start()

    def got(self) -> bytes:
        with self.lock:
            return bytes(self.received)

    def _answer(self, n: int) -> bytes:
        paper = self.paper_end
        offline = paper or self.cover_open
        return bytes(
            [
                answer(
                    n,
                    offline=offline,
                    cover_open=self.cover_open,
                    paper_end=paper,
                    paper_near_end=self.near_end or paper,
                )
            ]
        )

    def _run(self) -> None:
        buf = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                buf += os.read(self.master, 4096)
            except OSError:
                continue
            out = bytearray()
            i = 0
            while i < len(buf):
                head = buf[i : i + 3]
                if head[:1] in (b"\x10", b"\x1d") and len(head) < 3:
                    break  # a command cut in two: wait for the rest
                if head[:2] == b"\x10\x04" and head[2] in (1, 2, 3, 4):
                    with self.lock:
                        self.queries += 1
                    if self.answering:
                        out += self._answer(head[2])
                    i += 3
                elif head[:2] == b"\x1dI":
                    out += b"\x20"  # GS I 1: model id
                    i += 3
                else:
                    with self.lock:
                        self.received.append(buf[i])
                    i += 1
            buf = buf[i:]
            if out:
                os.write(self.master, bytes(out))

    def close(self) -> None:
        """Stop and close both ends (the device is gone); closing twice is harmless."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(5)
        for fd in (self.master, self.slave):
            os.close(fd)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class Events:
    """The printer's status events, as the daemon's event queue would get them."""

    def __init__(self) -> None:
        self.items: list[DeviceEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: DeviceEvent) -> None:
        with self.lock:
            self.items.append(event)

    def statuses(self) -> list[str]:
        with self.lock:
            return [e.data["status"] for e in self.items]

    def messages(self) -> list[str]:
        with self.lock:
            return [e.data["message"] for e in self.items]

    def wait(self, status: str, message: str | None = None) -> DeviceEvent:
        def found() -> DeviceEvent | None:
            with self.lock:
                for e in self.items:
                    if e.data["status"] == status and message in (None, e.data["message"]):
                        return e
            return None

        wait_until(lambda: found() is not None, f"event {status} {message!r}")
        event = found()
        assert event is not None
        return event
