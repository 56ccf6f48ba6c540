"""Receipt interception: POS → agent → printer, reading each receipt on its way through.

Every byte the POS sends is forwarded to the printer unchanged and at once (chunk by
chunk); only a cut command is held for the moment it takes to read the receipt before it,
run it through the rules engine with the card presented at the till, confirm it in the
ledger, and insert the agent's block (loyalty summary, coupons, prompts) **before the cut**.
Whatever goes wrong with a receipt — a template that cannot read it, a blocked card, a full
disk — the receipt still goes to the printer untouched, and the failure is reported as an
``intercept`` device event; the POS never notices.

Replies from the printer (status answers to the POS's own ``DLE EOT`` queries) are written
back to the POS by the device layer; this module only deals with the POS → printer way.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from tillgate.core import errors
from tillgate.core.cards import mask_in_text
from tillgate.core.templates import ReadReceipt, Template
from tillgate.drivers.base import DeviceEvent
from tillgate.drivers.escpos.commands import Token, iter_tokens
from tillgate.drivers.escpos.parser import parse
from tillgate.drivers.escpos.stream import Boundary, Cut, Forward, ReceiptStream
from tillgate.drivers.escpos.text import render_text
from tillgate.drivers.layout import Language, render_block, summary_from_confirm

from .usecases import SaleRequest, TillService, sale_request

logger = logging.getLogger(__name__)

FEED_BEFORE_CUT = b"\x1bd\x04"  # ESC d 4: print and feed four lines
# What only moves the paper: a POS's blank lines before its cut are held back so that our
# block is printed right under its receipt, and the POS's own feed then follows the block.
_FEEDS = frozenset({"LF", "CR", "ESC d", "ESC J"})
_ENDS_LINE = frozenset({"LF", "ESC d", "ESC J"})


class PrinterSide(Protocol):
    """What interception needs of the printer driver."""

    def forward(self, data: bytes) -> bool: ...

    def begin_receipt(self) -> None: ...

    def end_receipt(self) -> None: ...


@dataclass(kw_only=True)
class InterceptStats:
    """Counters for ``/v1/status`` (``devices.intercept``)."""

    receipts: int = 0
    confirmed: int = 0
    unreadable: int = 0
    failed: int = 0
    bytes_forwarded: int = 0
    last_receipt: str | None = None
    last_problem: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class BlockStyle:
    """How the agent's block is printed: the printer's profile, code page and width."""

    profile: str
    codepage: str
    columns: int
    language: Language = "ru"


class Interceptor:
    """Reads POS bytes, forwards them, and adds the loyalty block before each receipt's cut."""

    def __init__(
        self,
        *,
        service: TillService,
        printer: PrinterSide,
        template: Template,
        style: BlockStyle,
        on_event: Callable[[DeviceEvent], None],
        codepages: dict[int, str] | None = None,
        idle_seconds: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.printer = printer
        self.template = template
        self.style = style
        self.on_event = on_event
        self.codepages = dict(codepages or {})
        self.idle_seconds = idle_seconds
        self._monotonic = monotonic
        self._stream = ReceiptStream()
        self._lock = threading.Lock()  # feed() and idle() come from different threads
        self._open = False  # a receipt has started and not yet ended
        self._last_data = 0.0
        # The character table the POS last selected (ESC t n), followed across receipts: a POS
        # may select it once a shift. None: not seen since the printer's own default (ESC @).
        self._pos_table: int | None = None
        self._feed = b""  # the POS's trailing paper feed, held until we know what follows it
        self.stats = InterceptStats()

    # ------------------------------------------------------------ input

    def feed(self, chunk: bytes) -> None:
        """Bytes from the POS: forward them, and handle every receipt boundary they hold."""
        if not chunk:
            return
        with self._lock:
            self._last_data = self._monotonic()
            for piece in self._stream.feed(chunk):
                self._handle(piece)

    def idle(self) -> None:
        """Called when the POS has been quiet for a while (from the port's read loop).

        A receipt the POS ends without a cut (some tear-off printers) is read once the POS
        has been silent for ``idle_seconds`` *and* the template can read it; its block is
        then printed after it. A receipt the template cannot read yet is left open: a POS
        that prints each line as the item is scanned pauses in the middle of its receipts.
        """
        with self._lock:
            now = self._monotonic()
            if not self._open or now - self._last_data < self.idle_seconds:
                return
            for piece in self._stream.flush():
                self._handle(piece)
            pending = self._stream.pending
            if not pending.strip():
                self._release_feed()
                self._end()
                return
            read, _ = self._read(pending)
            if not read.ok:
                self._release_feed()  # the POS went quiet: print all it sent
                self._last_data = now  # look again after the next quiet spell, not at once
                return
            raw = self._stream.take_pending()
            self._block_then_feed(raw, self._receipt(raw, read=read))
            self._end()

    def _read(self, raw: bytes) -> tuple[ReadReceipt, str]:
        """What the template reads off ``raw``, and why not, when it cannot."""
        try:
            doc = parse(raw, codepages=self.codepages) if self.codepages else parse(raw)
            text = render_text(doc)
        except Exception as exc:  # the parser promises not to raise; belt and braces
            reason = f"could not decode the receipt: {exc}"
            return ReadReceipt(lines=(), total=Decimal(0), number=None, problems=(reason,)), reason
        read = self.template.read(text)
        return read, "; ".join(read.problems)

    # ------------------------------------------------------------ pieces

    def _handle(self, piece: Forward | Cut | Boundary) -> None:
        if isinstance(piece, Forward):
            if piece.data:
                self._begin()
                self._pass_on(piece.data)
                self.stats.bytes_forwarded += len(piece.data)
        elif isinstance(piece, Cut):
            self._block_then_feed(piece.receipt, self._receipt(piece.receipt), cut=piece.cut)
            self.stats.bytes_forwarded += len(piece.cut)
            self._end()
        elif isinstance(piece, Boundary):
            self._block_then_feed(piece.receipt, self._receipt(piece.receipt))
            self._end()

    def _pass_on(self, data: bytes) -> None:
        """Forward ``data`` now, all but a trailing paper feed (blank lines, ``ESC d``)."""
        data = self._feed + data
        keep = feed_tail(data)
        self._feed = data[len(data) - keep :] if keep else b""
        if len(data) > keep:
            self.printer.forward(data[: len(data) - keep])

    def _release_feed(self) -> None:
        feed, self._feed = self._feed, b""
        if feed:
            self.printer.forward(feed)

    def _block_then_feed(self, receipt: bytes, block: bytes, *, cut: bytes = b"") -> None:
        """Our block under the POS's last printed line, then the POS's feed (and its cut).

        The feed was held on a guess made chunk by chunk; it goes after the block only if
        the whole receipt, read from its start, agrees that those bytes only feed paper (a
        chunk may begin inside an image's data).
        """
        feed, self._feed = self._feed, b""
        if not block:
            self.printer.forward(feed + cut)
        elif feed and feed_tail(receipt) >= len(feed):
            self.printer.forward(block + feed + cut)  # the POS's feed takes ours past the cutter
        else:
            # The cutter sits above the print head: feed our block past it before the cut.
            self.printer.forward(feed + block + (FEED_BEFORE_CUT if cut else b"") + cut)

    def _begin(self) -> None:
        if not self._open:
            self._open = True
            self.printer.begin_receipt()

    def _end(self) -> None:
        if self._open:
            self._open = False
            self.printer.end_receipt()

    # ------------------------------------------------------------ one receipt

    def _receipt(self, raw: bytes, *, read: ReadReceipt | None = None) -> bytes:
        """Read, price and confirm one captured receipt; the block to print before its cut.

        ``read``: what the template already read off ``raw``, if the caller has it.
        Never raises: a receipt that cannot be handled is forwarded as it was (its cut too).
        """
        self.stats.receipts += 1
        self._follow_table(raw)
        try:
            block = self._loyalty_block(raw, read)
        except Exception as exc:
            logger.exception("intercepted receipt not handled")
            return self._problem("failed", f"internal error: {type(exc).__name__}: {exc}", raw)
        if block and self._pos_table is not None:
            # Our block selected its own code page: give the POS back the one it chose, or
            # its next receipt (if it does not select one again) prints in ours.
            block += b"\x1bt" + bytes([self._pos_table])
        return block

    def _follow_table(self, raw: bytes) -> None:
        for token in iter_tokens(raw):
            if token.kind != "command":
                continue
            if token.name == "ESC @":
                self._pos_table = None
            elif token.name == "ESC t" and len(token.raw) >= 3:
                self._pos_table = token.raw[2]

    def _loyalty_block(self, raw: bytes, read: ReadReceipt | None) -> bytes:
        if read is None:
            read, problem = self._read(raw)
            if not read.ok:
                return self._problem("unreadable", problem, raw)
        receipt_id = receipt_id_for(read, raw)
        try:
            calc = self.service.calculate(_request(receipt_id, read), money_off=False)
            confirmed = self.service.confirm(
                receipt_id, paid=calc["total"], fiscal_id=read.number, print_items=False
            )
        except errors.TillgateError as exc:
            return self._problem("failed", str(exc), raw, receipt_id=receipt_id)
        self.stats.confirmed += 1
        self.stats.last_receipt = receipt_id
        items: list[Any] = []
        no_points = _no_points(read, calc)
        summary = summary_from_confirm(confirmed, no_points=no_points)
        if summary is not None:
            items.append(summary)
        items.extend(confirmed.get("printed") or [])
        if summary is None:
            # No card on this receipt: print the prompts the engine has for card-less
            # customers ("ask for a card next time").
            items.extend(
                {"kind": "message", "title": None, "text": h["text"]}
                for h in calc.get("hints", [])
                if h.get("kind") == "ask_card"
            )
        self.on_event(
            DeviceEvent(
                device="intercept",
                kind="receipt_captured",
                data={
                    "receipt_id": receipt_id,
                    "ok": True,
                    "lines": len(read.lines),
                    "total": str(read.total),
                    "card": (confirmed.get("card") or {}).get("number"),
                    "accrued": (confirmed.get("accrued") or {}).get("points", 0),
                    "no_points": list(no_points),
                },
            )
        )
        if not items:
            return b""
        try:
            return render_block(
                items,
                profile=self.style.profile,
                codepage=self.style.codepage,
                columns=self.style.columns,
                language=self.style.language,
            )
        except Exception as exc:  # never lose the POS's receipt over our own block
            logger.exception("could not render the block for receipt %s", receipt_id)
            self.stats.last_problem = f"block not printed: {exc}"
            return b""

    def _problem(
        self, kind: str, reason: str, raw: bytes, *, receipt_id: str | None = None
    ) -> bytes:
        reason = mask_in_text(reason)
        if kind == "unreadable":
            self.stats.unreadable += 1
        else:
            self.stats.failed += 1
        self.stats.last_problem = reason
        logger.warning("intercepted receipt %s forwarded untouched: %s", receipt_id or "?", reason)
        self.on_event(
            DeviceEvent(
                device="intercept",
                kind="receipt_captured",
                data={"ok": False, "receipt_id": receipt_id, "problem": reason, "bytes": len(raw)},
            )
        )
        return b""


def feed_tail(data: bytes) -> int:
    """How many bytes at the end of ``data`` only feed paper after its last printed line.

    The control that ends that line (its ``LF``, or an ``ESC d`` that prints it) is not
    counted: it prints the line. Nothing is counted when the data ends inside a command.
    """
    tokens = list(iter_tokens(data))
    first = len(tokens)  # where the trailing run of feeds and blanks begins
    while first and _only_feeds(tokens[first - 1]):
        first -= 1
    if first == 0:
        return len(data)  # nothing printed at all: all of it is feed
    ender = next((k for k in range(first, len(tokens)) if tokens[k].name in _ENDS_LINE), None)
    if ender is None:
        return 0  # the last line is not ended yet: what follows must not come before
    return sum(len(t.raw) for t in tokens[ender + 1 :])


def _only_feeds(token: Token) -> bool:
    if token.kind == "text":
        return not token.raw.strip(b" ")
    return token.kind in ("control", "command") and token.name in _FEEDS


def _no_points(read: ReadReceipt, calc: dict[str, Any]) -> tuple[str, ...]:
    """The printed names of the lines the program left out (``eligible`` false), with the
    category that excluded them when it is known: "Сигареты (tobacco)"."""
    out: list[str] = []
    for line in calc.get("lines", []):
        index = line.get("index")
        if line.get("eligible", True) or not isinstance(index, int):
            continue
        name = read.lines[index].name if index < len(read.lines) else str(line.get("sku", ""))
        category = line.get("category")
        out.append(f"{name} ({category})" if category else name)
    return tuple(out)


def receipt_id_for(read: ReadReceipt, raw: bytes) -> str:
    """A stable receipt id: the printed number plus a digest of the receipt's bytes.

    The same receipt printed twice (a copy) gets the same id, so it is confirmed once;
    two receipts that share a number (a new shift) do not.
    """
    digest = hashlib.sha256(raw).hexdigest()[:12]
    number = read.number or "x"
    return f"pos-{number[-20:]}-{digest}"


def _request(receipt_id: str, read: ReadReceipt) -> SaleRequest:
    lines: list[dict[str, Any]] = []
    for ln in read.lines:
        # No sku captured: the upper-cased name stands in for one (it names the line in the
        # receipt's facts), and calculate matches the line to a product by its name alone.
        line: dict[str, Any] = {
            "sku": ln.sku or ln.name.upper()[:64],
            "name": ln.name,
            "sku_known": ln.sku is not None,
            "name_cut": ln.may_be_cut(read.width),
        }
        if (ln.price * ln.qty).quantize(Decimal("0.01")) == ln.amount:
            line |= {"qty": str(ln.qty), "price": str(ln.price)}
        else:
            # A line the POS discounted (or rounded) itself: priced at what was paid for it,
            # as one unit, so points are earned on the money actually taken.
            line |= {"qty": "1", "price": str(ln.amount), "weighed": True}
        lines.append(line)
    # The same checks as a POS API request: a receipt read off paper is no more trusted.
    return sale_request(receipt_id, lines)
