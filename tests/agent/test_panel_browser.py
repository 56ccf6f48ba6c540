"""The hint panel in a real browser: Debian's headless Chromium driven by Playwright.

A real ``tillgate run`` with a card reader on a pty and a serial printer played on another:
a card is swiped, a basket calculated, and the customer, balance and upsell hint are read
from the rendered page; the printer runs out of paper and the page says so; the agent is
stopped and started again and the page reconnects by itself.

The browser is the system's: Debian's ``chromium`` package at ``/usr/bin/chromium``
(``.ci/run`` installs it); Playwright never downloads one. Without it the tests skip
locally and fail under CI (``CI`` set). With ``TILLGATE_SCREENSHOTS=DIR`` the screenshots
for docs/panel.md are written to DIR.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.agent.test_devices import plug
from tests.agent.test_intercept_e2e import open_port
from tests.conftest import ANNA, CARDS, copy_examples, free_port, line, program, spawn_agent
from tests.drivers.fake_printer import PtyPrinter
from tillgate.agent.store.cards import CardRecord
from tillgate.core.cards import display_name

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pty ports are POSIX")

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 15_000  # ms: the longest any step may take
CARD = "2900000012345"  # cards.example.csv: Анна Иванова ("Анна И." on screen), gold, 1240 points
SWIPE = f";{CARD}=2912101?\r".encode()  # track 2, as drivers/msr.py reads it
# 200 ₽ of dairy: 100 ₽ short of program.example.toml's dairy-week (near-miss hint from 150 ₽).
DAIRY = [{"sku": "4601", "name": "Молоко 1л", "qty": 2, "price": "100.00", "category": "dairy"}]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must run the hint panel's browser test")
        pytest.skip(why)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=WAIT)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def open_panel(browser: Browser) -> Iterator[Callable[[str], Page]]:
    """Open the panel at a URL in a fresh till-sized window; every request it makes is kept."""
    contexts = []
    problems: list[str] = []

    def open_page(url: str) -> Page:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
        contexts.append(context)
        page = context.new_page()
        origin = re.match(r"https?://[^/]+", url)
        assert origin is not None
        page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
        page.on(
            "request",
            lambda req: (
                None
                if req.url.startswith(origin.group(0) + "/")
                else problems.append(f"request outside the agent: {req.url}")
            ),
        )
        page.set_default_timeout(WAIT)
        page.goto(url)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert problems == []


def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("TILLGATE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name))


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


class Agent:
    """``tillgate run`` on the shipped examples, a card reader on a pty, a pty printer."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.config = copy_examples(tmp)
        text = self.config.read_text(encoding="utf-8")
        for section, lines in (
            ("printer", f'url = "serial://{tmp / "printer"}"\npoll_seconds = 0.5'),
            ("card_reader", f'url = "pty:{tmp / "reader"}"'),
        ):
            old = f'[devices.{section}]\nurl = "none"'
            assert old in text, f"config.example.toml changed: no {old!r}"
            # The rest of the shipped url line (its comment) follows as a comment.
            text = text.replace(old, f'[devices.{section}]\n{lines}\n# url = "none"')
        self.config.write_text(text, encoding="utf-8")
        self.proc: Any = None
        self.reader: int | None = None
        self.logs: list[Any] = []

    def start(self) -> None:
        log = (self.tmp / f"agent-{len(self.logs)}.log").open("w+", encoding="utf-8")
        self.logs.append(log)
        self.proc = spawn_agent(self.config, port=self.port, cwd=self.tmp, stderr=log)
        self.reader = open_port(self.tmp / "reader")  # a new pty each run

    def stop(self) -> None:
        """SIGTERM, as the service manager stops it; it must exit cleanly."""
        if self.reader is not None:
            os.close(self.reader)
            self.reader = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(timeout=15) == 0, self.log()
        self.proc = None

    def swipe(self) -> None:
        assert self.reader is not None
        os.write(self.reader, SWIPE)

    def calculate(self, receipt_id: str, **extra: Any) -> dict[str, Any]:
        body = {"receipt_id": receipt_id, "lines": DAIRY, **extra}
        r = httpx.post(f"{self.base}/v1/receipts/calculate", json=body, timeout=10)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def log(self) -> str:
        return "\n".join(Path(f.name).read_text(encoding="utf-8") for f in self.logs)


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    made = Agent(tmp_path)
    try:
        yield made
    finally:
        try:
            made.stop()
        finally:
            for log in made.logs:
                log.close()


