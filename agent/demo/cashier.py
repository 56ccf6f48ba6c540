"""The demo's cashier: rings up sales at the virtual POS and presents the customers' cards.

A sale goes through the POS API (calculate, then confirm or cancel; refunds) or, as a POS
without any integration does it, through the agent on the POS's printer line (interception).
Cards are swiped on the virtual reader, scanned on the virtual scanner, or typed in. After
each move the cashier waits for the agent's event that says it happened, saves every receipt
printed (by the POS and by the agent) and counts it in the tally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tillgate.core.cards import mask

from . import pos as shop
from .children import DemoError
from .report import ReceiptFiles, Tally
from .till import FarEnd, PrinterFile
from .watch import EventWatcher


@dataclass(frozen=True, kw_only=True)
class Sale:
    """One receipt as the POS saw it."""

    receipt_id: str
    number: int
    event: dict[str, Any]  # the agent's confirmed (or cancelled) receipt event
    calculated: dict[str, Any]  # the calculate response (POS API) or event (intercepted)


class Cashier:
    """The cashier at the virtual POS, with the till's virtual devices at hand.

    ``pos_line``, ``reader`` and ``scanner`` are the far ends of the agent's ``pty:`` ports,
    or None where the system has none: cards then go through the POS API, and receipts the
    POS would print through the agent are rung up through the API too.
    """

    def __init__(
        self,
        *,
        http: httpx.Client,
        watcher: EventWatcher,
        printer: PrinterFile,
        files: ReceiptFiles,
        tally: Tally,
        say: Callable[[str], None],
        agent_log: Path,
        cards: Iterable[str],
        pos_line: FarEnd | None,
        reader: FarEnd | None,
        scanner: FarEnd | None,
    ) -> None:
        self.http = http
        self.watcher = watcher
        self.printer = printer
        self.files = files
        self.tally = tally
        self.say = say
        self.agent_log = agent_log
        # The cards in play: an answer names a card masked, these tell which one it is.
        self.cards = tuple(cards)
        self.pos_line = pos_line
        self.reader = reader
        self.scanner = scanner
        self.number = 1000  # the POS's receipt numbers
        self.cards_used: set[str] = set()  # to compare with head office at the end

    def swipe(self, number: str) -> None:
        """Swipe a card on the virtual reader (track 2, as a serial reader sends it)."""
        self._present(self.reader, f";{number}=2912101?\r", card=number, source="card_reader")

    def scan(self, code: str, *, card: str) -> None:
        """Scan a card's barcode or the app's QR code on the virtual scanner."""
        self._present(self.scanner, f"{code}\r", card=card, source="scanner")

    def _present(self, device: FarEnd | None, data: str, *, card: str, source: str) -> None:
        """Send ``data`` from the device and wait until the agent has the card in session.

        With no virtual device (no ptys here), the card is presented through the POS API.
        """
        self.cards_used.add(card)
        if device is None:
            self._post("/v1/session/card", {"card": data.strip(), "source": source})
            return
        mark = self.watcher.mark
        device.write(data.encode())
        self._await_presented(mark, card)

    def _await_presented(self, mark: int, number: str) -> None:
        masked = mask(number)
        found = self.watcher.wait_for(
            lambda kind, data: (
                kind == "device"
                and data.get("event") == "card_presented"
                and data.get("card") == masked
            ),
            after=mark,
            timeout=10,
        )
        if found is None:
            raise DemoError(f"the agent did not see card {masked} presented")
        if found.get("problem"):
            raise DemoError(f"card {masked} was not accepted: {found['problem']}")

    def _post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.http.post(path, json=body or {})
        if reply.status_code != 200:
            raise DemoError(f"POST {path}: {reply.status_code} {reply.text[:300]}")
        data: dict[str, Any] = reply.json()
        return data

    def sell_api(
        self,
        items: tuple[shop.Item, ...],
        *,
        label: str,
        card: str | None = None,
        coupons: tuple[str, ...] = (),
        redeem: int | str = 0,
        cancel: bool = False,
    ) -> Sale:
        """A sale through the POS API: calculate, then confirm (or cancel), then the receipt."""
        self.number += 1
        receipt_id = f"R-{self.number}"
        mark = self.watcher.mark
        body: dict[str, Any] = {
            "receipt_id": receipt_id,
            "cashier": "Ольга",
            "lines": shop.api_lines(items),
            "coupons": list(coupons),
            "redeem": redeem,
        }
        if card is not None:
            body["card"] = card
        calc = self._post("/v1/receipts/calculate", body)
        if calc["card"]:
            self.cards_used.update(n for n in self.cards if mask(n) == calc["card"]["number"])
        hints = "; ".join(h["text"] for h in calc["hints"][:3])
        if cancel:
            self._post(f"/v1/receipts/{receipt_id}/cancel")
            self.tally.cancelled += 1
            self.say(f"{label}: calculated {calc['total']} ₽, then cancelled — hints: {hints}")
            return Sale(receipt_id=receipt_id, number=self.number, event={}, calculated=calc)
        self._post(f"/v1/receipts/{receipt_id}/confirm", {"paid": calc["total"]})
        event = self._await_receipt(mark, lambda rid: rid == receipt_id, "confirmed")
        self.tally.sale(
            event | {"total": calc["total"], "discount": calc["discount"]}, intercepted=False
        )
        self.tally.coupons_redeemed += len(calc["coupons"]["applied"])
        loyalty = None
        if calc["card"] is not None or calc["discount"] != "0.00":
            loyalty = shop.Loyalty(
                card=calc["card"]["number"] if calc["card"] else None,
                line_discounts=tuple(Decimal(ln["discount"]) for ln in calc["lines"]),
                redeemed_points=calc["redeemed"]["points"],
                redeemed_amount=Decimal(calc["redeemed"]["amount"]),
                accrued_points=event["accrued"]["points"],
                balance=(event.get("card") or {}).get("balance"),
                promotions=tuple(p["name"] for p in calc["promotions"]),
            )
        data = shop.receipt_bytes(
            number=self.number, items=items, at=datetime.now(), cashier="Ольга", loyalty=loyalty
        )
        self._save(data, f"pos-api-{self.number}")
        self._agent_prints(event, receipt=self.number)
        self.say(
            f"{label}: POS API receipt {self.number}, {calc['total']} ₽ "
            f"(discount {calc['discount']}), +{event['accrued']['points']} / "
            f"−{event['redeemed']['points']} points — hints: {hints}"
        )
        return Sale(receipt_id=receipt_id, number=self.number, event=event, calculated=calc)

    def sell_intercepted(self, items: tuple[shop.Item, ...], *, label: str) -> Sale:
        """A receipt the POS prints through the agent, which reads it on its way."""
        if self.pos_line is None:
            return self.sell_api(items, label=label + " (POS API: no interception here)")
        self.number += 1
        number = self.number
        data = shop.receipt_bytes(number=number, items=items, at=datetime.now(), cashier="Ольга")
        mark = self.watcher.mark
        # As a serial line delivers it: in small pieces.
        self.pos_line.write(data, chunk=256, pause=0.001)
        cut_at = data.rindex(b"\x1dV")
        event = self._await_receipt(mark, lambda rid: rid.startswith(f"pos-{number}-"), "confirmed")
        captured = self.watcher.wait_for(
            lambda kind, d: (
                kind == "device"
                and d.get("event") == "receipt_captured"
                and d.get("receipt_id") == event["receipt_id"]
            ),
            after=mark,
            timeout=5,
        )
        slips = self.printer.take(ends_with=data[cut_at:])
        for slip in slips:
            self._save(slip, f"pos-intercepted-{number}")
        self.pos_line.drain()
        # The POS priced it: the agent took no money off, so it pays what it printed.
        self.tally.sale(event, intercepted=True)
        self._count_printed(event)
        printed = ", ".join(p.get("title") or p.get("kind", "") for p in event.get("printed", []))
        # Lines the program leaves out (tobacco, alcohol) earn nothing: say which.
        no_points = ", ".join((captured or {}).get("no_points") or [])
        self.say(
            f"{label}: intercepted receipt {number}, {event.get('total')} ₽, "
            f"+{event['accrued']['points']} points"
            + (f" (no points: {no_points})" if no_points else "")
            + (f", printed under it: {printed}" if printed else "")
        )
        return Sale(receipt_id=event["receipt_id"], number=number, event=event, calculated=event)

    def refund(self, sale: Sale, *, lines: list[dict[str, Any]], label: str) -> dict[str, Any]:
        self.number += 1
        reply = self._post(
            f"/v1/receipts/{sale.receipt_id}/refund",
            {"refund_id": f"RF-{self.number}", "lines": lines},
        )
        self.tally.refund(reply)
        sold = sale.calculated["lines"]
        returned = tuple(
            shop.Item(product=shop.CATALOGUE[sold[ln["index"]]["sku"]], qty=Decimal(str(ln["qty"])))
            for ln in lines
        )
        # Each returned item's share of the discount its line had on the sale.
        shares = tuple(
            (
                Decimal(sold[ln["index"]]["discount"])
                * Decimal(str(ln["qty"]))
                / Decimal(sold[ln["index"]]["qty"])
            ).quantize(shop.KOP)
            for ln in lines
        )
        data = shop.receipt_bytes(
            number=self.number,
            items=returned,
            at=datetime.now(),
            cashier="Ольга",
            refund=shop.Refund(
                of=sale.number,
                amount=Decimal(reply["amount_returned"]),
                points_returned=int(reply["points_returned"]),
                points_reversed=int(reply["points_reversed"]),
                line_discounts=shares,
                card=(reply.get("card") or {}).get("number"),
            ),
        )
        self._save(data, f"pos-refund-{self.number}")
        self.say(
            f"{label}: refund of receipt {sale.number}: {reply['amount_returned']} ₽ back, "
            f"{reply['points_reversed']} points taken back, {reply['points_returned']} returned"
        )
        return reply

    def _await_receipt(
        self, mark: int, match: Callable[[str], bool], status: str
    ) -> dict[str, Any]:
        found = self.watcher.wait_for(
            lambda kind, data: (
                kind == "receipt"
                and data.get("status") == status
                and match(str(data.get("receipt_id", "")))
            ),
            after=mark,
            timeout=15,
        )
        if found is None:
            raise DemoError(
                f"the agent did not report the receipt {status} in 15 s; see {self.agent_log}"
            )
        return found

    def _agent_prints(self, event: dict[str, Any], *, receipt: int) -> None:
        """The coupons and messages the agent printed for a POS-API receipt, saved."""
        if not event.get("printed"):
            return
        self._count_printed(event)
        for slip in self.printer.take():
            self._save(slip, f"agent-print-{receipt}")

    def _count_printed(self, event: dict[str, Any]) -> None:
        for item in event.get("printed", []):
            if item.get("kind") == "coupon":
                self.tally.coupons_printed += 1
            else:
                self.tally.messages_printed += 1

    def _save(self, data: bytes, label: str) -> None:
        self.files.save(data, label)
        self.tally.slips += 1
