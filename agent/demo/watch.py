"""The demo listens to the agent's event stream, as the cashier's hint panel does.

Receipts the agent reads off the POS's printer line (interception) are known only to the
agent; their ``receipt`` events are how the demo learns what each one earned.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


class EventWatcher:
    """A background reader of ``GET /v1/events`` that keeps every event it sees."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-events", daemon=True)
        self._connected = threading.Event()
        self._reply: httpx.Response | None = None
        self._last_id = 0  # a reconnected stream replays the latest events: skip those

    def start(self, *, timeout: float = 10) -> None:
        self._thread.start()
        if not self._connected.wait(timeout):
            raise TimeoutError("the agent's event stream did not open")

    def stop(self) -> None:
        self._stop.set()
        reply = self._reply
        if reply is not None:
            reply.close()  # ends the blocked read at once
        self._thread.join(timeout=0.5)  # a daemon thread: it ends with the agent anyway

    def wait_for(
        self, match: Callable[[str, dict[str, Any]], bool], *, after: int, timeout: float
    ) -> dict[str, Any] | None:
        """The first event from index ``after`` on that ``match`` accepts, or None in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for kind, data in self.events[after:]:
                    if match(kind, data):
                        return data
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    @property
    def mark(self) -> int:
        """Where the events seen so far end: pass it to :meth:`wait_for` as ``after``."""
        with self._cond:
            return len(self.events)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with (
                    # The agent sends a comment every 15 s on an idle stream.
                    httpx.Client(timeout=httpx.Timeout(5.0, read=40.0)) as http,
                    http.stream("GET", f"{self.base_url}/v1/events") as reply,
                ):
                    self._reply = reply
                    self._connected.set()
                    self._read(reply)
            except (httpx.HTTPError, httpx.StreamError, OSError):
                # A read timeout between events, or the agent restarting: reconnect.
                if self._stop.wait(0.2):
                    return

    def _read(self, reply: httpx.Response) -> None:
        kind, data, event_id = "", "", 0
        for line in reply.iter_lines():
            if self._stop.is_set():
                return
            if line.startswith("id:"):
                event_id = int(line[3:].strip() or 0)
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data += line[5:].strip()
            elif not line and kind and data:
                if event_id > self._last_id:
                    self._last_id = event_id
                    with self._cond:
                        self.events.append((kind, json.loads(data)))
                        self._cond.notify_all()
                kind, data, event_id = "", "", 0
