"""``POST /v1/receipts/calculate`` is served past FastAPI's layers, with FastAPI's answers.

The direct path (``core/serving.py`` ``Direct``) must answer byte for byte what the route
answers, errors included: each body below goes to two tills alike but for the direct path,
which the second one's app lacks.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import tillgate.agent.api.app as api_app
from tests.conftest import ANNA, BLOCKED, COUPON10, line, program

JSON = {"content-type": "application/json"}


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per answer the direct path encoded."""
    seen: list[int] = []
    real = api_app.serialize_response

    async def counted(**kw: Any) -> Any:
        seen.append(1)
        return await real(**kw)

    monkeypatch.setattr(api_app, "serialize_response", counted)
    return seen


@pytest.fixture
def pair(make_till: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Two tills alike (one program, cards and clock); the second has no direct path."""

    def make(data: dict[str, Any], **kw: Any) -> tuple[Any, Any]:
        fast = make_till(data, name="fast", **kw)
        with monkeypatch.context() as m:
            m.setattr(api_app, "_direct_calculate", lambda *_: _to_the_route)
            slow = make_till(data, name="slow", **kw)
        return fast, slow

    return make


async def _to_the_route(request: Any) -> None:
    return None


def both(tills: tuple[Any, Any], body: dict[str, Any] | bytes) -> tuple[Any, Any]:
    """The answers of the direct path and of FastAPI's route to the same body."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    fast, slow = (t.http.post("/v1/receipts/calculate", content=raw, headers=JSON) for t in tills)
    return fast, slow


LINES = [line("A", "100.00", qty=2, category="dairy"), line("B", "59.90", qty="0.350")]


@pytest.mark.parametrize(
    "body",
    [
        {"receipt_id": "R-1", "lines": LINES},
        {"receipt_id": "R-2", "lines": LINES, "card": ANNA},
        {"receipt_id": "R-3", "lines": LINES, "card": ANNA, "redeem": "max"},
        {"receipt_id": "R-4", "lines": LINES, "card": ANNA, "coupons": ["NOPE-1"]},
        {"receipt_id": "R-5", "lines": [], "cashier": "Ольга"},
    ],
)
def test_a_calculate_is_answered_as_the_route_answers_it(
    pair: Any, served: list[int], body: dict[str, Any]
) -> None:
    fast, slow = both(pair(program(COUPON10)), body)
    assert served == [1], "the direct path did not answer"
    assert fast.status_code == slow.status_code == 200, (fast.text, slow.text)
    assert fast.content == slow.content
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    "body, status, code",
    [
        # Refused by the use case: the app's exception handlers answer on both paths.
        ({"receipt_id": "R-1", "lines": LINES, "card": ANNA, "redeem": 9_000_000}, 409, None),
        ({"receipt_id": "R-1", "lines": LINES, "card": BLOCKED}, None, None),
        ({"receipt_id": "R-1", "lines": [line("A", "1.00")] * 3}, 413, "payload_too_large"),
        # Refused before it: the direct path leaves them to FastAPI, for its own texts.
        (b'{"receipt_id": "R-1", "lines": [', 400, "invalid_request"),
        (b"", 400, "invalid_request"),
        ({"lines": []}, 400, "invalid_request"),
        ({"receipt_id": "R-1", "lines": [{"sku": "a", "qty": 1, "price": 89.0}]}, 400, None),
        ({"receipt_id": "R-1", "lines": [], "surprise": 1}, 400, "invalid_request"),
    ],
)
def test_a_refusal_is_the_routes_refusal(
    pair: Any, served: list[int], body: Any, status: int | None, code: str | None
) -> None:
    fast, slow = both(pair(program(), max_lines=2), body)
    assert served == [], "an error was encoded as an answer"
    assert fast.status_code == slow.status_code and fast.status_code >= 400, fast.text
    assert status is None or fast.status_code == status, fast.text
    assert code is None or fast.json()["error"]["code"] == code, fast.text
    assert fast.content == slow.content


def test_what_the_direct_path_leaves_alone(make_till: Any, served: list[int]) -> None:
    till = make_till(program())
    body = json.dumps({"receipt_id": "R-1", "lines": LINES})
    r = till.http.post("/v1/receipts/calculate", content=body)  # a body of no type: guard.py
    assert r.status_code == 415, r.text
    assert till.http.get("/v1/receipts/calculate").status_code == 405
    assert served == []
    r = till.http.post(
        "/v1/receipts/calculate",
        content=body,
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert r.status_code == 200 and served == [1], r.text


def test_the_token_is_checked_before_the_direct_path(make_till: Any, served: list[int]) -> None:
    till = make_till(program(), token="s3cret")
    body = {"receipt_id": "R-1", "lines": LINES}
    r = till.http.post("/v1/receipts/calculate", json=body, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert served == []
    with till.service.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 0
    assert till.http.post("/v1/receipts/calculate", json=body).status_code == 200
    assert served == [1]


def test_a_body_over_the_limit_is_refused_on_the_direct_path(
    make_till: Any, served: list[int]
) -> None:
    till = make_till(program(), max_body_bytes=2000)
    body = json.dumps({"receipt_id": "R-1", "lines": [line(f"S{i}", "1.00") for i in range(40)]})

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield body.encode()

    r = till.http.post("/v1/receipts/calculate", content=chunks(), headers=JSON)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text
    assert served == []


def test_a_pos_gone_before_its_body_is_whole_is_no_error(
    make_till: Any, served: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time
    from urllib.parse import urlsplit

    till = make_till(program())
    url = urlsplit(till.url)
    with socket.create_connection((url.hostname, url.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/receipts/calculate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"receipt_id": "R-1"'
        )
        time.sleep(0.2)  # the till reads what came, and waits for the rest
    r = till.http.post("/v1/receipts/calculate", json={"receipt_id": "R-2", "lines": LINES})
    assert r.status_code == 200, r.text
    assert served == [1]
    assert not [rec for rec in caplog.records if rec.levelname in ("ERROR", "CRITICAL")]


def _ran_on(till: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each calculate of ``till`` runs on."""
    names: list[str] = []
    real = till.service.calculate

    def recorded(*args: Any, **kw: Any) -> Any:
        names.append(threading.current_thread().name)
        return real(*args, **kw)

    monkeypatch.setattr(till.service, "calculate", recorded)
    return names


def test_a_standalone_calculate_runs_on_the_event_loop(
    make_till: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    till = make_till(program())
    names = _ran_on(till, monkeypatch)
    assert till.calc("R-1", LINES, card=ANNA).status_code == 200
    # uvicorn's loop runs in the fixture's server thread; the pool's are AnyIO's workers.
    assert names and not names[0].startswith("AnyIO worker"), names


def test_a_calculate_waits_for_a_busy_data_file_in_a_worker_thread(
    make_till: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write in progress (the sync, a cards file loading) would stall the event loop: the
    calculate waits for it in the thread pool instead."""
    till = make_till(program())
    names = _ran_on(till, monkeypatch)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with till.service.db.write():
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(10)
    assert not till.service.calculates_quickly()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(till.calc, "R-1", LINES, card=ANNA)
        time.sleep(0.2)
        assert not pending.done()
        release.set()
        assert pending.result(10).status_code == 200
    thread.join(10)
    assert names and names[0].startswith("AnyIO worker"), names
    assert till.service.calculates_quickly()
