"""Browsers against the till: a web page on another site must neither drive nor read it.

Real parts only, as an attacker has them: a real ``tillgate run`` on the shipped examples
with the default config (loopback, no token); the attacker's page served by a second
loopback server on another port; Debian's headless Chromium at ``/usr/bin/chromium`` driven
by Playwright (as tests/agent/test_panel_browser.py does; Playwright never downloads one).
Chromium maps ``attacker.example`` to 127.0.0.1, so a truly cross-site origin and a DNS
rebinding (``attacker.example`` resolving to the till) run on this machine with no DNS.

What must hold: no-cors POSTs from another origin to confirm, cancel, refund, calculate and
the card session are refused and change nothing (checked through the API afterwards); a
foreign ``Host`` gets 421 and learns nothing; every page carries the anti-framing and
no-sniff headers; a POS (JSON, no browser headers) and the hint panel keep working. The
rules one by one are unit-tested on :class:`~tillgate.agent.api.guard.BrowserGuard` below.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.agent.test_panel_browser import ARGS, CHROMIUM, WAIT
from tests.conftest import copy_examples, free_port, spawn_agent
from tillgate.agent.api.docs_page import DOCS_HTML
from tillgate.agent.api.guard import BrowserGuard, page_policy
from tillgate.agent.api.panel import panel_html

CARD = "2900000012345"  # cards.example.csv: Анна Иванова, +79161234567, gold, 1240 points
PHONE = "+79161234567"
SECRETS = ("Анна", "Иванова", "\\u0410\\u043d\\u043d\\u0430", "79161234567", "1985")
OTHER_CARD = "2900000023456"  # Борис Петров
EVIL = "attacker.example"  # Chromium resolves it to 127.0.0.1 (--host-resolver-rules)
LINES = [{"sku": "4601", "name": "Молоко 1л", "qty": 2, "price": "100.00", "category": "dairy"}]

# Every way a page can send a body without asking the server first (a "simple" request):
# text/plain, a form, multipart, a typeless Blob (no Content-Type at all, which FastAPI
# reads as JSON), and no body; the last one also asks for no referrer (some browsers then
# send "Origin: null"; Chromium 156 still sends the page's origin).
VARIANTS = ("none", "text", "form", "multipart", "blob", "blob-noreferrer")

ATTACK_JS = """
async ([url, variant, body]) => {
  const init = {method: "POST", mode: "no-cors", credentials: "include", cache: "no-store"};
  if (variant === "text") { init.body = body; }
  if (variant === "form") { init.body = new URLSearchParams({[body]: ""}); }
  if (variant === "multipart") { const f = new FormData(); f.append("json", body); init.body = f; }
  if (variant.startsWith("blob")) { init.body = new Blob([body]); }
  if (variant.endsWith("noreferrer")) { init.referrerPolicy = "no-referrer"; }
  try { const r = await fetch(url, init); return r.type; } catch (e) { return "failed: " + e; }
}
"""


@dataclass
class Till:
    """A running ``tillgate run`` and a POS's client for it (JSON, no browser headers)."""

    port: int
    http: httpx.Client
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calculate(self, receipt_id: str, **extra: Any) -> dict[str, Any]:
        r = self.http.post(
            "/v1/receipts/calculate", json={"receipt_id": receipt_id, "lines": LINES, **extra}
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def balance(self) -> int:
        r = self.http.get(f"/v1/cards/{CARD}")
        assert r.status_code == 200, r.text
        return int(r.json()["balance"])


@pytest.fixture(scope="module")
def till(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Till]:
    tmp = tmp_path_factory.mktemp("till")
    port = free_port()
    log_path = tmp / "agent.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = spawn_agent(copy_examples(tmp), port=port, cwd=tmp, stderr=log)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
                yield Till(port=port, http=http, log=log_path)
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0
    assert "internal error" not in log_path.read_text(encoding="utf-8")


class _Page(BaseHTTPRequestHandler):
    """The attacker's site: one harmless-looking page at every path."""

    def do_GET(self) -> None:
        body = b"<!doctype html><meta charset=utf-8><title>Cheap flights</title><p>Hello"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def attacker_site(port: int = 0) -> Iterator[int]:
    """The attacker's web server on loopback; yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def attacker_port() -> Iterator[int]:
    with attacker_site() as port:
        yield port


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must run the browser security tests")
        pytest.skip(why)
    args = [
        *ARGS,
        f"--host-resolver-rules=MAP {EVIL} 127.0.0.1",
        # Plain http to attacker.example as typed, not first tried as https.
        "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
    ]
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, timeout=WAIT)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Seen:
    """What a page got, by Chromium's own network log (DevTools protocol).

    The status of every answer is read where Chromium receives it: a refusal that carries
    ``Cross-Origin-Resource-Policy: same-origin`` never reaches a no-cors page even as an
    opaque response (the page sees a network error), so Playwright's response events
    would not show it.
    """

    urls: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def sent(self, event: dict[str, Any]) -> None:
        self.urls[event["requestId"]] = event["request"]["url"]

    def answered(self, event: dict[str, Any]) -> None:
        if "statusCode" in event:
            self.statuses[event["requestId"]] = int(event["statusCode"])
            self.headers[event["requestId"]] = {
                k.lower(): v for k, v in event.get("headers", {}).items()
            }

    def from_till(self, till: Till) -> list[tuple[str, int, dict[str, str]]]:
        """(url, status, headers) of every answer from ``till``, in order."""
        return [
            (self.urls[rid], status, self.headers[rid])
            for rid, status in self.statuses.items()
            if f":{till.port}/" in self.urls.get(rid, "")
        ]

    def all_from_till(
        self, page: Page, till: Till, count: int, *, url: str | None = None
    ) -> list[tuple[str, int, dict[str, str]]]:
        """:meth:`from_till` once ``count`` answers (to ``url``, if given) are in, or after
        ``WAIT`` ms. DevTools events reach this side after the page's ``fetch`` has settled
        (a CI run saw 29 of 30 read straight away); waiting on the page lets Playwright
        deliver them."""
        deadline = time.monotonic() + WAIT / 1000
        while True:
            answered = self.from_till(till)
            got = [a for a in answered if url is None or a[0] == url]
            if len(got) >= count or time.monotonic() >= deadline:
                return answered
            page.wait_for_timeout(25)


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[[str], tuple[Page, Seen]]]:
    contexts: list[BrowserContext] = []

    def open_at(url: str) -> tuple[Page, Seen]:
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU")
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT)
        seen = Seen()
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", seen.sent)
        cdp.on("Network.responseReceivedExtraInfo", seen.answered)
        cdp.send("Network.enable")
        page.on("console", lambda msg: seen.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
        page.goto(url)
        return page, seen

    yield open_at
    for context in contexts:
        context.close()


# ---------------------------------------------------------------- another origin, no-cors


@pytest.mark.parametrize(
    "origin",
    [
        pytest.param("http://localhost:{port}", id="cross-site"),
        pytest.param("http://127.0.0.1:{port}", id="same-site-other-port"),
        pytest.param(f"http://{EVIL}:{{port}}", id="attacker-domain"),
    ],
)
def test_no_cors_posts_from_another_origin_are_refused_and_change_nothing(
    till: Till,
    attacker_port: int,
    open_page: Callable[..., tuple[Page, Seen]],
    origin: str,
) -> None:
    tag = origin.split("//")[1].split(":")[0].replace(".", "")
    page, seen = open_page(origin.format(port=attacker_port) + "/offer")
    held, cancel_me, refund_me, priced_by_attack = (f"R-{tag}-{n}" for n in range(1, 5))
    till.calculate(held, card=CARD, redeem=50)  # points held, not yet paid
    till.calculate(cancel_me, card=CARD)
    sold = till.calculate(refund_me, card=CARD)
    assert till.http.post(f"/v1/receipts/{refund_me}/confirm").status_code == 200
    balance = till.balance()

    attacks = {
        f"/v1/receipts/{held}/confirm": json.dumps({"paid": "0.00"}),
        f"/v1/receipts/{cancel_me}/cancel": "{}",
        f"/v1/receipts/{refund_me}/refund": json.dumps({"refund_id": f"RF-{tag}"}),
        "/v1/receipts/calculate": json.dumps(
            {"receipt_id": priced_by_attack, "card": CARD, "lines": LINES}
        ),
        "/v1/session/card": json.dumps({"card": OTHER_CARD, "source": "api"}),
    }
    for path, body in attacks.items():
        for variant in VARIANTS:
            # The page learns nothing either way: an opaque answer, or (the refusal's
            # Cross-Origin-Resource-Policy) a network error.
            outcome = page.evaluate(ATTACK_JS, [till.base + path, variant, body])
            assert outcome in ("opaque", "failed: TypeError: Failed to fetch"), outcome

    # Chromium's own record of the answers: every one a refusal.
    answered = seen.all_from_till(page, till, len(attacks) * len(VARIANTS))
    assert len(answered) == len(attacks) * len(VARIANTS), answered
    assert {status for _, status, _ in answered} == {403}, answered
    assert till.balance() == balance  # no points spent

    # Nothing changed: the held receipt is still open (so it can be cancelled), the other
    # one can still be paid, the sold one still returns in full, the attacker's basket
    # does not exist and no card is waiting at the till.
    r = till.http.post(f"/v1/receipts/{held}/cancel")
    assert (r.status_code, r.json().get("status")) == (200, "cancelled"), r.text
    r = till.http.post(f"/v1/receipts/{cancel_me}/confirm")
    assert (r.status_code, r.json().get("status")) == (200, "confirmed"), r.text
    r = till.http.post(f"/v1/receipts/{refund_me}/refund", json={"refund_id": f"RF-{tag}-pos"})
    assert r.status_code == 200, r.text
    assert r.json()["amount_returned"] == sold["total"]
    r = till.http.post(f"/v1/receipts/{priced_by_attack}/confirm")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "receipt_not_found"), r.text
    assert till.http.get("/v1/status").json()["card_session"] is None


def test_a_classic_form_post_from_another_site_is_refused(
    till: Till, attacker_port: int, open_page: Callable[..., tuple[Page, Seen]]
) -> None:
    page, _ = open_page(f"http://{EVIL}:{attacker_port}/win")
    till.calculate("R-form-1", card=CARD)
    submit = """(url) => {
      const f = document.createElement("form");
      f.method = "POST"; f.action = url; f.enctype = "text/plain";
      const i = document.createElement("input");
      i.name = '{"paid": "0.00", "x": "'; i.value = '"}';
      f.append(i); document.body.append(f); f.submit();
    }"""
    with page.expect_response(lambda r: f":{till.port}/" in r.url) as caught:
        page.evaluate(submit, f"{till.base}/v1/receipts/R-form-1/confirm")
    refused = caught.value
    assert refused.status == 403
    assert refused.json()["error"]["code"] == "cross_site"
    r = till.http.post("/v1/receipts/R-form-1/cancel")
    assert (r.status_code, r.json().get("status")) == (200, "cancelled"), r.text


def test_another_site_cannot_frame_the_panel(
    till: Till, attacker_port: int, open_page: Callable[..., tuple[Page, Seen]]
) -> None:
    page, _ = open_page(f"http://localhost:{attacker_port}/frame")
    with page.expect_response(lambda r: r.url == till.base + "/") as caught:
        page.evaluate(
            "(url) => { const f = document.createElement('iframe'); f.src = url;"
            " document.body.append(f); }",
            till.base + "/",
        )
    framed = caught.value
    assert framed.status == 403
    assert framed.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in framed.headers["content-security-policy"]
    # Nothing of the panel is drawn in the frame (the browser shows its error page there).
    expect(page.frame_locator("iframe").get_by_test_id("connection")).to_have_count(0)


# ---------------------------------------------------------------- DNS rebinding, Host


def test_dns_rebinding_reads_nothing(
    tmp_path: Path, open_page: Callable[..., tuple[Page, Seen]]
) -> None:
    # The page loads from attacker.example:PORT, the attacker's server; then the name is
    # "re-pointed" at a till on that very address and port (here: the server goes, a till
    # comes). The page's fetches are same-origin for the browser and reach the till.
    port = free_port()
    with attacker_site(port):
        page, _ = open_page(f"http://{EVIL}:{port}/")
    read = """async (path) => {
      const r = await fetch(path, {cache: "no-store"});
      return {status: r.status, text: await r.text()};
    }"""
    with (tmp_path / "agent.log").open("w", encoding="utf-8") as log:
        proc = spawn_agent(copy_examples(tmp_path), port=port, cwd=tmp_path, stderr=log)
        try:
            for path in (f"/v1/cards/{PHONE}", f"/v1/cards/{CARD}", "/v1/status", "/"):
                got = page.evaluate(read, path)
                assert got["status"] == 421, (path, got)
                assert json.loads(got["text"])["error"]["code"] == "bad_host"
                assert not any(s in got["text"] for s in SECRETS), got["text"]
        finally:
            proc.terminate()
            assert proc.wait(timeout=15) == 0


@pytest.mark.parametrize(
    "host", [EVIL, f"{EVIL}:{{port}}", "127.0.0.1.attacker.example", "localhost.:{port}"]
)
def test_a_foreign_host_header_gets_421_and_learns_nothing(till: Till, host: str) -> None:
    host = host.format(port=till.port)
    for path in (f"/v1/cards/{PHONE}", "/v1/status", "/", "/healthz", "/openapi.json"):
        r = httpx.get(till.base + path, headers={"Host": host}, timeout=10)
        assert r.status_code == 421, (path, r.status_code, r.text)
        assert r.json()["error"]["code"] == "bad_host"
        assert not any(s in r.text for s in SECRETS), r.text
    # Nor can it change anything, token or not (the default config has none).
    receipt = f"R-host-{len(host)}-{host[0]}"
    till.calculate(receipt, card=CARD)
    r = httpx.post(
        f"{till.base}/v1/receipts/{receipt}/confirm", json={}, headers={"Host": host}, timeout=10
    )
    assert r.status_code == 421, r.text
    r = till.http.post(f"/v1/receipts/{receipt}/cancel")
    assert (r.status_code, r.json().get("status")) == (200, "cancelled"), r.text


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST"])
def test_loopback_names_are_served(till: Till, host: str) -> None:
    r = httpx.get(till.base + "/v1/status", headers={"Host": host.format(port=till.port)})
    assert r.status_code == 200, r.text


# ---------------------------------------------------------------- headers, POS, panel


def test_every_answer_carries_the_browser_headers(till: Till) -> None:
    for method, path in (
        ("GET", "/"),
        ("GET", "/docs"),
        ("GET", "/v1/status"),
        ("GET", "/openapi.json"),
        ("GET", "/v1/receipts/none/confirm"),  # 405
        ("POST", "/v1/receipts/R-unknown/confirm"),  # 404
    ):
        r = till.http.request(method, path)
        h = r.headers
        assert h["x-frame-options"] == "DENY", (path, h)
        assert h["x-content-type-options"] == "nosniff", (path, h)
        assert h["referrer-policy"] == "no-referrer", (path, h)
        csp = h["content-security-policy"]
        assert "frame-ancestors 'none'" in csp, (path, csp)
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (path, csp)


def test_a_pos_without_browser_headers_still_works(till: Till) -> None:
    calc = till.calculate("R-pos-1", card=CARD)
    r = till.http.post("/v1/receipts/R-pos-1/confirm", json={"paid": calc["total"]})
    assert (r.status_code, r.json()["status"]) == (200, "confirmed"), r.text
    # As curl sends them: an empty confirm/cancel with no Content-Type at all...
    till.calculate("R-pos-2")
    r = httpx.post(till.base + "/v1/receipts/R-pos-2/cancel", timeout=10)
    assert (r.status_code, r.json()["status"]) == (200, "cancelled"), r.text
    # ...and JSON with a charset.
    body = json.dumps({"receipt_id": "R-pos-3", "lines": LINES}).encode()
    r = httpx.post(
        till.base + "/v1/receipts/calculate",
        content=body,
        headers={"Content-Type": "application/json; charset=UTF-8"},
        timeout=10,
    )
    assert r.status_code == 200, r.text


def test_a_body_that_is_not_json_is_refused_with_what_to_send(till: Till) -> None:
    body = json.dumps({"receipt_id": "R-pos-4", "lines": LINES})
    for headers in ({"Content-Type": "text/plain"}, {}):
        r = httpx.post(till.base + "/v1/receipts/calculate", content=body, headers=headers)
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "unsupported_media_type"
        assert "application/json" in r.json()["error"]["message"]
    r = till.http.post("/v1/receipts/R-pos-4/confirm")
    assert r.status_code == 404, r.text


def test_the_panel_and_the_docs_page_work_under_their_own_policies(
    till: Till, open_page: Callable[..., tuple[Page, Seen]]
) -> None:
    page, seen = open_page(till.base + "/")
    testid = page.get_by_test_id
    expect(testid("connection")).to_have_attribute("data-state", "open", timeout=WAIT)
    r = till.http.post("/v1/session/card", json={"card": CARD, "source": "api"})
    assert r.status_code == 200, r.text
    expect(testid("customer-name")).to_have_text(re.compile("^Анна"), timeout=WAIT)
    page_answers = seen.all_from_till(page, till, 1, url=till.base + "/")
    (headers,) = [h for url, _, h in page_answers if url == till.base + "/"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    blocked = [m for m in seen.console if "Content Security Policy" in m or "Refused to" in m]
    assert blocked == [] and seen.errors == [], (blocked, seen.errors)

    docs, seen = open_page(till.base + "/docs")  # its script fetches /openapi.json
    expect(docs.locator("#ops")).to_contain_text("/v1/receipts/calculate", timeout=WAIT)
    blocked = [m for m in seen.console if "Content Security Policy" in m or "Refused to" in m]
    assert blocked == [] and seen.errors == [], (blocked, seen.errors)


# ---------------------------------------------------------------- the guard, rule by rule


def scope(
    method: str = "GET",
    *,
    server: tuple[str, int] = ("127.0.0.1", 8765),
    **headers: str,
) -> dict[str, Any]:
    """An ASGI request scope; ``headers`` by their names with ``_`` for ``-``."""
    raw = [(k.replace("_", "-").encode(), v.encode("latin-1")) for k, v in headers.items()]
    return {
        "type": "http",
        "method": method,
        "scheme": "http",
        "path": "/v1/status",
        "server": server,
        "headers": raw,
    }


def code(guard: BrowserGuard, request: dict[str, Any]) -> str | None:
    refusal = guard.refusal(request)
    return None if refusal is None else f"{refusal[0]} {refusal[1]}"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", None),
        ("127.0.0.1:8765", None),
        ("localhost:8765", None),
        ("LocalHost", None),
        ("[::1]:8765", None),
        ("[0:0:0:0:0:0:0:1]", None),
        ("127.0.0.1:1", None),  # the port is not the point: the name cannot be re-pointed
        ("attacker.example", "421 bad_host"),
        ("attacker.example:8765", "421 bad_host"),
        ("localhost.", "421 bad_host"),
        ("127.0.0.1.nip.io", "421 bad_host"),
        ("localhost.attacker.example", "421 bad_host"),
        ("192.168.1.10:8765", "421 bad_host"),  # not where this connection arrived
        ("", "421 bad_host"),
        ("[::1", "421 bad_host"),
        ("::1", "421 bad_host"),
        ("127.0.0.1:99999", "421 bad_host"),
        ("127.0.0.1:80:80", "421 bad_host"),
        ("a b", "421 bad_host"),
    ],
)
def test_the_host_must_be_a_name_the_api_is_served_under(host: str, expected: str | None) -> None:
    assert code(BrowserGuard(_app), scope(host=host)) == expected


def test_no_host_header_is_a_program_not_a_browser() -> None:
    assert code(BrowserGuard(_app), scope()) is None


def test_the_configured_host_and_the_arrival_address_are_served() -> None:
    named = BrowserGuard(_app, host="Till-7.Shop.LAN")
    assert code(named, scope(host="till-7.shop.lan:8765")) is None
    assert code(named, scope(host="till-8.shop.lan:8765")) == "421 bad_host"
    # Bound to every address: the POS calls the till by the address it reaches it on.
    anywhere = BrowserGuard(_app, host="0.0.0.0")
    lan = ("192.168.1.10", 8765)
    assert code(anywhere, scope(host="192.168.1.10:8765", server=lan)) is None
    assert code(anywhere, scope(host="0.0.0.0:8765", server=lan)) == "421 bad_host"
    assert code(anywhere, scope(host="192.168.1.11:8765", server=lan)) == "421 bad_host"
    assert code(anywhere, scope(host="till.attacker.example", server=lan)) == "421 bad_host"


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://127.0.0.1:8765", None),
        ("http://127.0.0.1:8765/", "403 cross_site"),  # an origin has no path
        ("http://127.0.0.1:8000", "403 cross_site"),
        ("http://localhost:8765", "403 cross_site"),  # another origin, though also the till's
        ("https://127.0.0.1:8765", "403 cross_site"),
        ("http://attacker.example", "403 cross_site"),
        ("null", "403 cross_site"),  # sandboxed frames, file: pages, no-referrer posts
        ("", "403 cross_site"),
        ("http://127.0.0.1:bad", "403 cross_site"),
    ],
)
def test_an_origin_must_be_the_apis_own(origin: str, expected: str | None) -> None:
    request = scope("POST", host="127.0.0.1:8765", origin=origin, content_type="application/json")
    assert code(BrowserGuard(_app), request) == expected


def test_the_own_origin_on_the_default_port() -> None:
    request = scope(host="localhost", origin="http://localhost:80")
    assert code(BrowserGuard(_app), request) is None


@pytest.mark.parametrize(
    ("site", "expected"),
    [
        ("same-origin", None),
        ("none", None),  # typed into the address bar, a bookmark, a kiosk's start page
        ("same-site", "403 cross_site"),  # 127.0.0.1:8000 is the same site as :8765
        ("cross-site", "403 cross_site"),
        ("Cross-Site", "403 cross_site"),
        ("bogus", "403 cross_site"),
    ],
)
def test_sec_fetch_site_must_be_the_tills_own(site: str, expected: str | None) -> None:
    for method in ("GET", "POST"):
        request = scope(method, host="127.0.0.1", sec_fetch_site=site)
        assert code(BrowserGuard(_app), request) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"content_type": "application/json", "content_length": "2"}, None),
        ({"content_type": "application/json; charset=utf-8"}, None),
        ({"content_type": 'Application/JSON;Charset="UTF-8"'}, None),
        ({"content_type": "application/json; charset=utf8"}, None),
        ({}, None),  # curl -X POST …/confirm: no body, no type
        ({"content_length": "0"}, None),
        ({"content_length": "2"}, "415 unsupported_media_type"),  # a typeless Blob
        ({"transfer_encoding": "chunked"}, "415 unsupported_media_type"),
        ({"content_type": "text/plain;charset=UTF-8"}, "415 unsupported_media_type"),
        ({"content_type": "application/x-www-form-urlencoded"}, "415 unsupported_media_type"),
        ({"content_type": "multipart/form-data; boundary=x"}, "415 unsupported_media_type"),
        ({"content_type": "application/json; charset=windows-1251"}, "415 unsupported_media_type"),
        ({"content_type": "application/json; boundary=x"}, "415 unsupported_media_type"),
        ({"content_type": "application/jsonp"}, "415 unsupported_media_type"),
        ({"content_type": "application/ld+json"}, "415 unsupported_media_type"),
        ({"content_type": ""}, "415 unsupported_media_type"),
    ],
)
def test_a_post_body_must_be_declared_json(headers: dict[str, str], expected: str | None) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert code(BrowserGuard(_app), scope(method, host="127.0.0.1", **headers)) == expected
    # A GET's content type is nobody's business.
    assert code(BrowserGuard(_app), scope("GET", host="127.0.0.1", **headers)) is None


def test_the_host_is_judged_first_then_the_origin_then_the_body() -> None:
    guard = BrowserGuard(_app)
    bad = {"origin": "http://x.example", "content_type": "text/plain"}
    assert code(guard, scope("POST", host="x.example", **bad)) == "421 bad_host"
    assert code(guard, scope("POST", host="127.0.0.1", **bad)) == "403 cross_site"


async def _app(scope: Any, receive: Any, send: Any) -> None:
    """An app behind the guard: answers 200 with a page whose own policy the guard keeps."""
    own = [] if scope["path"] != "/page" else [(b"content-security-policy", b"own")]
    await send({"type": "http.response.start", "status": 200, "headers": own})
    await send({"type": "http.response.body", "body": b"ok"})


def test_every_answer_gets_the_headers_and_a_refusal_the_error_shape(caplog: Any) -> None:
    async def ask() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=BrowserGuard(_app))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8765"
        ) as client:
            return [
                await client.get("/v1/status"),
                await client.get("/page"),
                await client.get(f"/v1/cards/{CARD}", headers={"Host": "attacker.example"}),
                await client.post("/v1/receipts/R1/confirm", headers={"Origin": "null"}),
                *[
                    await client.get(f"/v1/cards/{CARD}", headers={"Host": "attacker.example"})
                    for _ in range(5)
                ],
            ]

    # In a thread of its own: Playwright's sync API keeps an event loop in this one.
    with (
        caplog.at_level(logging.WARNING, logger="tillgate.agent.api.guard"),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        served, page, refused, cross, *_ = pool.submit(asyncio.run, ask()).result(timeout=30)
    assert (served.status_code, served.text, page.status_code) == (200, "ok", 200)
    assert refused.status_code == 421 and cross.status_code == 403
    assert refused.json()["error"]["code"] == "bad_host"
    assert set(refused.json()["error"]) == {"code", "message"}
    assert "attacker.example" not in refused.text  # nothing of the request is echoed
    for r in (served, page, refused, cross):
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cross-origin-resource-policy"] == "same-origin"
    assert page.headers["content-security-policy"] == "own"
    assert served.headers["content-security-policy"].startswith("default-src 'none';")
    # Logged once, the card number masked; a burst of refusals is one line a minute.
    logged = [r.getMessage() for r in caplog.records if r.name == "tillgate.agent.api.guard"]
    assert len([m for m in logged if "bad_host" in m]) == 1, logged
    assert not any(CARD in m for m in logged), logged


def test_a_page_policy_allows_exactly_its_own_inline_code() -> None:
    page = (
        '<style>b{color:red}</style><script type="application/json">{"a": 1}</script>'
        "<script>\r\nrun();\r\n</script><script>run();</script>"
    )
    policy = page_policy(page)

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    directives = dict(d.split(" ", 1) for d in policy.split("; "))
    assert directives["script-src"] == f"{sha(chr(10) + 'run();' + chr(10))} {sha('run();')}"
    assert directives["style-src"] == sha("b{color:red}")
    assert directives["frame-ancestors"] == "'none'"
    assert directives["default-src"] == "'none'"
    assert "unsafe" not in policy
    assert page_policy("<p>no code</p>").count("'none'") >= 4


def test_the_shipped_panel_and_docs_pages_need_nothing_their_policies_refuse() -> None:
    # A policy of hashes covers <script> and <style> blocks only: no inline handler, style
    # attribute or javascript: URL may be in the markup (the real browser test shows the
    # panel running; this names the culprit if one creeps in).
    panel = panel_html(language="ru", till="till-1", store="store-01")
    for page in (panel, DOCS_HTML):
        markup = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S | re.I)
        assert not re.search(r"\s(on[a-z]+|style)\s*=", markup, flags=re.I), markup
        assert "javascript:" not in markup.lower()
        assert page_policy(page).count("'sha256-") >= 2


# ---------------------------------------------------------------- the command line


def _tillgate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("token", ["", "x", "s3cret-token-of-31-characters.."])
def test_run_beyond_loopback_with_a_short_token_exits_2_saying_why(
    tmp_path: Path, token: str
) -> None:
    config = copy_examples(tmp_path)
    text = config.read_text(encoding="utf-8")
    assert 'token = ""' in text, "config.example.toml changed: no token line"
    config.write_text(text.replace('token = ""', f'token = "{token}"', 1), encoding="utf-8")
    # --port 0: were the rule broken, it would not take a real till's port meanwhile.
    out = _tillgate(
        "run", "--config", str(config), "--host", "0.0.0.0", "--port", "0", cwd=tmp_path
    )
    assert out.returncode == 2, out.stderr
    assert "pos_api.token" in out.stderr and "32 characters" in out.stderr, out.stderr
    assert "tillgate token new" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    if len(token) > 3:
        assert token not in out.stderr  # a secret, however short, is never echoed


def test_token_new_prints_a_strong_random_token(tmp_path: Path) -> None:
    tokens = []
    for _ in range(2):
        out = _tillgate("token", "new", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        tokens.append(out.stdout.strip().splitlines()[-1])
    assert tokens[0] != tokens[1]
    for token in tokens:
        assert len(token) >= 32
        assert token.isascii() and all(c.isalnum() or c in "-_" for c in token), token
