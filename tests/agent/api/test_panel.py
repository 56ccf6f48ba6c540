"""The hint panel page at ``/`` and the event stream's ``?token=`` (the panel cannot send headers).

What the page draws is checked in a real browser (tests/agent/test_panel_browser.py); here:
it is self-contained, its chrome follows the till's language, and the token rules.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import re
from importlib import resources
from pathlib import Path

import httpx
import pytest

from tests.conftest import program
from tillgate.agent.api import panel
from tillgate.agent.api.panel import LABELS, page_template, panel_html

TOKEN = "s3cret+/=&x~"  # characters a query must percent-encode
QUOTED = "s3cret%2B%2F%3D%26x~"


def test_the_panel_is_one_page_with_no_external_url(make_till):
    till = make_till(program())
    r = till.http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    page = r.text
    # A till may have no internet: nothing may be fetched from anywhere but the agent.
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"""["'(]\s*//""", page), "a protocol-relative URL"
    assert not re.search(r"<(link|img|iframe)\b", page), "an external resource tag"
    assert "@import" not in page and "@font-face" not in page and "url(" not in page
    assert not re.search(r"<script[^>]*\bsrc=", page)
    assert "/v1/events" in page and "EventSource" in page
    assert 'data-testid="customer-name"' in page


def test_the_panel_is_not_in_the_openapi_contract(make_till):
    till = make_till(program())
    assert "/" not in till.http.get("/openapi.json").json()["paths"]


def test_russian_chrome_by_default_and_till_identity(make_till):
    till = make_till(program(), name="till-7")
    page = till.http.get("/").text
    assert '<html lang="ru">' in page
    for label in ("Покупатель", "Баланс", "Доступно", "Подсказки", "Карта не предъявлена"):
        assert label in page
    assert "Available" not in page and "No card presented" not in page
    assert 'data-testid="till">till-7<' in page and 'data-testid="store">store-01<' in page


def test_english_chrome_when_the_till_language_is_en(make_till):
    till = make_till(program())
    till.service.settings = dataclasses.replace(till.service.settings, language="en")
    page = till.http.get("/").text
    assert '<html lang="en">' in page
    for label in ("Customer", "Balance", "Available", "Hints", "No card presented"):
        assert label in page
    assert "Доступно" not in page and "Карта не предъявлена" not in page


def test_both_languages_label_the_same_things():
    assert LABELS["ru"].keys() == LABELS["en"].keys()
    with pytest.raises(ValueError, match="language 'de'"):
        panel_html(language="de", till="t", store="s")


def test_the_page_is_package_data_beside_the_module():
    # static/panel.html, found as package data (so a wheel and the frozen bundle, which ship
    # it, find it too); the Python module holds no page of its own.
    shipped = resources.files("tillgate.agent.api") / "static" / "panel.html"
    assert Path(str(shipped)) == Path(panel.__file__).parent / "static" / "panel.html"
    template = shipped.read_text(encoding="utf-8")
    assert page_template() == template
    assert "<!doctype" not in inspect.getsource(panel).lower()
    # Every placeholder in the file is one panel_html fills in (an unknown one would break
    # every request for "/"), and the page served is the file with only those filled in.
    names = set(re.findall(r"\{\{(\w+)\}\}", template))
    assert {"lang", "store", "till_id", "config", "customer"} <= names
    assert names <= LABELS["en"].keys() | {"lang", "store", "till_id", "config"}
    page = panel_html(language="en", till="t", store="s")
    literal = [re.escape(part) for part in re.split(r"\{\{\w+\}\}", template)]
    assert re.fullmatch("(?s)" + "[^\n]*?".join(literal), page)
    assert "{{" not in page


def test_the_card_session_length_reaches_the_page():
    page = panel_html(language="ru", till="t", store="s", card_session_seconds=45)
    assert '"session_seconds": 45' in page
    assert '"clear_after_seconds": 20' in page
    short = panel_html(language="ru", till="t", store="s", card_session_seconds=5)
    assert '"clear_after_seconds": 5' in short  # never longer than the session itself


