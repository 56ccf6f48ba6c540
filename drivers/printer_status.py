"""What a receipt printer says about itself: ``DLE EOT n`` answers decoded, and the hint.

Real-time status transmission (Epson ESC/POS ``DLE EOT n``) answers each query with one
byte whose bits 1 and 4 are always 1 and bits 0 and 7 always 0 (``0xx1xx10``); that fixed
pattern tells an answer apart from anything else the printer may send (an Automatic Status
Back block has bit 4 clear, a ``GS I`` id is text). Bit meanings, per Epson's command
reference:

- ``n=1`` printer: bit 3 offline;
- ``n=2`` offline cause: bit 2 cover open, bit 3 paper fed by the FEED button, bit 5
  printing stopped by paper end, bit 6 an error occurred;
- ``n=3`` error cause: bit 2 recoverable (mechanical) error, bit 3 autocutter error, bit 5
  unrecoverable error, bit 6 auto-recoverable error (e.g. head too hot);
- ``n=4`` roll paper: bits 2-3 paper near end, bits 5-6 paper end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from tillgate.core.cards import mask_in_text

from .base import UNREMARKABLE, DeviceEvent, DeviceStatus

logger = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
QUERIES: dict[int, bytes] = {n: DLE_EOT + bytes([n]) for n in (1, 2, 3, 4)}

_FIXED_MASK = 0b1001_0011
_FIXED_BITS = 0b0001_0010


def is_status_answer(byte: int) -> bool:
    """True if ``byte`` has the fixed bits of a ``DLE EOT`` answer."""
    return byte & _FIXED_MASK == _FIXED_BITS


def answer(
    n: int,
    *,
    offline: bool = False,
    cover_open: bool = False,
    paper_end: bool = False,
    paper_near_end: bool = False,
    error: bool = False,
    autocutter_error: bool = False,
) -> int:
    """The byte a printer answers ``DLE EOT n`` with (what a test printer sends back)."""
    bits = _FIXED_BITS
    if n == 1:
        bits |= 0x08 if offline else 0
    elif n == 2:
        bits |= (0x04 if cover_open else 0) | (0x20 if paper_end else 0) | (0x40 if error else 0)
    elif n == 3:
        bits |= 0x08 if autocutter_error else 0
    elif n == 4:
        bits |= (0x0C if paper_near_end else 0) | (0x60 if paper_end else 0)
    else:
        raise ValueError(f"DLE EOT {n}: only 1..4 are status queries")
    return bits


@dataclass(frozen=True, kw_only=True)
class PrinterState:
    """A printer's condition as decoded from its answers."""

    offline: bool = False
    cover_open: bool = False
    paper_end: bool = False
    paper_near_end: bool = False
    error: str = ""  # "autocutter", "mechanical", "unrecoverable", "auto-recoverable", "offline"

    @property
    def status(self) -> DeviceStatus:
        """The device status this condition shows as (the most actionable cause first)."""
        if self.cover_open:
            return DeviceStatus.COVER_OPEN
        if self.paper_end:
            return DeviceStatus.PAPER_OUT
        if self.error:
            return DeviceStatus.ERROR
        return DeviceStatus.ONLINE


def decode(answers: Mapping[int, int]) -> PrinterState:
    """The state from the answers to ``DLE EOT 1..4`` (any of them may be missing)."""
    a1, a2, a3, a4 = (answers.get(n, _FIXED_BITS) for n in (1, 2, 3, 4))
    errors = []
    if a3 & 0x08:
        errors.append("autocutter")
    if a3 & 0x04:
        errors.append("mechanical")
    if a3 & 0x20:
        errors.append("unrecoverable")
    if a3 & 0x40:
        errors.append("auto-recoverable")
    if a2 & 0x40 and not errors:
        errors.append("error")
    cover_open = bool(a2 & 0x04)
    paper_end = bool(a2 & 0x20 or a4 & 0x60)
    offline = bool(a1 & 0x08)
    if offline and not (cover_open or paper_end or errors or a2 & 0x08):
        # Offline for no reason it names (and not just feeding paper): show it, do not guess.
        errors.append("offline")
    return PrinterState(
        offline=offline,
        cover_open=cover_open,
        paper_end=paper_end,
        paper_near_end=bool(a4 & 0x0C),
        error=", ".join(errors),
    )


