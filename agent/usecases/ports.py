"""What the use cases need from the world around them, as small protocols with defaults.

Each is handed to :class:`~tillgate.agent.usecases.TillService` when it is made (never set
on it afterwards):

- :class:`Connectivity` says whether the till is offline. Sync owns the real one
  (:class:`tillgate.sync.engine.Link`); a standalone till is always online.
- :class:`PrintQueue` takes what a confirmed receipt prints (coupons, prompts). The device
  layer queues it on the printer; with no printer nothing is printed.
- :class:`DeviceHints` gives the cashier hints about devices (printer out of paper, card
  reader offline) for every calculation; with no devices there are none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Connectivity(Protocol):
    @property
    def offline(self) -> bool:
        """True while the till cannot reach head office (offline limits apply)."""
        ...


class PrintQueue(Protocol):
    def submit(self, receipt_id: str, items: Sequence[dict[str, Any]]) -> None:
        """Queue a confirmed receipt's print items; never blocks, never raises."""
        ...


class DeviceHints(Protocol):
    def hints(self) -> list[dict[str, Any]]:
        """Cashier hints about the devices' state, right now."""
        ...


class AlwaysOnline:
    """A standalone till: no head office, so never offline."""

    offline = False


class NoPrinter:
    """No printer: what a receipt would print is not printed by the agent."""

    def submit(self, receipt_id: str, items: Sequence[dict[str, Any]]) -> None:
        return None


class NoDevices:
    """No devices: no device hints."""

    def hints(self) -> list[dict[str, Any]]:
        return []
