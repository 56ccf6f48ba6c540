"""The till's devices, wired to the service: printer, card reader, scanner, interception.

:class:`DeviceManager` is the one place ``tillgate run`` touches ``drivers/``. Every device
reports on one callback (:meth:`DeviceManager.handle`), from its own thread:

- ``card_presented`` (a swipe, a scanned card, an app QR, a phone number) starts the till's
  card session through :meth:`TillService.present` — the next calculate and the next
  intercepted receipt use that card — and the panel gets the customer's greeting hints;
- ``barcode_scanned``, ``read_rejected``, ``receipt_captured`` and ``status_changed`` are
  published as ``device`` events on the ``/v1/events`` stream;
- the printer's status becomes a cashier hint on every calculate while it is not ready.

The manager is the service's print queue (:meth:`DeviceManager.submit`: confirmed
receipts' coupons and prompts are queued on the printer; printing never blocks a sale) and
its source of device hints (:meth:`DeviceManager.hints`); the daemon hands it to the
service when it makes it, and hands the service to :meth:`DeviceManager.start`. With
interception on, the POS's side of the pass-through is one more byte port: its bytes go
through the
:class:`~tillgate.agent.intercept.Interceptor` to the printer, and the printer's replies go
back to it.

Card data in events and logs is masked here, before it leaves the device layer.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tillgate.core import errors
from tillgate.core.cards import mask_in_text
from tillgate.core.templates import load_template
from tillgate.drivers.base import UNREMARKABLE, DeviceEvent
from tillgate.drivers.inputs import InputDevice
from tillgate.drivers.printer import Printer
from tillgate.drivers.runner import DeviceRunner

from .intercept import BlockStyle, Interceptor

if TYPE_CHECKING:
    from tillgate.agent.usecases import TillService
    from tillgate.core.config import Config, PrinterSection

logger = logging.getLogger(__name__)


class DeviceManager:
    """Opens the configured devices, turns their events into sessions, hints and events."""

    def __init__(self, config: Config) -> None:
        """Make the configured devices (nothing is opened until :meth:`start`)."""
        self._service: TillService | None = None
        devices = config.devices
        language = config.till.language
        # Coupons queued while the printer is away survive a restart of the agent.
        spool = Path(config.till.data_dir) / "print-spool"
        self.printer = Printer.from_config(
            devices.printer, language=language, on_event=self.handle, spool=spool
        )
        self.inputs = {
            "card_reader": InputDevice.from_config(
                "card_reader", devices.card_reader, self.handle, number_pattern=self._number_pattern
            ),
            "scanner": InputDevice.from_config(
                "scanner", devices.scanner, self.handle, number_pattern=self._number_pattern
            ),
        }
        self.interceptor: Interceptor | None = None
        self._pos: DeviceRunner | None = None
        self._intercept_printer: Printer | None = None
        self._intercept_target: Printer | None = None
        self._config = config
        intercept = config.intercept
        if intercept.enabled:
            target = self.printer
            if intercept.printer_side != "printer":
                target = Printer.from_config(
                    _other_printer(devices.printer, intercept.printer_side),
                    language=language,
                    on_event=self.handle,
                    name="intercept-printer",
                    spool=spool.with_name("print-spool-intercept"),
                )
                self._intercept_printer = target
            self._intercept_target = target
            from tillgate.drivers.ports import open_port

            pos_address = intercept.address
            self._pos = DeviceRunner(
                "intercept",
                lambda: open_port(pos_address),
                on_data=self._pos_data,
                on_event=self.handle,
            )
            # Status answers to the POS's own DLE EOT queries go back to the POS.
            target.on_reply = self._reply

    # ------------------------------------------------------------ life cycle

    def start(self, service: TillService) -> None:
        """Open every configured device (each on its own thread); their events go to
        ``service`` (card sessions, interception, the event stream) until :meth:`stop`."""
        self._service = service
        if self._intercept_target is not None:
            intercept, devices = self._config.intercept, self._config.devices
            self.interceptor = Interceptor(
                service=service,
                printer=self._intercept_target,
                template=load_template(intercept.template, intercept.templates),
                style=BlockStyle(
                    profile=devices.printer.profile,
                    codepage=devices.printer.codepage,
                    columns=devices.printer.columns,
                    language=self._config.till.language,
                ),
                on_event=self.handle,
                codepages=intercept.codepages,
                idle_seconds=intercept.idle_seconds,
            )
        self.printer.start()
        if self._intercept_printer is not None:
            self._intercept_printer.start()
        for device in self.inputs.values():
            device.start()
        if self._pos is not None:
            self._pos.start()
        states = ", ".join(f"{name} {state['status']}" for name, state in self.status().items())
        logger.info("devices: %s", states)

    def stop(self, timeout: float = 3.0) -> None:
        """Close every device; what is still queued for the printer stays in its spool."""
        self._service = None
        if self._pos is not None:
            self._pos.stop(timeout)
        for device in self.inputs.values():
            device.stop(timeout)
        if self._intercept_printer is not None:
            self._intercept_printer.stop(timeout)
        self.printer.stop(timeout)

    # ------------------------------------------------------------ status

    def status(self) -> dict[str, dict[str, Any]]:
        """The ``devices`` section of ``/v1/status``."""
        out: dict[str, dict[str, Any]] = {"printer": self.printer.snapshot()}
        for role, device in self.inputs.items():
            out[role] = {"status": device.status.value, "error": device.error}
        if self._pos is None or self.interceptor is None:
            out["intercept"] = {"status": "disabled"}
        else:
            stats = self.interceptor.stats
            out["intercept"] = {
                "status": self._pos.status.value,
                "error": self._pos.error,
                "receipts": stats.receipts,
                "confirmed": stats.confirmed,
                "unreadable": stats.unreadable,
                "failed": stats.failed,
                "bytes_forwarded": stats.bytes_forwarded,
                "last_receipt": stats.last_receipt,
                "last_problem": stats.last_problem,
            }
            if self._intercept_printer is not None:
                out["intercept"]["printer"] = self._intercept_printer.snapshot()
        return out

    def hints(self) -> list[dict[str, Any]]:
        """Cashier hints about devices, added to every calculate: "printer out of paper"."""
        out = []
        for printer in (self.printer, self._intercept_printer):
            if printer is not None and printer.status not in UNREMARKABLE and printer.message:
                out.append({"kind": "device", "text": printer.message, "promotion": None})
        return out

    # ------------------------------------------------------------ events

    def handle(self, event: DeviceEvent) -> None:
        """Every device's events, from the devices' threads. Never raises."""
        try:
            self._handle(event)
        except Exception:
            logger.exception("device event %s from %s not handled", event.kind, event.device)

    def _handle(self, event: DeviceEvent) -> None:
        service = self._service
        if service is None:  # stopped (or not started yet): nobody to tell
            return
        data = dict(event.data)
        if event.kind == "card_presented":
            raw = str(data.pop("raw", ""))
            data["card"] = mask_in_text(raw)
            data["card_kind"] = data.pop("kind", None)  # number | phone | qr
            try:
                presented = service.present(raw, source=event.device)
            except errors.TillgateError as exc:
                # An unknown or blocked card: the cashier is told, and no session starts.
                data["problem"] = mask_in_text(str(exc))
                logger.info("%s: card %s not accepted: %s", event.device, data["card"], exc)
                service.events.publish(
                    "hints",
                    {
                        "receipt_id": None,
                        "card": None,
                        "hints": [{"kind": "warning", "text": data["problem"], "promotion": None}],
                    },
                )
            else:
                data["card"] = presented["card"] or data["card"]
        elif event.kind == "barcode_scanned":
            data["code"] = mask_in_text(str(data.get("code", "")))
        service.events.publish("device", {"device": event.device, "event": event.kind, **data})

    def submit(self, receipt_id: str, items: Sequence[dict[str, Any]]) -> None:
        """The till's print queue: a confirmed receipt's coupons and prompts (never blocks)."""
        if self._service is None:
            logger.debug(
                "receipt %s: devices stopped, %d item(s) not printed", receipt_id, len(items)
            )
            return
        result = self.printer.print_items(list(items), kind="coupons", receipt_id=receipt_id)
        logger.debug("receipt %s: %d item(s) to print: %s", receipt_id, len(items), result)

    # ------------------------------------------------------------ interception

    def _pos_data(self, data: bytes) -> None:
        interceptor = self.interceptor
        if interceptor is None:
            return
        if data:
            interceptor.feed(data)
        else:
            interceptor.idle()

    def _reply(self, data: bytes) -> None:
        pos = self._pos
        if pos is None:
            return
        try:
            pos.write(data, timeout=1.0)
        except errors.DeviceError as exc:
            logger.warning("printer reply of %d byte(s) not passed to the POS: %s", len(data), exc)

    def _number_pattern(self) -> str:
        service = self._service
        if service is None:
            return ""
        try:
            return service.catalog().program.card_number_pattern
        except errors.TillgateError:  # a chain till before its first sync has no program yet
            return ""


def _other_printer(section: PrinterSection, url: str) -> PrinterSection:
    """``[devices.printer]`` with another port: interception forwarding to its own printer."""
    from tillgate.core.config import PrinterSection

    try:
        return PrinterSection.model_validate({**section.model_dump(), "url": url})
    except ValueError as exc:
        raise errors.ConfigError(f"intercept.printer_side: {exc}") from exc