_HINTS: dict[str, dict[str, str]] = {
    "ru": {
        "online": "",
        "near_end": "Принтер: бумага заканчивается",
        "starting": "Принтер: подключение…",
        "offline": "Принтер не на связи",
        "silent": "Принтер не отвечает",
        "paper_out": "Принтер: нет бумаги",
        "cover_open": "Принтер: открыта крышка",
        "error": "Принтер: ошибка ({detail})",
        "not_configured": "",
        "stopped": "Принтер остановлен",
        "queued": "{hint}: чеки в очереди ({n})",
        "full": "Принтер: очередь заполнена, печать для чека {receipt} пропущена",
    },
    "en": {
        "online": "",
        "near_end": "Printer: paper is running low",
        "starting": "Printer: connecting…",
        "offline": "Printer offline",
        "silent": "Printer does not answer",
        "paper_out": "Printer: out of paper",
        "cover_open": "Printer: cover open",
        "error": "Printer error ({detail})",
        "not_configured": "",
        "stopped": "Printer stopped",
        "queued": "{hint}: receipts are queued ({n})",
        "full": "Printer queue full: printing for receipt {receipt} was skipped",
    },
}


def hint(key: str, *, language: str, queued: int = 0, detail: str = "", receipt: str = "") -> str:
    """The cashier's hint for a printer condition (``key``: online, paper_out, …)."""
    words = _HINTS.get(language, _HINTS["en"])
    text = words[key].format(detail=detail, receipt=receipt)
    if queued and key not in ("online", "near_end", "not_configured", "full"):
        return words["queued"].format(hint=text, n=queued)
    return text


def compose(
    *,
    port: DeviceStatus | None,
    opened: bool,
    polled: bool,
    silent: bool,
    state: PrinterState | None,
    queued: int,
    language: str,
) -> tuple[DeviceStatus, str]:
    """The printer's status and hint from its port, its last poll and its queue.

    ``port`` is the byte port's status (None: no printer configured); ``silent``: polled,
    but nothing answered; ``state``: the last answer (None: not polled yet).
    """

    def say(key: str, *, count: bool = True, detail: str = "") -> str:
        return hint(key, language=language, queued=queued if count else 0, detail=detail)

    if port is None:
        return DeviceStatus.NOT_CONFIGURED, say("not_configured")
    if not opened:
        return DeviceStatus.STOPPED, say("stopped")
    if port is DeviceStatus.OFFLINE:
        return DeviceStatus.OFFLINE, say("offline")
    if port is not DeviceStatus.ONLINE:
        return DeviceStatus.STARTING, say("starting")
    if not polled:  # nothing to ask: an open port is all we can know
        return DeviceStatus.ONLINE, say("online")
    if silent:
        return DeviceStatus.OFFLINE, say("silent")
    if state is None:
        return DeviceStatus.STARTING, say("starting")
    status = state.status
    if status is DeviceStatus.ONLINE:
        return status, say("near_end" if state.paper_near_end else "online")
    key = {DeviceStatus.PAPER_OUT: "paper_out", DeviceStatus.COVER_OPEN: "cover_open"}
    return status, say(key.get(status, "error"), detail=state.error)


FRESH_SECONDS = 1.0  # a status this old is asked again before a job starts


