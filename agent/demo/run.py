"""``tillgate demo``: head office, a till and its POS, all on this machine, with no hardware.

What happens, in order (each step is a real process or a real port, nothing simulated
inside the agent):

1. ``tillgate hq serve`` on a temporary SQLite file; ``tillgate hq push`` publishes
   ``program.example.toml``, ``tillgate hq cards import`` loads ``cards.example.csv``, and
   ``tillgate hq enroll-code`` + ``tillgate enroll`` enrol the till.
2. ``tillgate run`` with virtual devices: a ``file://`` receipt printer, ``pty:`` ports
   for the card reader, the scanner and the POS's printer line (interception on).
3. A virtual POS rings up receipts: through the POS API (calculate, confirm, cancel,
   refund) and by printing ESC/POS receipts through the agent; cards are swiped on the
   reader, scanned on the scanner, typed as phone numbers. A coupon printed on one visit
   is redeemed on a later one; a coupon issued at head office is redeemed too.
4. Head office goes away for a while: the till sells offline (points spending is capped),
   then syncs everything when head office is back; balances at HQ and at the till are
   compared card by card.
5. Every receipt printed (by the POS and by the agent) is saved as bytes, text and PNG, and
   a summary is printed and saved.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import tempfile
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tillgate.core.cards import mask
from tillgate.core.errors import ConfigError

from ..examples import example_file
from . import pos as shop
from .children import Child, DemoError, free_port, run_verb
from .report import ReceiptFiles, SyncState, Tally, write_summary
from .till import HAVE_PTY, FarEnd, PrinterFile, wait_until
from .watch import EventWatcher

MARKER = ".tillgate-demo"  # an --out folder with this file was made by the demo
STORY_RECEIPTS = 9  # receipts the story below rings up; --receipts adds random ones
STORE, TILL = "store-01", "till-1"
OFFLINE_AFTER = 3  # seconds without a completed sync before the till counts as offline

# Cards of cards.example.csv, and one new plastic card the till registers on first use.
ANNA, BORIS, VERA = "2900000012345", "2900000023456", "2900000034567"
DARIA, EVGENY, NEW_CARD = "2900000056789", "2900000067890", "2900000099996"
VERA_PHONE = "8 (926) 555-44-33"
ACTIVE = (ANNA, BORIS, VERA, DARIA, EVGENY)


@dataclass(frozen=True, kw_only=True)
class Options:
    out: Path
    receipts: int = 12
    serve: bool = False
    port: int = 0


@dataclass(frozen=True, kw_only=True)
class Sale:
    """One receipt as the POS saw it."""

    receipt_id: str
    number: int
    event: dict[str, Any]  # the agent's confirmed (or cancelled) receipt event
    calculated: dict[str, Any]  # the calculate response (POS API) or event (intercepted)


class Demo:
    """One run of the demo; :meth:`run` returns the exit status."""

    def __init__(self, options: Options, *, echo: Callable[[str], None] = print) -> None:
        self.options = options
        self.echo = echo
        self.started = time.monotonic()
        self.tally = Tally()
        self.rng = random.Random(1043)
        self.number = 1000  # the POS's receipt numbers
        self.cards_used: set[str] = set()
        self.children: list[Child] = []
        self.out = options.out
        self.logs = self.out / "logs"
        self.files = ReceiptFiles(self.out / "receipts")
        self._stack = contextlib.ExitStack()
        self.hq: Child
        self.agent: Child
        self.http: httpx.Client
        self.watcher: EventWatcher
        self.printer: PrinterFile
        self.pos_line: FarEnd | None = None
        self.reader: FarEnd | None = None
        self.scanner: FarEnd | None = None
        self.offline_seconds = 0.0

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        work = Path(tempfile.mkdtemp(prefix="tillgate-demo-"))
        try:
            with self._stack:
                self._start(work)
                self._story()
                self._finish()
                if self.options.serve:
                    self._serve()
        finally:
            self._stop_children()
            shutil.rmtree(work, ignore_errors=True)
        return 0

    def say(self, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:5.1f} s] {text}")

    # ------------------------------------------------------------ set-up

    def _start(self, work: Path) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        hq_dir, till_dir = work / "hq", work / "till"
        hq_dir.mkdir()
        till_dir.mkdir()

        hq_port = free_port()
        self.hq_url = f"http://127.0.0.1:{hq_port}"
        self.hq = Child(
            name="head office",
            args=["hq", "serve", "--data-dir", str(hq_dir), "--port", str(hq_port)],
            cwd=hq_dir,
            log=self.logs / "hq.log",
        )
        self.children.append(self.hq)
        self.hq.start(ready_url=f"{self.hq_url}/healthz")
        self.say(f"head office up at {self.hq_url} (SQLite {hq_dir / 'hq.sqlite3'})")

        token = (hq_dir / "hq-admin.token").read_text(encoding="utf-8").strip()
        self.admin_env = {"TILLGATE_HQ_TOKEN": token}
        admin_log = self.logs / "admin.log"
        program, cards = example_file("program.example.toml"), example_file("cards.example.csv")
        for verb in (["push", str(program)], ["cards", "import", str(cards)]):
            said = self._hq_verb(verb, log=admin_log)
            self.say(f"tillgate hq {' '.join(verb[:-1])} {Path(verb[-1]).name}: {said}")
        code = self._hq_verb(
            ["enroll-code", "--store", STORE, "--till", TILL], log=admin_log, last_line=True
        )

        config = self._write_config(till_dir, port=self.options.port or free_port())
        said = run_verb(
            ["enroll", code, "--config", str(config)], cwd=till_dir, log=self.logs / "enroll.log"
        )
        self.say(f"tillgate enroll: {said.strip()}")

        self.agent_url = f"http://127.0.0.1:{self.port}"
        self.agent = Child(
            name="agent",
            args=["run", "--config", str(config), "--port", str(self.port)],
            cwd=till_dir,
            log=self.logs / "agent.log",
        )
        self.children.append(self.agent)
        self.agent.start(ready_url=f"{self.agent_url}/healthz")
        self.http = self._stack.enter_context(httpx.Client(base_url=self.agent_url, timeout=30))
        status = wait_until(
            lambda: (s := self.status())["promotions_version"] and s,
            timeout=30,
            what="the till's first sync to bring the program",
        )
        self.say(
            f"agent up at {self.agent_url} — hint panel at {self.agent_url}/ — program "
            f"version {status['promotions_version']} synced from head office"
        )
        self.watcher = EventWatcher(self.agent_url)
        self.watcher.start()
        self._stack.callback(self.watcher.stop)
        self.printer = PrinterFile(till_dir / "printer.bin")
        if HAVE_PTY:
            self.pos_line = self._far_end(till_dir / "pos-printer", "POS printer line")
            self.reader = self._far_end(till_dir / "card-reader", "card reader")
            self.scanner = self._far_end(till_dir / "scanner", "scanner")
            devices = status["devices"]
            names = {
                "printer": "printer",
                "card_reader": "card reader",
                "scanner": "scanner",
                "intercept": "interception",
            }
            self.say(
                "virtual devices: "
                + ", ".join(f"{n} {devices[k]['status']}" for k, n in names.items())
            )
        else:
            self.tally.notes.append(
                "no pty ports on this system: interception, card reader and scanner skipped"
            )

    def _write_config(self, till_dir: Path, *, port: int) -> Path:
        self.port = port
        pty = HAVE_PTY
        config = till_dir / "config.toml"
        config.write_text(
            f"""# Written by tillgate demo.
