"""The till's card session: a card swiped or scanned applies to the next receipt for a while."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, kw_only=True)
class Presented:
    raw: str  # what the reader or scanner produced (never logged unmasked)
    source: str  # card_reader | scanner | api
    at: datetime


class CardSession:
    """The card most recently presented on this till, valid for ``seconds`` after."""

    def __init__(self, *, seconds: int) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._current: Presented | None = None

    def present(self, raw: str, *, source: str, at: datetime) -> Presented:
        with self._lock:
            self._current = Presented(raw=raw, source=source, at=at)
            return self._current

    def current(self, now: datetime) -> Presented | None:
        with self._lock:
            p = self._current
            if p is None or now - p.at > timedelta(seconds=self.seconds) or now < p.at:
                return None
            return p

    def clear(self, presented: Presented | None = None) -> None:
        """Forget the session (only if it is still ``presented``, when given)."""
        with self._lock:
            if presented is None or self._current == presented:
                self._current = None
