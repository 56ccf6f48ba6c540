"""The driver of ``[devices.scanner]`` and ``[devices.card_reader]``: reads become events.

An :class:`InputDevice` owns one device through a :class:`~.runner.DeviceRunner` (serial,
pty, tcp, ``loop://``, ``socket://`` as byte ports; ``evdev:`` through
:class:`~.keyboard.KeyboardPort`), cuts what arrives into reads (:class:`~.scanner.Framer`)
and turns each read into one :class:`~.base.DeviceEvent` on the caller's callback:

- ``card_presented`` — data ``{"raw": card number or E.164 phone, "kind": "number"|"phone",
  "form": "track1"|"track2"|"barcode"|"qr"|"phone"|"number", "source": role}``; ``raw`` is
  what :class:`tillgate.agent.usecases.session.CardSession` and ``identify`` take;
- ``barcode_scanned`` — ``{"code": text, "source": "scanner"}`` (products, coupons);
- ``read_rejected`` — ``{"reason": why, "source": role}`` (never a full card number);
- ``status_changed`` — ``{"status": DeviceStatus value, "error": message}``.

A card reader parses magnetic tracks (:mod:`.msr`) and also accepts a plain card number,
app QR or phone; a scanner reports card barcodes, app QR codes and phones as cards and
everything else as a barcode. Life cycle: open → enable → disable → close
(:meth:`InputDevice.start` / :meth:`InputDevice.stop` do both halves).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tillgate.core.cards import DEFAULT_NUMBER_PATTERN, mask, mask_in_text
from tillgate.core.config import DeviceAddress, InputDeviceSection

from .base import BytePort, DeviceEvent, DeviceStatus
from .keyboard import EvdevKeySource, KeyboardPort
from .msr import Rejected, Swipe, parse_swipes
from .ports import open_port
from .runner import Backoff, DeviceRunner
from .scanner import Barcode, CardScan, Framer, Role, classify, decode

logger = logging.getLogger(__name__)

Read = Swipe | CardScan | Barcode | Rejected


@dataclass(frozen=True, kw_only=True)
class InputSettings:
    """How a reader frames and what it calls a card (``[devices.*]`` keys as values)."""

    prefix: bytes = b""
    suffix: bytes = b""
    card_number_pattern: str = ""  # empty: the program's, else the default
    track_number_pattern: str = ""
    scan_timeout: float = 0.15
    encodings: tuple[str, ...] = ("utf-8", "cp1251")

    @classmethod
    def from_section(cls, section: InputDeviceSection) -> InputSettings:
        return cls(
            prefix=section.prefix.encode("utf-8"),
            suffix=section.suffix.encode("utf-8"),
            card_number_pattern=section.card_number_pattern,
            track_number_pattern=section.track_number_pattern,
            scan_timeout=section.scan_timeout_ms / 1000,
            encodings=tuple(section.encodings),
        )


def port_factory(address: DeviceAddress) -> Callable[[], BytePort] | None:
    """What opens the device at ``address`` (a fresh port per attempt); None for ``none``."""
    if address.scheme == "none":
        return None
    if address.scheme == "evdev":
        return lambda: KeyboardPort(EvdevKeySource(address.path))
    return lambda: open_port(address)


def interpret(
    text: str,
    *,
    role: Role,
    number_pattern: str = DEFAULT_NUMBER_PATTERN,
    track_number_pattern: str = "",
) -> Sequence[Read]:
    """What one decoded read is: swipes (card reader), a card, a barcode, or a rejection."""
    if role == "card_reader":
        swipes = parse_swipes(
            text, number_pattern=number_pattern, track_number_pattern=track_number_pattern
        )
        if swipes is not None:
            return swipes
    return [classify(text, role=role, number_pattern=number_pattern)]


def to_event(read: Read, *, role: Role) -> DeviceEvent:
    """The event a read becomes."""
    if isinstance(read, Swipe | CardScan):
        card = read.card
        data = {"raw": card.value, "kind": card.kind, "form": card.form, "source": role}
        return DeviceEvent(device=role, kind="card_presented", data=data)
    if isinstance(read, Barcode):
        return DeviceEvent(
            device=role, kind="barcode_scanned", data={"code": read.code, "source": role}
        )
    return DeviceEvent(
        device=role, kind="read_rejected", data={"reason": read.reason, "source": role}
    )


class InputDevice:
    """A scanner or card reader: a device thread whose reads become events."""

    def __init__(
        self,
        *,
        role: Role,
        on_event: Callable[[DeviceEvent], None],
        open_port: Callable[[], BytePort] | None,
        settings: InputSettings | None = None,
        number_pattern: Callable[[], str] | None = None,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.role: Role = role
        self.settings = settings or InputSettings()
        self._on_event = on_event
        self._number_pattern = number_pattern
        self._clock = clock
        self._enabled = False
        # A track-1 swipe waits a moment for its track 2: readers set to end each track
        # with CR send one swipe as two reads.
        self._held: tuple[Swipe, float] | None = None
        self._framer = Framer(
            prefix=self.settings.prefix,
            suffix=self.settings.suffix,
            idle_timeout=self.settings.scan_timeout,
        )
        self._runner = (
            None
            if open_port is None
            else DeviceRunner(
                role, open_port, on_data=self._data, on_event=self._emit, backoff=backoff
            )
        )

    @classmethod
    def from_config(
        cls,
        role: Role,
        section: InputDeviceSection,
        on_event: Callable[[DeviceEvent], None],
        *,
        number_pattern: Callable[[], str] | None = None,
        backoff: Backoff | None = None,
    ) -> InputDevice:
        """The device a ``[devices.scanner]`` / ``[devices.card_reader]`` section describes.

        ``number_pattern`` returns the current program's ``card_number_pattern`` (the
        section's own pattern, when set, wins).
        """
        return cls(
            role=role,
            on_event=on_event,
            open_port=port_factory(section.address),
            settings=InputSettings.from_section(section),
            number_pattern=number_pattern,
            backoff=backoff,
        )

    @property
    def status(self) -> DeviceStatus:
        if self._runner is None:
            return DeviceStatus.NOT_CONFIGURED
        return self._runner.status

    @property
    def error(self) -> str:
        """Why the device is offline (empty when it is not)."""
        return "" if self._runner is None else self._runner.error

    # ------------------------------------------------------------ life cycle

    def open(self) -> None:
        """Start the device thread: the device is opened (and reopened) there."""
        if self._runner is not None:
            self._runner.start()

    def enable(self) -> None:
        """Start turning reads into events."""
        self._enabled = True

    def disable(self) -> None:
        """Keep the device open but drop its reads."""
        self._enabled = False
        self._held = None

    def close(self, timeout: float = 5.0) -> bool:
        """Stop the thread and close the device; False if it did not stop in ``timeout``."""
        return self._runner.stop(timeout) if self._runner is not None else True

    def start(self) -> None:
        """open() and enable()."""
        self.open()
        self.enable()

    def stop(self, timeout: float = 5.0) -> bool:
        """disable() and close()."""
        self.disable()
        return self.close(timeout)

    # ------------------------------------------------------------ reads

    def _pattern(self) -> str:
        if self.settings.card_number_pattern:
            return self.settings.card_number_pattern
        if self._number_pattern is not None:
            return self._number_pattern() or DEFAULT_NUMBER_PATTERN
        return DEFAULT_NUMBER_PATTERN

    def _data(self, data: bytes) -> None:
        now = self._clock()
        for frame in self._framer.feed(data, now):
            if not self._enabled:
                logger.debug("%s: disabled, a read dropped", self.role)
                continue
            if self._held is not None:
                held, self._held = self._held[0], None
                follow = self._track_2_of(held, frame)
                if follow != "same card":
                    self._publish([held])
                if follow == "unreadable":
                    continue  # the swipe's bad track 2: its track 1 was enough
            try:
                reads = self._reads(frame)
            except Exception as exc:  # our bug: lose this read only, say so, keep reading
                logger.error(
                    "%s: could not handle a read: %s",
                    self.role,
                    mask_in_text(repr(exc)),
                    exc_info=True,
                )
                reads = [Rejected(reason="the read could not be processed (see the agent log)")]
            if len(reads) == 1 and isinstance(reads[0], Swipe) and reads[0].track == 1:
                self._held = (reads[0], now)
                continue
            self._publish(reads)
        if self._held is not None and now - self._held[1] >= self.settings.scan_timeout:
            held, self._held = self._held[0], None
            self._publish([held])

    def _track_2_of(self, held: Swipe, frame: bytes | Rejected) -> str | None:
        """Whether ``frame`` is the held track-1 swipe's own track 2, and how it read."""
        if isinstance(frame, Rejected) or not frame.lstrip().startswith(b";"):
            return None
        try:
            reads = self._reads(frame)
        except Exception:
            return None
        if len(reads) != 1:
            return None
        if isinstance(reads[0], Swipe) and reads[0].card.value == held.card.value:
            return "same card"
        return "unreadable" if isinstance(reads[0], Rejected) else None

    def _publish(self, reads: Sequence[Read]) -> None:
        for read in reads:
            self._log(read)
            self._emit(to_event(read, role=self.role))

    def _reads(self, frame: bytes | Rejected) -> Sequence[Read]:
        text = frame if isinstance(frame, Rejected) else decode(frame, self.settings.encodings)
        if isinstance(text, Rejected):
            return [text]
        return interpret(
            text,
            role=self.role,
            number_pattern=self._pattern(),
            track_number_pattern=self.settings.track_number_pattern,
        )

    def _log(self, read: Read) -> None:
        if isinstance(read, Swipe | CardScan):
            logger.info("%s: card %s (%s)", self.role, mask(read.card.value), read.card.form)
        elif isinstance(read, Barcode):
            logger.info("%s: barcode of %d characters", self.role, len(read.code))
        else:
            logger.info("%s: read rejected: %s", self.role, read.reason)

    def _emit(self, event: DeviceEvent) -> None:
        try:
            self._on_event(event)
        except Exception:
            logger.exception("%s: event listener failed on %s", self.role, event.kind)
