"""A thread that keeps one device's byte port open and reads it, whatever the device does.

:class:`DeviceRunner` is the piece every driver shares: it opens the port, hands what it
reads to the driver, and when the device fails (cannot be opened, unplugged, stops
answering) it reports the device OFFLINE, closes the port and reopens it with jittered
exponential back-off until it works again or :meth:`DeviceRunner.stop` is called. A bug in
the driver's own code is logged and the loop goes on: a device problem is a status, never
a dead thread or a dead daemon.

Usage::

    runner = DeviceRunner("scanner", lambda: open_port(address), on_data=..., on_event=...)
    runner.start()
    runner.write(b"...")      # from any thread; DeviceError if the device is offline
    runner.status             # DeviceStatus
    runner.stop()             # returns within about `stop_timeout` seconds
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tillgate.core.cards import mask_in_text
from tillgate.core.errors import DeviceError

from .base import BytePort, DeviceEvent, DeviceStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How long to wait between attempts to reopen a failed device."""

    initial: float = 0.5
    # A local device costs nothing to retry; a cashier who plugs the printer back in should
    # not wait long for it to be used again.
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2  # ± this fraction, so tills on one network do not retry in step

    def delays(self) -> Iterator[float]:
        """The waits before each retry: initial, doubling up to maximum, jittered."""
        delay = self.initial
        while True:
            yield delay * random.uniform(1 - self.jitter, 1 + self.jitter)
            delay = min(delay * self.factor, self.maximum)


class DeviceRunner:
    """Owns one byte port on a thread of its own: open → read loop → reopen on failure.

    ``open_port`` builds a fresh (unopened) port for each attempt. ``on_data`` receives
    every read, including ``b""`` when ``read_timeout`` passed with nothing, so a driver can
    end a read by an idle timeout. ``on_event`` receives ``status_changed`` events
    (data ``{"status": ..., "error": message or ""}``) from the runner's thread.
    """

    def __init__(
        self,
        name: str,
        open_port: Callable[[], BytePort],
        *,
        on_data: Callable[[bytes], None] | None = None,
        on_event: Callable[[DeviceEvent], None] | None = None,
        backoff: Backoff | None = None,
        read_size: int = 4096,
        read_timeout: float = 0.05,
    ) -> None:
        self.name = name
        self._open_port = open_port
        self._on_data = on_data
        self._on_event = on_event
        self._backoff = backoff or Backoff()
        self._read_size = read_size
        self._read_timeout = read_timeout
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._broken = threading.Event()  # a write failed: reopen the port
        self._thread: threading.Thread | None = None
        self._port: BytePort | None = None
        self._status = DeviceStatus.STOPPED
        self._error = ""

    @property
    def status(self) -> DeviceStatus:
        return self._status

    @property
    def error(self) -> str:
        """Why the device is offline (empty when it is not)."""
        return self._error

    def start(self) -> None:
        """Start the thread; the port is opened there (a slow device never blocks the caller)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._set_status(DeviceStatus.STARTING)
        self._thread = threading.Thread(target=self._run, name=f"device-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop reading and close the port; False if the thread did not end within ``timeout``."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s: did not stop within %.1f s", self.name, timeout)
                return False
        self._close_port()
        self._set_status(DeviceStatus.STOPPED)
        return True

    def write(self, data: bytes, timeout: float = 5.0) -> None:
        """Write to the device; DeviceError if it is offline or the write fails."""
        port = self._port
        if port is None or self._status is not DeviceStatus.ONLINE:
            raise DeviceError(f"{self.name} is {self._status.value}: {self._error}".rstrip(": "))
        try:
            port.write(data, timeout)
        except DeviceError as exc:
            self._broken.set()  # the read loop reopens it
            self._set_status(DeviceStatus.OFFLINE, str(exc))
            raise

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        delays = self._backoff.delays()
        while not self._stop.is_set():
            try:
                self._serve()
                delays = self._backoff.delays()  # it was online: start the back-off afresh
            except DeviceError as exc:
                self._set_status(DeviceStatus.OFFLINE, str(exc))
            except Exception as exc:  # a bug must not kill the device thread
                logger.error(
                    "%s: unexpected failure: %s", self.name, mask_in_text(repr(exc)), exc_info=True
                )
                self._set_status(DeviceStatus.OFFLINE, f"internal error: {type(exc).__name__}")
            finally:
                self._close_port()
            if self._stop.wait(next(delays)):
                break

    def _serve(self) -> None:
        """Open the port and read it until it fails or we are stopped."""
        port = self._open_port()
        try:
            port.open()
        except BaseException:
            # A port that failed halfway (a pty without its link) may hold descriptors.
            port.close()
            raise
        with self._lock:
            self._port = port
        self._broken.clear()
        self._set_status(DeviceStatus.ONLINE)
        while not self._stop.is_set() and not self._broken.is_set():
            data = port.read(self._read_size, self._read_timeout)
            if self._on_data is None:
                continue
            try:
                self._on_data(data)
            except Exception as exc:  # the driver's bug, not the device's: keep reading
                logger.error(
                    "%s: could not handle input: %s",
                    self.name,
                    mask_in_text(repr(exc)),
                    exc_info=True,
                )
        if self._broken.is_set():
            raise DeviceError(self._error or f"{self.name}: write failed")

    def _close_port(self) -> None:
        with self._lock:
            port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # a vanished device may fail to close; it is gone anyway
                logger.debug("%s: close failed: %s", self.name, mask_in_text(repr(exc)))

    def _set_status(self, status: DeviceStatus, error: str = "") -> None:
        error = mask_in_text(error)
        with self._lock:
            if (status, error) == (self._status, self._error):
                return
            was = self._status
            self._status, self._error = status, error
        if status is DeviceStatus.OFFLINE and was is not DeviceStatus.OFFLINE:
            logger.warning("%s offline: %s", self.name, error)
        elif status is DeviceStatus.ONLINE:
            logger.info("%s online", self.name)
        else:
            logger.debug("%s: %s %s", self.name, status.value, error)
        if self._on_event is not None:
            event = DeviceEvent(
                device=self.name,
                kind="status_changed",
                data={"status": status.value, "error": error},
            )
            try:
                self._on_event(event)
            except Exception as exc:
                logger.error("%s: status listener failed: %s", self.name, mask_in_text(repr(exc)))