@pytest.fixture
def printer(tmp_path: Path) -> Iterator[PtyPrinter]:
    played = PtyPrinter()
    plug(tmp_path / "printer", played)
    yield played
    played.close()


def test_the_panel_shows_the_customer_and_hints_and_reconnects_after_a_restart(
    agent: Agent, printer: PtyPrinter, open_panel: Callable[[str], Page]
) -> None:
    agent.start()
    page = open_panel(agent.base + "/")
    testid = page.get_by_test_id
    connection = testid("connection")
    expect(connection).to_have_attribute("data-state", "open", timeout=WAIT)
    expect(testid("customer-empty")).to_be_visible(timeout=WAIT)

    # A card swiped on the reader: the customer appears before any receipt.
    agent.swipe()
    expect(testid("customer-name")).to_have_text("Анна И.", timeout=WAIT)
    # The tier's title from the program (program.example.toml), not its id "gold".
    expect(testid("customer-tier")).to_have_text("Золото")
    expect(testid("customer-tier")).to_have_class("badge tier-gold")
    expect(testid("customer-blocked")).to_be_hidden()
    expect(testid("customer-balance")).to_have_attribute("data-value", "1240")
    assert digits(testid("customer-balance").inner_text()) == "1240"
    assert testid("customer-number").inner_text() == "2900•••••2345"
    # What the card can spend (nothing held yet: all of it); no basket figure beside it
    # ("к списанию 0" of the engine's balance hint is a basket's, and there is none yet).
    expect(testid("customer-redeemable")).to_have_attribute("data-value", "1240")
    expect(page.locator("#customer")).to_contain_text("Доступно")
    expect(page.locator("body")).not_to_contain_text("к списанию")

    # The POS prices a basket (no card in the request: the swiped one is used).
    calc = agent.calculate("R1")
    assert calc["card"]["source"] == "session", calc["card"]
    upsells = [h for h in calc["hints"] if h["kind"] == "upsell"]
    assert [h["promotion"] for h in upsells] == ["dairy-week"], calc["hints"]
    upsell = testid("hint").and_(page.locator("[data-kind=upsell]"))
    expect(upsell.get_by_test_id("hint-text")).to_have_text(upsells[0]["text"], timeout=WAIT)
    assert "молочных" in upsells[0]["text"]
    # The most useful hint first, as the engine ordered them (greeting/balance are the box).
    shown = [testid("hint").nth(i).get_attribute("data-kind") for i in range(2)]
    assert shown == ["upsell", "tier"], shown
    assert "lead" in (testid("hint").first.get_attribute("class") or "")
    expect(testid("receipt-status")).to_have_text("рассчитан")
    expect(testid("receipt-total")).to_have_text(calc["total"])
    # What this basket could take beside what it takes now: the API's figures.
    assert calc["redeem_max"] > 0 and calc["redeemed"]["points"] == 0
    expect(testid("receipt-redeem-max")).to_have_text(f"{calc['redeem_max']} б.")
    expect(testid("receipt-redeemed")).to_have_text("0 б.")
    expect(page.locator("body")).not_to_contain_text("к списанию")
    assert CARD not in page.content()  # the full card number never reaches the screen
    screenshot(page, "panel.png")

    # The agent goes away: the page says so and keeps what it showed, dimmed.
    agent.stop()
    expect(connection).to_have_attribute("data-state", "lost", timeout=WAIT)
    expect(testid("banner-connection")).to_have_text(re.compile("Нет связи с агентом"))

    # It comes back on the same port and data: the page reconnects by itself, and the
    # restarted agent has no customer, so the old one does not linger.
    agent.start()
    expect(connection).to_have_attribute("data-state", "open", timeout=WAIT)
    expect(testid("banner-connection")).to_have_count(0)
    expect(testid("customer-empty")).to_be_visible()
    expect(testid("hint")).to_have_count(0)

    # New events after the restart are drawn: the printer runs out of paper...
    printer.paper_end = True
    banner = testid("banner-device")
    expect(banner).to_have_text("Принтер: нет бумаги", timeout=WAIT)
    assert banner.get_attribute("data-device") == "printer"
    # ...and a sale without a card: ask for it (the printer hint is the banner already).
    calc = agent.calculate("R2")
    assert calc["card"] is None
    assert "Принтер: нет бумаги" in [h["text"] for h in calc["hints"] if h["kind"] == "device"]
    ask = page.locator("[data-testid=hint][data-kind=ask_card]")
    expect(ask).to_have_text(re.compile("Спросите карту лояльности"), timeout=WAIT)
    expect(testid("customer-empty")).to_be_visible()
    expect(page.locator("[data-testid=hint][data-kind=device]")).to_have_count(0)
    screenshot(page, "panel-device.png")

    printer.paper_end = False
    expect(banner).to_have_count(0, timeout=WAIT)
    agent.swipe()  # the reader works after the restart too
    expect(testid("customer-name")).to_have_text("Анна И.", timeout=WAIT)
    assert CARD not in agent.log()


