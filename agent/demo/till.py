"""The demo's till: the agent's virtual devices seen from the other end, and its printer.

The agent creates ``pty:`` ports for the POS's printer line, the card reader and the
scanner; the demo opens their far ends as the POS software, the magnetic-stripe reader and
the barcode scanner would. The agent's own printer is a ``file://`` printer: the demo
reads what it printed back from that file and cuts it into receipts.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tillgate.drivers.escpos.stream import Cut, ReceiptStream

from .children import DemoError

T = TypeVar("T")

# The virtual serial ports need a POSIX pty; on Windows the demo uses the POS API only.
HAVE_PTY = sys.platform != "win32"


def wait_until(check: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``check`` until it returns something; DemoError naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class FarEnd:
    """The device side of one of the agent's ``pty:`` ports."""

    def __init__(self, link: Path, *, name: str) -> None:
        import termios
        import tty

        wait_until(link.exists, timeout=10, what=f"the agent's {name} port {link}")
        self.name = name
        self.fd = os.open(link, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd, termios.TCSANOW)

    def write(self, data: bytes, *, chunk: int = 0, pause: float = 0.0) -> None:
        """Write ``data``, in ``chunk``-sized pieces like a slow serial line if asked."""
        step = chunk or len(data)
        for k in range(0, len(data), step):
            view = memoryview(data)[k : k + step]
            while view:
                view = view[os.write(self.fd, view) :]
            if pause:
                time.sleep(pause)

    def drain(self) -> bytes:
        """Whatever the agent sent this way (printer status replies), without waiting."""
        import select

        out = b""
        while select.select([self.fd], [], [], 0)[0]:
            try:
                got = os.read(self.fd, 4096)
            except OSError:
                break
            if not got:
                break
            out += got
        return out

    def close(self) -> None:
        os.close(self.fd)


class PrinterFile:
    """The agent's ``file://`` printer, read back and cut into receipts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self._stream = ReceiptStream()

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def take(
        self, *, ends_with: bytes = b"", settle: float = 0.3, timeout: float = 15
    ) -> list[bytes]:
        """The receipts printed since the last call, each ending in its cut.

        ``ends_with``: wait until the printed bytes end with these (the POS receipt's own
        cut and what follows it); otherwise wait until something new was printed and the
        file stopped growing for ``settle`` seconds.
        """
        if ends_with:
            wait_until(
                lambda: self.size() > self.offset and self._tail(len(ends_with)) == ends_with,
                timeout=timeout,
                what="the receipt to reach the printer",
            )
        else:
            wait_until(
                lambda: self.size() > self.offset, timeout=timeout, what="the agent to print"
            )
        last, since = self.size(), time.monotonic()
        while time.monotonic() - since < settle:
            time.sleep(0.02)
            if self.size() != last:
                last, since = self.size(), time.monotonic()
        with self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        slips: list[bytes] = []
        for piece in self._stream.feed(data):
            if isinstance(piece, Cut):
                slips.append(piece.receipt + piece.cut)
        return slips

    def _tail(self, n: int) -> bytes:
        with self.path.open("rb") as f:
            f.seek(max(0, self.size() - n))
            return f.read()
