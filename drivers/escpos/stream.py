"""The incremental splitter interception sits on: pass bytes on at once, stop at each cut.

:class:`ReceiptStream` is fed the POS's bytes as they arrive, in chunks of any size, and
answers with pieces: :class:`Forward` (write these bytes to the printer now), :class:`Cut`
(a receipt ended with a cut: here is the receipt, and the cut to write *after* whatever the
caller wants to add) and :class:`Boundary` (a receipt ended with ``ESC @`` and no cut).

Bytes are held back only while a command is incomplete at the end of a chunk and its
length is not yet known, or while it is a cut (so the caller still gets to write before
it); a long command whose length is known (a raster image) is forwarded as it arrives and
its payload is skipped, so image data is never mistaken for a cut.

Invariant, for every input and every chunking: the ``Forward.data`` and ``Cut.cut`` bytes, in
order, are the input exactly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from .commands import NEED_MORE, scan

logger = logging.getLogger(__name__)

CUT_COMMANDS = frozenset({"GS V", "ESC i", "ESC m"})
INIT_COMMAND = "ESC @"
# Commands whose presence means the receipt printed something besides text.
PRINTING_COMMANDS = frozenset(
    {"GS k", "GS v 0", "ESC *", "GS ( k", "GS ( L", "GS 8 L", "FS p", "GS /"}
)
DEFAULT_MAX_RECEIPT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Forward:
    """Bytes to write to the printer now."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Cut:
    """A receipt ended with a cut: ``receipt`` (already forwarded, cut excluded), then ``cut``.

    The caller writes its own block, if any, then ``cut``; the cut has not been forwarded.
    """

    receipt: bytes
    cut: bytes


@dataclass(frozen=True, slots=True)
class Boundary:
    """A receipt ended without a cut: an ``ESC @`` followed printed content.

    ``receipt`` has all been forwarded; the ``ESC @`` is *not* part of it: it begins the next
    receipt and comes in the :class:`Forward` right after this piece.
    """

    receipt: bytes


Piece = Forward | Cut | Boundary


class ReceiptStream:
    """Splits a POS's ESC/POS byte stream into forwarded bytes and receipts."""

    def __init__(self, *, max_receipt_bytes: int = DEFAULT_MAX_RECEIPT_BYTES) -> None:
        # A POS that never cuts nor initialises would grow one receipt forever; past this size
        # only the newest bytes are kept (the total and receipt number come last).
        self._max_receipt = max(1, max_receipt_bytes)
        self._held = b""  # an incomplete command from the end of the last chunk
        self._skip = 0  # payload bytes of an already forwarded command still to come
        self._receipt = bytearray()
        self._printed = False
        self._trim_logged = False

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[Piece]:
        """The pieces ``chunk`` completes, in order."""
        data = bytes(chunk)
        pieces: list[Piece] = []
        out = bytearray()
        if self._skip:
            n = min(self._skip, len(data))
            out += data[:n]
            self._skip -= n
            data = data[n:]
        if self._held:
            data, self._held = self._held + data, b""
        pos, size = 0, len(data)
        while pos < size:
            kind, name, end = scan(data, pos)
            if end == NEED_MORE or end > size:
                if end == NEED_MORE or name in CUT_COMMANDS:
                    self._held = data[pos:]
                else:
                    out += data[pos:]
                    self._skip = end - size
                    self._printed = self._printed or name in PRINTING_COMMANDS
                break
            if kind == "command" and name in CUT_COMMANDS:
                self._forward(out, pieces)
                pieces.append(Cut(receipt=bytes(self._receipt), cut=data[pos:end]))
                self._new_receipt()
            elif kind == "command" and name == INIT_COMMAND and self._printed:
                self._forward(out, pieces)
                pieces.append(Boundary(receipt=bytes(self._receipt)))
                self._new_receipt()
                out += data[pos:end]
            else:
                out += data[pos:end]
                if not self._printed:
                    self._printed = _prints(kind, name, data, pos, end)
            pos = end
        self._forward(out, pieces)
        return pieces

    def flush(self) -> list[Piece]:
        """Release whatever is held back (an incomplete command), e.g. when the POS goes quiet."""
        held, self._held = self._held, b""
        if not held:
            return []
        self._keep(held)
        return [Forward(held)]

    @property
    def pending(self) -> bytes:
        """The bytes of the receipt in progress that have been forwarded so far."""
        return bytes(self._receipt)

    def take_pending(self) -> bytes:
        """End the receipt in progress without a cut (the POS went quiet): its bytes so far.

        Call :meth:`flush` first so that nothing is held back; the next byte fed starts a new
        receipt.
        """
        receipt = bytes(self._receipt)
        self._new_receipt()
        return receipt

    def _forward(self, out: bytearray, pieces: list[Piece]) -> None:
        if out:
            data = bytes(out)
            out.clear()
            self._keep(data)
            pieces.append(Forward(data))

    def _keep(self, data: bytes) -> None:
        self._receipt += data
        if len(self._receipt) > 2 * self._max_receipt:
            del self._receipt[: len(self._receipt) - self._max_receipt]
            if not self._trim_logged:
                logger.warning(
                    "receipt without cut exceeds %s bytes; keeping only its end", self._max_receipt
                )
                self._trim_logged = True

    def _new_receipt(self) -> None:
        self._receipt = bytearray()
        self._printed = False


def _prints(kind: str, name: str, data: bytes, pos: int, end: int) -> bool:
    if kind == "text":
        return bool(data[pos:end].strip(b" "))
    return kind == "command" and name in PRINTING_COMMANDS


def passthrough(chunks: Iterable[bytes]) -> bytes:
    """What a :class:`ReceiptStream` passes on for ``chunks`` (cuts written where they stood)."""
    stream = ReceiptStream()
    out = bytearray()
    for chunk in chunks:
        for piece in stream.feed(chunk):
            _collect(piece, out)
    for piece in stream.flush():
        _collect(piece, out)
    return bytes(out)


def _collect(piece: Piece, out: bytearray) -> None:
    if isinstance(piece, Forward):
        out += piece.data
    elif isinstance(piece, Cut):
        out += piece.cut
