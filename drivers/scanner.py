"""Barcode and QR reads: cutting a byte stream into reads, decoding and classifying them.

A scanner (or a card reader) sends each read followed by a terminator — CR, LF, CRLF or
TAB, whatever it was programmed with — and maybe wrapped in a prefix and suffix of its own
(STX/ETX, a reader id). Some send nothing after a read at all, so a pause of
``idle_timeout`` seconds also ends one. :class:`Framer` does that cutting; it is fed bytes
and the time, so tests drive it without sleeping.

:func:`decode` turns a read into text (UTF-8, else the fallbacks such as cp1251, which
Russian QR generators still produce) and rejects control-character garbage (a wrong baud
rate); :func:`classify` says what the text is: a loyalty card (number, app QR, phone —
recognised by :func:`tillgate.core.cards.identify`) or a plain barcode (a product or a
coupon), which the scanner reports and a card reader rejects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tillgate.core.cards import DEFAULT_NUMBER_PATTERN, CardRef, identify, mask_in_text
from tillgate.core.errors import CardFormatError

from .msr import Rejected

Role = Literal["scanner", "card_reader"]
TERMINATORS = b"\r\n\t"
IDLE_TIMEOUT = 0.15  # seconds; scanners send a whole code within a few milliseconds
MAX_READ = 4096  # longer than any QR code: a flood of garbage, not a read
# GS (0x1D) separates the fields of GS1 codes (DataMatrix marks on goods); other control
# characters in a read mean a wrong baud rate, a wrong mode or line noise.
_ALLOWED_CONTROLS = frozenset("\x1d")


@dataclass(frozen=True, kw_only=True)
class CardScan:
    """A loyalty card read from a barcode, an app QR code, a phone number or typed digits."""

    card: CardRef


@dataclass(frozen=True, kw_only=True)
class Barcode:
    """A barcode that is not a loyalty card: a product or a coupon code."""

    code: str


class Framer:
    """Cuts a byte stream into reads at terminators, the reader's suffix/prefix, or a pause.

    :meth:`feed` takes bytes and the current monotonic time and returns the reads they
    completed; :meth:`poll` returns a read that ``idle_timeout`` of silence has ended. A
    read longer than ``max_length`` is given up as :class:`Rejected` and the rest of it, up
    to the next terminator, dropped.
    """

    def __init__(
        self,
        *,
        prefix: bytes = b"",
        suffix: bytes = b"",
        idle_timeout: float = IDLE_TIMEOUT,
        max_length: int = MAX_READ,
        terminators: bytes = TERMINATORS,
    ) -> None:
        self.prefix, self.suffix = prefix, suffix
        self.idle_timeout = idle_timeout
        self.max_length = max_length
        self.terminators = terminators
        self._buf = bytearray()
        self._last = 0.0
        self._discarding = False

    def feed(self, data: bytes, now: float) -> list[bytes | Rejected]:
        out = self.poll(now)  # a pause before these bytes ended the previous read
        if not data:
            return out
        self._buf += data
        self._last = now
        while (cut := self._cut()) is not None:
            end, skip = cut
            frame = bytes(self._buf[:end])
            del self._buf[: end + skip]
            if self._discarding:
                self._discarding = False
                continue
            out.extend(self._frame(frame))
        if len(self._buf) > self.max_length:
            self._buf.clear()
            if not self._discarding:
                self._discarding = True
                out.append(Rejected(reason=f"read longer than {self.max_length} bytes: dropped"))
        return out

    def poll(self, now: float) -> list[bytes | Rejected]:
        """The read in progress, if nothing has arrived for ``idle_timeout`` seconds."""
        if not self._buf or now - self._last < self.idle_timeout:
            return []
        frame = bytes(self._buf)
        self._buf.clear()
        if self._discarding:
            self._discarding = False
            return []
        return self._frame(frame)

    def _cut(self) -> tuple[int, int] | None:
        """Where the first complete read ends, and how many marker bytes follow it."""
        cuts = [(i, 1) for i, b in enumerate(self._buf) if b in self.terminators][:1]
        if self.suffix and (i := self._buf.find(self.suffix)) != -1:
            cuts.append((i, len(self.suffix)))
        if self.prefix and (i := self._buf.find(self.prefix, 1)) != -1:
            if not self._buf.startswith(self.prefix) and (not cuts or i < min(cuts)[0]):
                del self._buf[:i]  # noise before a prefixed read: not a read of its own
                return self._cut()
            cuts.append((i, 0))  # a new prefix starts the next read
        return min(cuts) if cuts else None

    def _frame(self, frame: bytes) -> list[bytes | Rejected]:
        if self.prefix and (i := frame.find(self.prefix)) != -1:
            frame = frame[i + len(self.prefix) :]  # anything before the prefix is noise
        return [frame] if frame.strip() else []


def decode(frame: bytes, encodings: Sequence[str] = ("utf-8", "cp1251")) -> str | Rejected:
    """The text of a read, trimmed; :class:`Rejected` for bytes no reader would send."""
    text: str | None = None
    for encoding in encodings:
        try:
            text = frame.decode(encoding)
            break
        except (UnicodeDecodeError, LookupError):
            continue
    if text is None:
        return Rejected(reason=f"unreadable: not text in {', '.join(encodings)}")
    text = text.strip()
    bad = sum(1 for ch in text if _is_control(ch) and ch not in _ALLOWED_CONTROLS)
    if bad:
        return Rejected(
            reason=f"garbage: {bad} control characters in a read of {len(text)} "
            "(check the device's baud rate and mode)"
        )
    return text


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def classify(
    text: str, *, role: Role, number_pattern: str = DEFAULT_NUMBER_PATTERN
) -> CardScan | Barcode | Rejected:
    """What a read is: a loyalty card, or a barcode (scanner) / a rejected read (card reader)."""
    try:
        return CardScan(
            card=identify(text, number_pattern=number_pattern, scanned=role == "scanner")
        )
    except CardFormatError as exc:
        if role == "scanner":
            return Barcode(code=text)
        return Rejected(reason=mask_in_text(str(exc)))