def test_till_and_store_names_are_escaped_everywhere():
    evil = '</script><script>alert(1)</script><b x="'
    page = panel_html(language="en", till=evil, store=evil)
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in page  # visible as text, in the header
    assert page.count("</script>") == 2  # the config blob and the script, nothing injected
    braces = panel_html(language="en", till="{{config}}", store="{{points}}")
    assert 'data-testid="till">{{config}}<' in braces
    assert 'data-testid="store">{{points}}<' in braces


def test_the_page_puts_event_data_on_screen_as_text_only():
    page = panel_html(language="ru", till="t", store="s")
    script = page[page.index("<script>") :]
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "document.write" not in script and "eval(" not in script


def test_the_panel_page_needs_no_token_but_the_api_does(make_till):
    till = make_till(program(), token=TOKEN)
    bare = httpx.Client(base_url=till.url, timeout=10)
    try:
        assert bare.get("/").status_code == 200  # it holds no data; the stream does
        assert bare.get("/v1/status").status_code == 401
        r = bare.get("/v1/events")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    finally:
        bare.close()


def _server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the agent logged (the test's own HTTP client logs its URLs: not the agent's)."""
    client = ("httpx", "httpcore")
    return "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(client))


def _first_event(url: str, **kw: object) -> tuple[int, str]:
    """Open the stream, return its status and its first line, and hang up."""
    with httpx.stream("GET", url, timeout=10, **kw) as r:  # type: ignore[arg-type]
        if r.status_code != 200:
            r.read()
            return r.status_code, r.text
        return 200, next(r.iter_lines())


def test_the_event_stream_takes_the_token_in_its_query(make_till, caplog):
    caplog.set_level(logging.DEBUG)
    till = make_till(program(), token=TOKEN)
    assert str(httpx.QueryParams({"token": TOKEN})) == f"token={QUOTED}"
    status, first = _first_event(f"{till.url}/v1/events?token={QUOTED}")
    assert status == 200 and first == "retry: 2000"
    # The header still works, and is not needed in addition.
    status, _ = _first_event(f"{till.url}/v1/events", headers={"Authorization": f"Bearer {TOKEN}"})
    assert status == 200
    assert "s3cret" not in _server_log(caplog)


@pytest.mark.parametrize(
    "query",
    [
        "token=wrong",
        "token=",
        "token=s3cret",  # a prefix of the right one
        "token=s3cret+/=&x~",  # not encoded: "s3cret /=" and a parameter "x~"
        f"Token={QUOTED}",  # the name is case-sensitive
        f"token={QUOTED}&token=wrong",  # two tokens: which one?
    ],
)
def test_a_wrong_token_in_the_query_is_refused(make_till, caplog, query):
    caplog.set_level(logging.DEBUG)
    till = make_till(program(), token=TOKEN)
    r = httpx.get(f"{till.url}/v1/events?{query}", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert "wrong" not in _server_log(caplog) and "s3cret" not in _server_log(caplog)


def test_the_query_token_opens_the_event_stream_only(make_till):
    till = make_till(program(), token=TOKEN)
    query = httpx.QueryParams({"token": TOKEN})
    for path in ("/v1/status", "/v1/cards/2900000000011", "/v1/events/", "/v1/eventsX"):
        r = httpx.get(f"{till.url}{path}?{query}", timeout=10)
        assert r.status_code == 401, path
    r = httpx.post(
        f"{till.url}/v1/receipts/calculate?{query}",
        json={"receipt_id": "R1", "lines": [{"sku": "a", "qty": 1, "price": "1.00"}]},
        timeout=10,
    )
    assert r.status_code == 401
    with till.service.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 0


def test_without_a_configured_token_the_query_is_ignored(make_till):
    till = make_till(program())
    status, first = _first_event(f"{till.url}/v1/events?token=anything")
    assert status == 200 and first == "retry: 2000"
