"""The device seams every driver is written against: a byte port, a status, an event.

A *byte port* is the one seam under every serial, pty, tcp, usb and file device (as
python-escpos has ``_raw()``): drivers read and write bytes through it and never touch
pyserial or sockets themselves, so tests plug a fake port (or a real pty) in here.

A device has an explicit life cycle (open → enable → disable → close) and a
:class:`DeviceStatus`; whatever goes wrong becomes a status and an event, never a dead
thread or a dead daemon.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


class DeviceStatus(enum.StrEnum):
    """What ``/v1/status`` and the hint panel say about a device."""

    NOT_CONFIGURED = "not_configured"  # url = "none"
    STARTING = "starting"
    ONLINE = "online"
    OFFLINE = "offline"  # cannot be opened, or went away; being reopened with back-off
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    ERROR = "error"  # answered, but reports a fault
    STOPPED = "stopped"


# States nobody needs to hear about: logged at INFO, never a cashier hint.
UNREMARKABLE = frozenset(
    {
        DeviceStatus.ONLINE,
        DeviceStatus.STARTING,
        DeviceStatus.STOPPED,
        DeviceStatus.NOT_CONFIGURED,
    }
)


@runtime_checkable
class BytePort(Protocol):
    """A bidirectional byte stream to one device.

    ``read`` returns ``b""`` when nothing arrived within ``timeout`` seconds and raises
    :class:`tillgate.core.errors.DeviceError` when the device is gone; ``write`` writes
    everything or raises ``DeviceError`` (a timeout included) — it never blocks forever.
    """

    @property
    def name(self) -> str:
        """A short description for logs and status (no secrets, no card data)."""
        ...

    def open(self) -> None: ...

    def read(self, size: int = 4096, timeout: float | None = 0.1) -> bytes: ...

    def write(self, data: bytes, timeout: float = 5.0) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class DeviceEvent:
    """Something a device reported, put on the agent's one event queue.

    ``kind``: ``card_presented`` | ``barcode_scanned`` | ``read_rejected`` |
    ``receipt_captured`` | ``status_changed``.
    """

    device: str  # "printer", "scanner", "card_reader", "intercept"
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