def test_the_panel_passes_its_token_on_to_the_event_stream(
    make_till: Any, open_panel: Callable[[str], Page]
) -> None:
    till = make_till(program(), token="s3cret+/=&x~")
    page = open_panel(till.url + "/?token=s3cret%2B%2F%3D%26x~")
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "open", timeout=WAIT)
    r = till.http.post("/v1/session/card", json={"card": "2900000000011", "source": "api"})
    assert r.status_code == 200, r.text
    expect(page.get_by_test_id("customer-name")).to_have_text("Анна", timeout=WAIT)

    # Without it (or with a wrong one) the page tells the cashier why it shows nothing.
    for url in (till.url + "/", till.url + "/?token=wrong"):
        refused = open_panel(url)
        connection = refused.get_by_test_id("connection")
        expect(connection).to_have_attribute("data-state", "refused", timeout=WAIT)
        expect(refused.get_by_test_id("banner-connection")).to_contain_text("/?token=")


def test_the_customer_is_cleared_when_the_session_ends_and_data_is_shown_as_text(
    make_till: Any, open_panel: Callable[[str], Page]
) -> None:
    # The panel shows the display name: the first word whole, markup and all.
    odd = "<img/src=x/onerror=alert(1)><b>Ада&amp;</b> Ко"
    shown = display_name(odd)
    assert shown.startswith("<img/src=x/onerror=alert(1)><b>")
    till = make_till(program(), cards=[*CARDS, CardRecord(number="2900000000059", holder=odd)])
    till.service.session.seconds = 2  # the page clears the customer on the same clock
    page = open_panel(till.url + "/")
    testid = page.get_by_test_id
    expect(testid("connection")).to_have_attribute("data-state", "open", timeout=WAIT)

    till.http.post("/v1/session/card", json={"card": "2900000000059", "source": "api"})
    expect(testid("customer-name")).to_have_text(shown, timeout=WAIT)  # as text, not markup
    assert page.locator("img, main b").count() == 0
    expect(testid("customer-empty")).to_be_visible(timeout=WAIT)  # the session ran out

    # A paid sale: shown as paid, then cleared (never later than the session would end).
    till.sale("R1", [line("a", "100.00")], card=ANNA)
    expect(testid("receipt-status")).to_have_text("оплачен", timeout=WAIT)
    expect(testid("customer-name")).to_have_text("Анна")
    expect(testid("receipt")).to_be_hidden(timeout=WAIT)
    expect(testid("customer-empty")).to_be_visible()
    expect(testid("hint")).to_have_count(0)


def test_the_panel_warns_when_the_program_file_is_invalid(
    agent: Agent, printer: PtyPrinter, open_panel: Callable[[str], Page]
) -> None:
    agent.start()
    page = open_panel(agent.base + "/")
    testid = page.get_by_test_id
    expect(testid("connection")).to_have_attribute("data-state", "open", timeout=WAIT)
    expect(testid("banner-program")).to_have_count(0)
    program = agent.tmp / "program.example.toml"
    good = program.read_text(encoding="utf-8")
    program.write_text(good.replace("max_redeem_percent = 50", "max_redeem_percent = 150"))
    os.utime(program, (time.time() + 5, time.time() + 5))  # the watcher sees a change
    banner = testid("banner-program")
    expect(banner).to_contain_text("Файл программы с ошибкой", timeout=WAIT)
    expect(banner).to_contain_text("max_redeem_percent")
    program.write_text(good, encoding="utf-8")
    os.utime(program, (time.time() + 10, time.time() + 10))
    expect(banner).to_have_count(0, timeout=WAIT)
