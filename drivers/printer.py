"""The receipt printer driver: a job queue that never blocks a sale, status, pass-through.

:class:`Printer` owns the printer's byte port through a
:class:`~tillgate.drivers.runner.DeviceRunner` (which opens it, reads it, and reopens it
with back-off when it fails) and one writer thread that alone writes to it, in this order
of priority:

1. bytes the POS sent, forwarded by interception (:meth:`Printer.forward`), in order;
2. queued standalone jobs (:meth:`Printer.submit`), one whole job at a time, never while a
   POS receipt is in progress (:meth:`Printer.begin_receipt` … :meth:`Printer.end_receipt`)
   and only while the printer is ready;
3. status polls (``DLE EOT 1..4``) every ``poll_seconds`` when idle, and just before a job.

Delivery: a job is done only when all its bytes were written. If the port fails part-way,
the job stays first in the queue and is written again *from its start* once the port is
back, and the log says so. The printer may then print the part it already had twice; we
accept that because the other choice, resuming in the middle, prints garbage when the
printer lost its buffer with its power, and dropping the job loses a customer's coupon.
Forwarded POS bytes have no job boundary: they are written in pieces of ``chunk_size`` and a
piece that failed is written again (so at most one piece may print twice). Jobs live in
memory and, with a ``spool`` directory, in one file each: what is still queued when the
agent stops is logged and printed at the next start.

Replies from the printer (answers to the POS's own ``DLE EOT``, ``GS I``, ``GS r``, or
Automatic Status Back) go to ``on_reply`` (interception sends them back to the POS); only
the answers to our own polls are kept, recognised by their fixed bits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tillgate.core.cards import mask_in_text
from tillgate.core.errors import DeviceError

from .base import BytePort, DeviceEvent, DeviceStatus
from .layout import Item, Language, Layout
from .printer_queue import ForwardBuffer, Job, JobQueue, SubmitResult
from .printer_status import Report, StatusPoller, StatusReporter, compose, hint
from .runner import Backoff, DeviceRunner

if TYPE_CHECKING:
    from tillgate.core.config import PrinterSection

__all__ = ["Layout", "Printer", "SubmitResult", "default_status_poll"]

logger = logging.getLogger(__name__)

# Schemes whose devices answer DLE EOT; a file, a null port or a loop never do, and many
# network printers do not either, so polling is off for them unless config says otherwise.
_POLLED_SCHEMES = frozenset({"serial", "pty", "usb", "rfc2217"})


def default_status_poll(scheme: str) -> bool:
    """Whether a printer on this kind of port is polled with ``DLE EOT`` by default."""
    return scheme in _POLLED_SCHEMES


class Printer:
    """One receipt printer: life cycle open → enable → disable → close (or start/stop).

    ``open_port`` builds a fresh, unopened port for each attempt (``lambda:
    open_port(address)``); ``None`` means no printer is configured. All callbacks run on
    the driver's threads and must not block; an exception in one is logged and ignored.
    """

    def __init__(
        self,
        open_port: Callable[[], BytePort] | None,
        *,
        name: str = "printer",
        layout: Layout | None = None,
        status_poll: bool = False,
        poll_seconds: float = 5.0,
        reply_timeout: float = 0.5,
        queue_limit: int = 100,
        forward_limit: int = 4 * 1024 * 1024,
        receipt_idle_seconds: float = 10.0,
        write_timeout: float = 5.0,
        chunk_size: int = 1024,
        backoff: Backoff | None = None,
        language: Language = "ru",
        on_event: Callable[[DeviceEvent], None] | None = None,
        on_reply: Callable[[bytes], None] | None = None,
        spool: Path | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.name = name
        self.layout = layout or Layout(language=language)
        self._reporter = StatusReporter(name, on_event)
        self.on_reply = on_reply  # set by interception; None drops the printer's replies
        self._configured = open_port is not None
        self._poller = StatusPoller(
            name=name,
            enabled=status_poll and self._configured,
            interval=poll_seconds,
            reply_timeout=reply_timeout,
        )
        self._receipt_idle = receipt_idle_seconds
        self._write_timeout = write_timeout
        self._chunk = chunk_size
        self._language = language
        self._runner = (
            DeviceRunner(
                name,
                open_port,
                on_data=self._on_data,
                on_event=self._on_runner_event,
                # Reopening a printer port is cheap, and a cashier waits for the coupon.
                backoff=backoff or Backoff(initial=0.5, maximum=5.0),
            )
            if open_port is not None
            else None
        )

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._enabled = False
        self._jobs = JobQueue(queue_limit, spool=spool if open_port is not None else None)
        self._forward = ForwardBuffer(forward_limit)
        self._in_receipt = False
        self._receipt_activity = 0.0
        self._pos_query_until = 0.0

    # ------------------------------------------------------------ configuration

    @classmethod
    def from_config(
        cls,
        section: PrinterSection,
        *,
        language: Language = "ru",
        on_event: Callable[[DeviceEvent], None] | None = None,
        on_reply: Callable[[bytes], None] | None = None,
        **overrides: Any,
    ) -> Printer:
        """The printer configured in ``[devices.printer]``."""
        from .ports import open_port  # pyserial and sockets only for a configured printer

        address, poll = section.address, section.status_poll
        layout = Layout(
            profile=section.profile,
            codepage=section.codepage,
            columns=section.columns,
            language=language,
            code_style=section.coupon_code,
        )
        options: dict[str, Any] = {
            "status_poll": default_status_poll(address.scheme) if poll is None else poll,
            "poll_seconds": section.poll_seconds,
            "queue_limit": section.queue_limit,
            **overrides,
        }
        factory = None if address.scheme == "none" else (lambda: open_port(address))
        return cls(
            factory,
            layout=layout,
            language=language,
            on_event=on_event,
            on_reply=on_reply,
            **options,
        )

    # ------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Start the port (opened, and reopened, on the runner's thread) and the writer."""
        if self._opened:
            return
        self._stop.clear()
        with self._lock:
            self._opened = True
        if self._runner is not None:
            self._runner.start()
            self._thread = threading.Thread(
                target=self._run, name=f"{self.name}-writer", daemon=True
            )
            self._thread.start()
        self._publish()

    def enable(self) -> None:
        """Let queued jobs print (they are accepted, and held, before this)."""
        with self._cond:
            self._enabled = True
            self._cond.notify_all()

    def disable(self) -> None:
        """Hold queued jobs (a job being written is finished); forwarding goes on."""
        with self._cond:
            self._enabled = False

    def close(self, timeout: float = 3.0) -> None:
        """Stop both threads and close the port; jobs still queued are logged (and stay in
        the spool, if there is one)."""
        self._stop.set()
        with self._cond:
            self._opened = False
            self._enabled = False
            self._cond.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                logger.error("%s: writer did not stop within %.1f s", self.name, timeout)
        if self._runner is not None:
            self._runner.stop(timeout)
        with self._lock:
            left = self._jobs.pending()
        if left:
            names = ", ".join(job.label for job in left)
            kept = [job for job in left if job.spooled is not None]
            logger.warning(
                "%s stopped with %d job(s) not printed (%d kept in the spool, printed at the "
                "next start): %s",
                self.name,
                len(left),
                len(kept),
                names,
            )
        self._publish()

    def start(self) -> None:
        """open() and enable()."""
        self.open()
        self.enable()

    def stop(self, timeout: float = 3.0) -> None:
        """disable() and close()."""
        self.disable()
        self.close(timeout)

    # ------------------------------------------------------------ what others call

    @property
    def on_event(self) -> Callable[[DeviceEvent], None] | None:
        """Where status_changed events go (the daemon's event queue); must not block."""
        return self._reporter.on_event

    @on_event.setter
    def on_event(self, callback: Callable[[DeviceEvent], None] | None) -> None:
        self._reporter.on_event = callback

    @property
    def status(self) -> DeviceStatus:
        return self._compose()[0]

    @property
    def message(self) -> str:
        """The cashier's hint for the current status ("" when there is nothing to say)."""
        return self._compose()[1]

    @property
    def queued(self) -> int:
        """Jobs waiting to be printed (the one being written included)."""
        with self._lock:
            return len(self._jobs)

    def snapshot(self) -> dict[str, Any]:
        """What ``/v1/status`` shows for the printer."""
        report = self._current()
        state = self._poller.state
        near_end = bool(state and state.paper_near_end)
        return report._asdict() | {"status": report.status.value, "paper_near_end": near_end}

    def submit(self, data: bytes, *, kind: str, receipt_id: str = "") -> SubmitResult:
        """Queue a standalone job and return at once; it prints when the printer can.

        ``kind`` and ``receipt_id`` name the job in logs; the same non-empty pair twice
        (an idempotent confirm retried) is printed once.
        """
        if not data:
            raise ValueError("a print job needs bytes to print")
        if not self._configured:
            logger.info("no printer configured: %s for receipt %s not printed", kind, receipt_id)
            return SubmitResult.NO_PRINTER
        with self._cond:
            result, job = self._jobs.add(data, kind=kind, receipt_id=receipt_id)
            self._cond.notify_all()
        if result is SubmitResult.DUPLICATE:
            logger.info(
                "%s: %s for receipt %s already printed or queued", self.name, kind, receipt_id
            )
            return result
        if job is None:
            logger.warning(
                "%s: queue full (%d jobs waiting, printer %s): %s for receipt %s NOT printed",
                self.name,
                self._jobs.limit,
                self.status.value,
                kind,
                receipt_id or "-",
            )
            full = hint("full", language=self._language, receipt=receipt_id or "-")
            self._reporter.emit(self._current()._replace(message=full))
            return result
        logger.debug("%s: queued %s", self.name, job.label)
        self._publish()
        return result

    def print_items(
        self, items: Sequence[Item], *, kind: str = "coupons", receipt_id: str = ""
    ) -> SubmitResult | None:
        """Lay ``items`` out as a standalone job and submit it; None if there is nothing.

        A layout problem (an item the layout cannot print) is logged and the job dropped:
        it must never fail the sale that asked for it.
        """
        if not items:
            return None
        try:
            data = self.layout.job(items)
        except (ValueError, DeviceError) as exc:
            logger.error(
                "%s: cannot lay out %s for receipt %s: %s", self.name, kind, receipt_id, exc
            )
            return None
        return self.submit(data, kind=kind, receipt_id=receipt_id)

    def forward(self, data: bytes) -> bool:
        """Pass POS bytes to the printer, in order, ahead of queued jobs; never blocks.

        False (and an error logged) when the printer has been away so long that
        ``forward_limit`` bytes are already waiting: then ``data`` is dropped.
        """
        if not data:
            return True
        with self._cond:
            dropped = not self._forward.add(data)
            if not dropped:
                # POS bytes mean a POS receipt is under way, begin_receipt() or not: a job
                # printed between two of its pieces would land in the middle of it.
                self._in_receipt = True
                self._receipt_activity = time.monotonic()
                self._cond.notify_all()
        if dropped:
            logger.error(
                "%s: %d bytes of POS receipts already wait for the printer; %d more dropped",
                self.name,
                len(self._forward),
                len(data),
            )
        return not dropped

    def begin_receipt(self) -> None:
        """A POS receipt started: hold queued jobs until :meth:`end_receipt`.

        :meth:`forward` implies it; without an :meth:`end_receipt`, jobs wait until the
        POS was silent for ``receipt_idle_seconds``.
        """
        with self._cond:
            self._in_receipt = True
            self._receipt_activity = time.monotonic()

    def end_receipt(self) -> None:
        """The POS receipt was cut (or abandoned): queued jobs may print again."""
        with self._cond:
            self._in_receipt = False
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or waiting to be forwarded; False on timeout."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout)

    def _idle(self) -> bool:
        return not len(self._jobs) and not len(self._forward)

    # ------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                action, payload = self._next_action()
                if action == "forward":
                    self._write_forward()
                elif action == "job":
                    self._write_job(payload)
                elif action == "poll":
                    self._poll()
            except DeviceError as exc:
                # The runner saw it too and reopens the port; we wait for it below.
                logger.debug("%s: %s", self.name, mask_in_text(str(exc)))
                self._stop.wait(0.05)
            except Exception as exc:  # a bug must not kill the writer (or silence the printer)
                logger.error(
                    "%s: writer failed: %s", self.name, mask_in_text(repr(exc)), exc_info=True
                )
                self._stop.wait(0.5)

    def _next_action(self) -> tuple[str, Any]:
        """What to do next (waiting until there is something): forward, job or poll."""
        runner = self._runner
        assert runner is not None
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if runner.status is not DeviceStatus.ONLINE:
                    self._cond.wait(0.5)  # the runner's status events wake us sooner
                    continue
                if len(self._forward):
                    return "forward", None
                if self._in_receipt and now - self._receipt_activity > self._receipt_idle:
                    logger.warning(
                        "%s: no receipt end from the POS for %.0f s; printing queued jobs",
                        self.name,
                        self._receipt_idle,
                    )
                    self._in_receipt = False
                quiet = not self._in_receipt and now >= self._pos_query_until
                first = self._jobs.first()
                if quiet and self._enabled and first is not None:
                    if self._poller.stale(now):
                        return "poll", None
                    if self._poller.ready():
                        return "job", first
                if quiet and self._poller.due(now):
                    return "poll", None
                waits = [1.0]
                if self._poller.enabled:
                    waits.append(self._poller.next - now)
                if now < self._pos_query_until:
                    waits.append(self._pos_query_until - now)
                if self._in_receipt:
                    waits.append(self._receipt_activity + self._receipt_idle - now)
                self._cond.wait(max(min(waits), 0.01))
        return "stop", None

    def _write(self, data: bytes) -> None:
        runner = self._runner
        assert runner is not None
        runner.write(data, self._write_timeout)

    def _write_forward(self) -> None:
        """Write what the POS sent, piece by piece, until nothing is left (it has priority)."""
        while not self._stop.is_set():
            with self._lock:
                piece = self._forward.next_piece(self._chunk)
            if not piece:
                return
            self._write(piece)
            with self._cond:
                if self._forward.written(piece):
                    # The answer belongs to the POS: no poll of ours until it had time to come.
                    self._pos_query_until = time.monotonic() + max(
                        self._poller.reply_timeout * 2, 1.0
                    )
                self._cond.notify_all()

    def _write_job(self, job: Job) -> None:
        job.attempts += 1
        if job.attempts > 1:
            logger.warning(
                "%s: printing %s again from its start (attempt %d)",
                self.name,
                job.label,
                job.attempts,
            )
        written = 0
        try:
            for start in range(0, len(job.data), self._chunk):
                if self._stop.is_set():
                    logger.warning("%s: stopped in the middle of %s", self.name, job.label)
                    return
                chunk = job.data[start : start + self._chunk]
                self._write(chunk)
                written += len(chunk)
        except DeviceError as exc:
            logger.warning(
                "%s: port lost after %d of %d bytes of %s: %s; the job will be printed again "
                "from its start when the printer is back (what was already printed of it may "
                "appear twice)",
                self.name,
                written,
                len(job.data),
                job.label,
                mask_in_text(str(exc)),
            )
            raise
        with self._cond:
            self._jobs.done(job)
            self._cond.notify_all()
        logger.info("%s: printed %s, %d bytes", self.name, job.label, len(job.data))
        self._publish()

    def _poll(self) -> None:
        self._poller.poll(self._write, self._stop)
        self._publish()

    # ------------------------------------------------------------ the runner's thread

    def _on_data(self, data: bytes) -> None:
        passthrough = self._poller.feed(data) if data else b""
        if not passthrough:
            return
        callback = self.on_reply
        if callback is None:
            logger.debug("%s: %d reply byte(s) with nobody to take them", self.name, len(data))
            return
        try:
            callback(passthrough)
        except Exception as exc:
            logger.error("%s: reply listener failed: %s", self.name, mask_in_text(repr(exc)))

    def _on_runner_event(self, event: DeviceEvent) -> None:
        self._poller.reset()
        with self._cond:
            self._cond.notify_all()
        self._publish()

    # ------------------------------------------------------------ status and events

    def _compose(self) -> tuple[DeviceStatus, str]:
        runner = self._runner
        with self._lock:
            queued = len(self._jobs)
            opened = self._opened
        poller = self._poller
        state, silent = poller.state, poller.silent
        return compose(
            port=runner.status if runner is not None else None,
            opened=opened,
            polled=poller.enabled,
            silent=silent,
            state=state,
            queued=queued,
            language=self._language,
        )

    def _current(self) -> Report:
        status, message = self._compose()
        runner = self._runner
        return Report(status, message, self.queued, runner.error if runner is not None else "")

    def _publish(self) -> None:
        """Send a status_changed event if the status or the hint changed."""
        self._reporter.publish(self._current)
