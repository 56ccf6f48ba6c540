"""What the use cases need from the world around them, as small protocols with defaults.

Each is handed to :class:`~tillgate.agent.usecases.TillService` when it is made (never set
on it afterwards):

- :class:`Connectivity` says whether the till is offline. Sync owns the real one
  (:class:`tillgate.sync.engine.Link`); a standalone till is always online.
- :class:`PrintQueue` takes what a confirmed receipt prints (coupons, prompts). The device
  layer queues it on the printer; with no printer nothing is printed.
- :class:`DeviceHints` gives the cashier hints about devices (printer out of paper, card
  reader offline) for every calculation; with no devices there are none.
- :class:`Reservations` reserves, for an online chain till, a receipt's points and coupons
  at head office in one round trip, and tells head office how the receipt ended. Sync owns
  the real one (:class:`tillgate.sync.holds.HqHolds`); a standalone till has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


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


@dataclass(frozen=True, kw_only=True)
class HoldAsk:
    """What a calculate asks head office to reserve for its receipt (replacing any before)."""

    receipt_id: str
    card: str | None
    points: int
    exact: bool  # the POS asked for exactly ``points``: fewer are of no use
    coupons: tuple[str, ...]
    seconds: int


@dataclass(frozen=True, kw_only=True)
class HoldGrant:
    """Head office's answer: the points it reserved and what became of each coupon code."""

    granted: int
    available: int  # what the receipt could have had chain-wide
    seconds: int  # how long head office keeps the hold
    refused: str | None = None  # "insufficient_points" (exact, not enough): nothing changed
    coupons: Mapping[str, str] = field(default_factory=dict)  # code → reserved|used|in_use|…


@dataclass(frozen=True, kw_only=True)
class HoldEnd:
    """How a receipt's hold ended at the till, for head office."""

    receipt_id: str
    resolution: Literal["confirmed", "cancelled", "released"]
    redeemed: int = 0
    coupons: tuple[str, ...] = ()
    card: str | None = None


class Reservations(Protocol):
    @property
    def enabled(self) -> bool:
        """True for a chain till: online receipts reserve at head office."""
        ...

    def reserve(self, ask: HoldAsk) -> HoldGrant | None:
        """One round trip within the hold timeout; None: no answer (price offline)."""
        ...

    def resolve(self, end: HoldEnd) -> bool:
        """Tell head office (one round trip); False: it did not hear (sync will tell it)."""
        ...


class NoReservations:
    """No head office: nothing is reserved anywhere but in the till's own ledger."""

    enabled = False

    def reserve(self, ask: HoldAsk) -> HoldGrant | None:
        return None

    def resolve(self, end: HoldEnd) -> bool:
        return False
