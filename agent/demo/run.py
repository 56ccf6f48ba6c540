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

This module runs the processes, tells the story and writes the summary; the cashier's moves
at the POS (a sale, a refund, a card swiped or scanned) are :mod:`.cashier`'s.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import time
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tillgate.core.cards import mask
from tillgate.core.errors import ConfigError

from ..examples import example_file
from . import pos as shop
from .cashier import Cashier
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


class Demo:
    """One run of the demo; :meth:`run` returns the exit status."""

    def __init__(self, options: Options, *, echo: Callable[[str], None] = print) -> None:
        self.options = options
        self.echo = echo
        self.started = time.monotonic()
        self.tally = Tally()
        self.rng = random.Random(1043)
        self.children: list[Child] = []
        self.out = options.out
        self.logs = self.out / "logs"
        self.files = ReceiptFiles(self.out / "receipts", columns=shop.COLUMNS)
        self._stack = contextlib.ExitStack()
        self.hq: Child
        self.agent: Child
        self.http: httpx.Client
        self.watcher: EventWatcher
        self.cashier: Cashier
        self.offline_seconds = 0.0

    # ------------------------------------------------------------ the run

    def run(self) -> int:
        # Head office's and the till's data stay in ``out/data`` (emptied by the next demo),
        # to look at after the run: what a till keeps of a chain's customers is on show.
        # Absolute: head office and the till each run in a folder of their own.
        work = (self.out / "data").absolute()
        try:
            with self._stack:
                self._start(work)
                self._story()
                self._finish()
                if self.options.serve:
                    self._serve()
        finally:
            self._stop_children()
        return 0

    def say(self, text: str) -> None:
        self.echo(f"[{time.monotonic() - self.started:5.1f} s] {text}")

    # ------------------------------------------------------------ set-up

    def _start(self, work: Path) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        hq_dir, till_dir = work / "hq", work / "till"
        hq_dir.mkdir(parents=True)
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
        goods = example_file("products.example.csv")
        for verb in (
            ["push", str(program)],
            ["cards", "import", str(cards)],
            ["products", "import", str(goods)],
        ):
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
        printer = PrinterFile(till_dir / "printer.bin")
        pos_line = reader = scanner = None
        if HAVE_PTY:
            pos_line = self._far_end(till_dir / "pos-printer", "POS printer line")
            reader = self._far_end(till_dir / "card-reader", "card reader")
            scanner = self._far_end(till_dir / "scanner", "scanner")
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
        self.cashier = Cashier(
            http=self.http,
            watcher=self.watcher,
            printer=printer,
            files=self.files,
            tally=self.tally,
            say=self.say,
            agent_log=self.agent.log,
            cards=(*ACTIVE, NEW_CARD),
            pos_line=pos_line,
            reader=reader,
            scanner=scanner,
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
columns = {shop.COLUMNS}

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

    # ------------------------------------------------------------ the agent

    def status(self) -> dict[str, Any]:
        reply = self.http.get("/v1/status")
        reply.raise_for_status()
        data: dict[str, Any] = reply.json()
        return data

    # ------------------------------------------------------------ the story

    def _story(self) -> None:
        b, c = shop.basket, self.cashier
        self.say("— the shop opens —")
        # 1. Анна scans her card; pastries over 500 ₽ earn a coffee coupon, printed by the agent.
        c.scan(ANNA, card=ANNA)
        first = c.sell_api(
            b(('Торт "Наполеон"', 1), ("Круассан с миндалём", 2), ("Молоко 3,2% 1 л", 2)),
            label="Анна, card scanned",
        )
        coupon = next(
            (p["code"] for p in first.event.get("printed", []) if p.get("kind") == "coupon"), None
        )
        if coupon is None:
            raise DemoError("the first visit should have printed a coffee coupon; it did not")
        # 2. Борис swipes his card; the POS prints its own receipt through the agent. The
        # receipt names no categories: the till finds that cigarettes earn nothing (by law).
        c.swipe(BORIS)
        c.sell_intercepted(
            b(
                ("Гречка 900 г", 2),
                ("Бананы, кг", "1.245"),
                ("Творог 5% 200 г", 1),
                ("Сигареты", 1),
            ),
            label="Борис, card swiped",
        )
        # 3. No card: the cashier is told to ask for one; dairy is near its discount.
        c.sell_api(b(("Кефир 1% 0,9 л", 1), ("Сыр Российский 300 г", 1)), label="no card")
        # 4. Вера gives her phone number; a big basket, half of it paid with points.
        big = c.sell_api(
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
        c.cards_used.add(VERA)
        # 5. She brings the cheese back: points are returned and taken back in proportion.
        c.refund(big, lines=[{"index": 2, "qty": 1}], label="Вера")
        # 6. A new plastic card handed out at the till: registered on its first purchase.
        c.swipe(NEW_CARD)
        c.sell_intercepted(
            b(("Яблоки Гала, кг", "2.100"), ("Рис 900 г", 2), ("Средство для посуды", 1)),
            label="new card, swiped",
        )
        # 7. Дарья changes her mind at the till: the sale is cancelled before payment.
        c.sell_api(b(("Капучино 0,3 л", 2)), card=DARIA, label="Дарья", cancel=True)
        c.cards_used.add(DARIA)

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
        c.swipe(ANNA)
        back = c.sell_api(
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
        c.swipe(BORIS)
        c.sell_intercepted(
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
        c.scan(f"TGC:{EVGENY}", card=EVGENY)
        mailing = c.sell_api(
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
        c = self.cashier
        items = shop.random_basket(self.rng)
        card = self.rng.choice((*ACTIVE, None))
        if k % 2 == 0 and c.pos_line is not None:
            if card is not None:
                c.swipe(card)
            c.sell_intercepted(items, label=f"visit {k + 1}")
        else:
            c.sell_api(items, card=card, label=f"visit {k + 1}")
            if card:
                c.cards_used.add(card)

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
            for number in sorted(self.cashier.cards_used):
                at_hq = hq.card(number)
                at_till = self.http.get(f"/v1/cards/{number}").json()
                if (at_hq["balance"], at_hq["pending"]) == (at_till["balance"], at_till["pending"]):
                    agreeing += 1
                else:
                    self.tally.notes.append(
                        f"card {mask(number)}: HQ {at_hq['balance']}/{at_hq['pending']}, "
                        f"till {at_till['balance']}/{at_till['pending']} (balance/pending)"
                    )
        return len(self.cashier.cards_used), agreeing

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
        for name in ("receipts", "logs", "data"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("summary.txt", "summary.json"):
            (out / name).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MARKER).write_text("made by tillgate demo; safe to delete\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot write there: {exc.strerror or exc}") from exc