class StatusPoller:
    """Asks a printer ``DLE EOT 1..4`` and keeps its answers; passes on every other byte.

    :meth:`poll` runs on the thread that writes to the printer, :meth:`feed` on the one
    that reads it. While a query is out, the first byte with the answer's fixed bits is
    taken as its answer; everything else the printer sends is returned by :meth:`feed`
    for the POS (answers to its own queries, Automatic Status Back).
    """

    def __init__(self, *, name: str, enabled: bool, interval: float, reply_timeout: float):
        self.name = name
        self.enabled = enabled
        self.interval = interval
        self.reply_timeout = reply_timeout
        self.state: PrinterState | None = None  # the last answer; None: not known
        self.silent = False  # asked, and nothing answered
        self.last = -1e9  # monotonic time of the last poll
        self.next = 0.0  # when the next poll is due
        self._cond = threading.Condition()
        self._awaiting = False
        self._answer: int | None = None
        self._warned = False

    def reset(self) -> None:
        """The port went away or came back: what it said before is stale; ask at once."""
        with self._cond:
            self.state, self.silent = None, False
            self.last, self.next = -1e9, 0.0

    def due(self, now: float) -> bool:
        return self.enabled and now >= self.next

    def stale(self, now: float) -> bool:
        return self.enabled and now - self.last > FRESH_SECONDS

    def ready(self) -> bool:
        """Whether a job may be written now (always, when polling is off)."""
        if not self.enabled:
            return True
        state = self.state
        return not self.silent and state is not None and state.status is DeviceStatus.ONLINE

    def poll(self, write: Callable[[bytes], None], stopping: threading.Event) -> None:
        """Ask DLE EOT 1..4 through ``write``; stop at the first query left unanswered."""
        answers: dict[int, int] = {}
        try:
            for n, query in QUERIES.items():
                with self._cond:
                    self._awaiting, self._answer = True, None
                write(query)
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._answer is not None or stopping.is_set(), self.reply_timeout
                    )
                    got, self._awaiting = self._answer, False
                if got is None:
                    break
                answers[n] = got
        finally:
            with self._cond:
                self._awaiting = False
                self.last = time.monotonic()
                self.next = self.last + self.interval
        if stopping.is_set():
            return
        with self._cond:
            self.silent = not answers
            if answers:
                self.state = decode(answers)
        if not answers and not self._warned:
            self._warned = True
            logger.warning(
                "%s does not answer status queries (DLE EOT): it is off or disconnected, or "
                "it does not support them (then set status_poll = false in [devices.printer])",
                self.name,
            )

    def feed(self, data: bytes) -> bytes:
        """Take the answer to an outstanding query out of ``data``; return the rest."""
        rest = bytearray()
        with self._cond:
            for byte in data:
                if self._awaiting and self._answer is None and is_status_answer(byte):
                    self._answer = byte
                    self._cond.notify_all()
                else:
                    rest.append(byte)
        return bytes(rest)


class Report(NamedTuple):
    """What a status_changed event says."""

    status: DeviceStatus
    message: str  # the cashier's hint
    queued: int
    error: str  # why the port is offline ("" when it is not)


class StatusReporter:
    """Sends a device's status_changed events: one per change of status or hint, in order."""

    def __init__(self, device: str, on_event: Callable[[DeviceEvent], None] | None) -> None:
        self.device = device
        self.on_event = on_event
        self._lock = threading.RLock()  # events leave in the order the states were reached
        self._published: tuple[DeviceStatus, str] | None = None

    def publish(self, current: Callable[[], Report]) -> None:
        """Emit ``current()`` if its status or message differs from the last one emitted."""
        with self._lock:
            report = current()
            if (report.status, report.message) == self._published:
                return
            was, self._published = self._published, (report.status, report.message)
            if was is None or was[0] is not report.status:
                log = logger.info if report.status in UNREMARKABLE else logger.warning
                log("%s: %s %s", self.device, report.status.value, report.message)
            self.emit(report)

    def emit(self, report: Report) -> None:
        """Send one event now; a failing listener is logged, never raised."""
        callback = self.on_event
        if callback is None:
            return
        event = DeviceEvent(
            device=self.device,
            kind="status_changed",
            data={
                "status": report.status.value,
                "message": report.message,
                "queued": report.queued,
                "error": report.error,
            },
        )
        with self._lock:
            try:
                callback(event)
            except Exception as exc:
                logger.error("%s: event listener failed: %s", self.device, mask_in_text(repr(exc)))
