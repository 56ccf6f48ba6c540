"""What the cashier's screen shows, as a stream of events (``GET /v1/events``, SSE).

Publishers are the POS API's worker threads (and, later, device drivers and sync);
subscribers are Server-Sent-Events streams in the event loop. Publishing never blocks a
sale: each subscriber has a bounded queue, and a subscriber too slow to keep up loses its
oldest events rather than holding anything up. A new subscriber first receives the latest
event of each kind (and each device's latest status), so a panel that (re)connects shows
the current state at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

KINDS = ("card", "hints", "receipt", "device", "sync")


@dataclass(frozen=True, kw_only=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]

    def sse(self) -> str:
        """The event in text/event-stream framing."""
        body = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {self.id}\nevent: {self.kind}\ndata: {body}\n\n"


def _replay_key(kind: str, data: dict[str, Any]) -> str:
    """Which latest event a new subscriber gets: one per kind, but one status per device.

    A printer out of paper must still show on a screen that connects after a card was
    swiped: each device's last status change is kept apart from the other device events.
    """
    if kind == "device" and data.get("event") == "status_changed":
        return f"device:{data.get('device')}:status"
    return kind


class Subscription:
    """One stream's queue, fed from any thread through its event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)

    def _put(self, event: Event | None) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest: a slow screen must not stall sales
        self.queue.put_nowait(event)

    def push(self, event: Event | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the stream is gone
            self.loop.call_soon_threadsafe(self._put, event)


class EventBus:
    """Thread-safe fan-out of events to every open stream."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self._latest: dict[str, Event] = {}
        self._ids = itertools.count(1)
        self._size = queue_size
        self.closed = False

    def publish(self, kind: str, data: dict[str, Any]) -> Event:
        if kind not in KINDS:
            raise ValueError(f"unknown event kind {kind!r}")
        with self._lock:
            event = Event(id=next(self._ids), kind=kind, data=data)
            self._latest[_replay_key(kind, data)] = event
            subs = list(self._subs)
        for sub in subs:
            sub.push(event)
        return event

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> tuple[Subscription, list[Event]]:
        """A new stream and the latest event of each kind to send it first."""
        sub = Subscription(loop, self._size)
        with self._lock:
            self._subs.add(sub)
            latest = sorted(self._latest.values(), key=lambda e: e.id)
        return sub, latest

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def close(self) -> None:
        """End every stream (the agent is stopping)."""
        with self._lock:
            self.closed = True
            subs = list(self._subs)
        for sub in subs:
            sub.push(None)