[till]
id = "{TILL}"
store = "{STORE}"
data_dir = "data"
language = "ru"
card_session_seconds = 120

[pos_api]
host = "127.0.0.1"
port = {port}

[hq]
url = "{self.hq_url}"
credential_file = "data/credential.json"

[sync]
interval_seconds = 1
offline_after_seconds = {OFFLINE_AFTER}

[devices.printer]
url = "file://{(till_dir / "printer.bin").as_posix()}"
profile = "TM-T88V"
codepage = "cp866"
columns = 42

[devices.card_reader]
url = "{"pty:" + (till_dir / "card-reader").as_posix() if pty else "none"}"

[devices.scanner]
url = "{"pty:" + (till_dir / "scanner").as_posix() if pty else "none"}"

[intercept]
enabled = {"true" if pty else "false"}
pos_side = "{"pty:" + (till_dir / "pos-printer").as_posix() if pty else "none"}"
printer_side = "printer"

[logging]
level = "INFO"
""",
            encoding="utf-8",
        )
        return config

    def _far_end(self, link: Path, name: str) -> FarEnd:
        end = FarEnd(link, name=name)
        self._stack.callback(end.close)
        return end

    def _hq_verb(self, args: list[str], *, log: Path, last_line: bool = False) -> str:
        out = run_verb(
            ["hq", *args, "--hq", self.hq_url], cwd=self.out, log=log, env=self.admin_env
        ).strip()
        return out.splitlines()[-1] if last_line else out

    def _stop_children(self) -> None:
        for child in reversed(self.children):
            code = child.stop()
            if code not in (None, 0):
                self.echo(f"warning: {child.name} exited with {code}; see {child.log}")

    # ------------------------------------------------------------ the POS's moves

    def status(self) -> dict[str, Any]:
        reply = self.http.get("/v1/status")
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()
        return data

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
            self.cards_used.update(
                n for n in (*ACTIVE, NEW_CARD) if mask(n) == calc["card"]["number"]
            )
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
        slips = self.printer.take(ends_with=data[cut_at:])
        for slip in slips:
            self._save(slip, f"pos-intercepted-{number}")
        self.pos_line.drain()
        # The POS priced it: the agent took no money off, so it pays what it printed.
        self.tally.sale(event, intercepted=True)
        self._count_printed(event)
        printed = ", ".join(p.get("title") or p.get("kind", "") for p in event.get("printed", []))
        self.say(
            f"{label}: intercepted receipt {number}, {event.get('total')} ₽, "
            f"+{event['accrued']['points']} points"
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
        returned = tuple(
            shop.Item(
                product=shop.CATALOGUE[sale.calculated["lines"][ln["index"]]["sku"]],
                qty=Decimal(str(ln["qty"])),
            )
            for ln in lines
        )
        data = shop.receipt_bytes(
            number=self.number,
            items=returned,
            at=datetime.now(),
            cashier="Ольга",
            refund_of=sale.number,
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
                f"the agent did not report the receipt {status} in 15 s; see {self.agent.log}"
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

    # ------------------------------------------------------------ the story

    def _story(self) -> None:
        b = shop.basket
        self.say("— the shop opens —")
        # 1. Анна scans her card; pastries over 500 ₽ earn a coffee coupon, printed by the agent.
        self.scan(ANNA, card=ANNA)
        first = self.sell_api(
            b(('Торт "Наполеон"', 1), ("Круассан с миндалём", 2), ("Молоко 3,2% 1 л", 2)),
            label="Анна, card scanned",
        )
        coupon = next(
            (p["code"] for p in first.event.get("printed", []) if p.get("kind") == "coupon"), None
        )
        if coupon is None:
            raise DemoError("the first visit should have printed a coffee coupon; it did not")
        # 2. Борис swipes his card; the POS prints its own receipt through the agent.
        self.swipe(BORIS)
        self.sell_intercepted(
            b(("Гречка 900 г", 2), ("Бананы, кг", "1.245"), ("Творог 5% 200 г", 1)),
            label="Борис, card swiped",
        )
        # 3. No card: the cashier is told to ask for one; dairy is near its discount.
        self.sell_api(b(("Кефир 1% 0,9 л", 1), ("Сыр Российский 300 г", 1)), label="no card")
        # 4. Вера gives her phone number; a big basket, half of it paid with points.
        big = self.sell_api(
            b(
                ("Кофе в зёрнах 1 кг", 1),
                ("Говядина вырезка, кг", "1.350"),
                ("Сыр Российский 300 г", 2),
                ("Вино красное сухое 0,75", 1),
                ("Бумажные полотенца", 2),
            ),
            card=VERA_PHONE,
            redeem="max",
            label="Вера, by phone",
        )
        self.cards_used.add(VERA)
        # 5. She brings the cheese back: points are returned and taken back in proportion.
        self.refund(big, lines=[{"index": 2, "qty": 1}], label="Вера")
        # 6. A new plastic card handed out at the till: registered on its first purchase.
        self.swipe(NEW_CARD)
        self.sell_intercepted(
            b(("Яблоки Гала, кг", "2.100"), ("Рис 900 г", 2), ("Средство для посуды", 1)),
            label="new card, swiped",
        )
        # 7. Дарья changes her mind at the till: the sale is cancelled before payment.
        self.sell_api(b(("Капучино 0,3 л", 2)), card=DARIA, label="Дарья", cancel=True)
        self.cards_used.add(DARIA)

        # Head office goes away; the till keeps selling, spending of points capped.
        self.say("— head office goes down —")
        went = time.monotonic()
        self.hq.stop()
        wait_until(
            lambda: self.status()["offline"],
            timeout=OFFLINE_AFTER + 10,
            what="the till to go offline",
        )
        self.say(f"till is OFFLINE after {time.monotonic() - went:.1f} s; it keeps selling")
        # 8. Анна comes back for coffee with her coupon and spends points (capped offline).
        self.swipe(ANNA)
        back = self.sell_api(
            b(("Кофе в зёрнах 1 кг", 1), ("Капучино 0,3 л", 1)),
            coupons=(coupon,),
            redeem="max",
            label="Анна, back with her coupon (offline)",
        )
        if coupon not in back.calculated["coupons"]["applied"]:
            raise DemoError(
                f"the coupon printed on receipt {first.number} was not honoured: "
                f"{back.calculated['coupons']['rejected']}"
            )
        # 9. Борис again, through interception, while offline.
        self.swipe(BORIS)
        self.sell_intercepted(
            b(("Хлеб бородинский", 1), ("Макароны 450 г", 3)), label="Борис (offline)"
        )
        self.say("— head office is back —")
        self.hq.start(ready_url=f"{self.hq_url}/healthz")
        wait_until(
            lambda: not (s := self.status())["offline"] and s["unsynced_entries"] == 0,
            timeout=30,
            what="the till to sync its offline sales",
        )
        self.offline_seconds = time.monotonic() - went
        self.say(f"till synced: back online after {self.offline_seconds:.1f} s, nothing waiting")

        # 10. A coupon from head office's mailing, redeemed by Евгений with the app's QR code.
        codes = self._hq_verb(
            ["coupons", "issue", "mailing-coupon-300", "--count", "1"],
            log=self.logs / "admin.log",
            last_line=True,
        )
        self.scan(f"TGC:{EVGENY}", card=EVGENY)
        mailing = self.sell_api(
            b(
                ("Вино красное сухое 0,75", 1),
                ("Сыр Российский 300 г", 2),
                ('Торт "Наполеон"', 1),
                ("Кофе в зёрнах 1 кг", 1),
                # Well over the coupon's 2000 ₽ whatever discounts the hour brings.
                ("Говядина вырезка, кг", "0.850"),
            ),
            coupons=(codes.strip(),),
            label="Евгений, app QR code + mailing coupon",
        )
        if not mailing.calculated["coupons"]["applied"]:
            raise DemoError(
                f"head office's coupon was not honoured: {mailing.calculated['coupons']}"
            )
        for k in range(self.options.receipts - STORY_RECEIPTS):
            self._random_visit(k)

    def _random_visit(self, k: int) -> None:
        items = shop.random_basket(self.rng)
        card = self.rng.choice((*ACTIVE, None))
        if k % 2 == 0 and self.pos_line is not None:
            if card is not None:
                self.swipe(card)
            self.sell_intercepted(items, label=f"visit {k + 1}")
        else:
            self.sell_api(items, card=card, label=f"visit {k + 1}")
            if card:
                self.cards_used.add(card)

    # ------------------------------------------------------------ the end

    def _finish(self) -> None:
        # The last receipts reach head office, then one more sync brings HQ's view back.
        synced = wait_until(
            lambda: (s := self.status())["unsynced_entries"] == 0 and s,
            timeout=30,
            what="the till to push its last receipts to head office",
        )
        wait_until(
            lambda: self.status()["last_sync"] != synced["last_sync"],
            timeout=30,
            what="one more sync with head office",
        )
        state = self.status()
        checked, agreeing = self._compare_balances()
        sync = SyncState(
            offline=bool(state["offline"]),
            last_sync=state.get("last_sync"),
            unsynced_entries=int(state["unsynced_entries"]),
            cards_checked=checked,
            cards_agreeing=agreeing,
            offline_seconds=round(self.offline_seconds, 1),
        )
        text = write_summary(self.out, self.tally, sync, seconds=time.monotonic() - self.started)
        self.echo("")
        self.echo(text.rstrip())
        self.echo(f"receipts (text and PNG): {self.files.folder}")
        self.echo(f"summary: {self.out / 'summary.txt'}; logs: {self.logs}")
        if agreeing != checked:
            raise DemoError(
                f"head office and the till disagree on {checked - agreeing} card balance(s)"
            )

    def _compare_balances(self) -> tuple[int, int]:
        """How many cards used today HQ and the till agree on (after the last sync)."""
        from tillgate.hq.client import AdminClient

        agreeing = 0
        with AdminClient(self.hq_url, self.admin_env["TILLGATE_HQ_TOKEN"], timeout=15) as hq:
            for number in sorted(self.cards_used):
                at_hq = hq.card(number)
                at_till = self.http.get(f"/v1/cards/{number}").json()
                if (at_hq["balance"], at_hq["pending"]) == (at_till["balance"], at_till["pending"]):
                    agreeing += 1
                else:
                    self.tally.notes.append(
                        f"card {mask(number)}: HQ {at_hq['balance']}/{at_hq['pending']}, "
                        f"till {at_till['balance']}/{at_till['pending']} (balance/pending)"
                    )
        return len(self.cards_used), agreeing

    def _serve(self) -> None:
        url = f"{self.agent_url}/"
        self.echo("")
        self.echo(f"hint panel: {url}  (head office: {self.hq_url}); Ctrl+C stops the demo")
        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
        k = self.options.receipts
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(8)
                k += 1
                self._random_visit(k)


def prepare_out(out: Path) -> None:
    """Make ``out`` ready: new, or a previous demo's folder emptied; anything else refused."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).exists():
            raise ConfigError(
                f"--out {out}: the folder is not empty and was not made by tillgate demo; "
                "choose a new or empty folder"
            )
        for name in ("receipts", "logs"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("summary.txt", "summary.json"):
            (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("made by tillgate demo; safe to delete\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there: {exc.strerror or exc}") from exc
