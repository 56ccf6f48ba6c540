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
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per answer the direct path encoded: ``"answers"`` by answers.py,
    ``"fastapi"`` by FastAPI's ``serialize_response``."""
    seen: list[str] = []
    real, encode = api_app.serialize_response, api_app.calculate_json

    async def counted(**kw: Any) -> Any:
        seen.append("fastapi")
        return await real(**kw)

    def encoded(out: dict[str, Any]) -> bytes | None:
        content = encode(out)
        if content is not None:
            seen.append("answers")
        return content

    monkeypatch.setattr(api_app, "serialize_response", counted)
    monkeypatch.setattr(api_app, "calculate_json", encoded)
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
    pair: Any, served: list[str], body: dict[str, Any]
) -> None:
    fast, slow = both(pair(program(COUPON10)), body)
    assert served == ["answers"], "the direct path did not answer"
    assert fast.status_code == slow.status_code == 200, (fast.text, slow.text)
    assert fast.content == slow.content
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"


PRINTING = program(
    {
        "id": "coffee-15",
        "name": "Купон на кофе",
        "reward": {
            "kind": "coupon",
            "title": "−15% на кофе",
            "valid_days": 30,
            "discount": {"kind": "percent", "value": 15, "on": "order"},
        },
    },
    {
        "id": "thanks",
        "name": "Спасибо",
        "reward": {"kind": "message", "text": "Спасибо за покупку!"},
        "print": {"text": "Ждём вас снова"},
    },
    {
        "id": "gift",
        "name": "Подарок",
        "when": {"min_total": "9000.00"},
        "reward": {"kind": "amount", "value": "100.00", "on": "order"},
        "hint": {"near": "9000.00", "text": "Ещё {missing} ₽ до подарка"},
    },
)


def test_printed_coupons_and_messages_are_answered_as_the_route_answers_them(
    pair: Any, served: list[str]
) -> None:
    """A coupon's print item has no ``text``: the route writes it as null, so must the
    direct path; hints and messages in Cyrillic go out as UTF-8 on both."""
    body = {"receipt_id": "R-1", "lines": LINES, "card": ANNA}
    fast, slow = both(pair(PRINTING), body)
    assert served == ["answers"]
    assert fast.status_code == slow.status_code == 200, (fast.text, slow.text)
    printed = fast.json()["print"]
    assert [p["kind"] for p in printed] == ["coupon", "message", "message"], printed
    assert printed[0]["text"] is None and fast.json()["hints"], fast.text
    # The coupon's code is signed with the till's own serial: the two tills' codes differ.
    code = printed[0]["code"].encode()
    assert fast.content.replace(code, b"X") == slow.content.replace(
        slow.json()["print"][0]["code"].encode(), b"X"
    )


def test_an_answer_of_another_shape_is_left_to_fastapi() -> None:
    """``calculate_json`` encodes only what has the models' keys in their order."""
    from tillgate.agent.api import schemas as s
    from tillgate.agent.api.answers import calculate_json

    line_out = dict.fromkeys(s.LineOut.model_fields, "1.00") | {"promotions": []}
    out: dict[str, Any] = {
        "receipt_id": "R-1",
        "offline": False,
        "card": None,
        "lines": [line_out],
        "subtotal": "1.00",
        "discount": "0.00",
        "redeemed": {"points": 0, "amount": "0.00"},
        "redeem_max": 0,
        "total": "1.00",
        "accrued": {"points": 0, "available_from": None},
        "promotions": [],
        "coupons": {"applied": [], "rejected": []},
        "hints": [],
        "print": [{"kind": "coupon", "code": "X"}],
    }
    got = calculate_json(out)
    assert got is not None
    assert json.loads(got)["print"] == [
        {
            "kind": "coupon",
            "title": None,
            "text": None,
            "code": "X",
            "valid_until": None,
            "promotion": None,
        }
    ]
    assert all(f.default is None for k, f in s.PrintOut.model_fields.items() if k != "kind")
    assert calculate_json(out | {"extra": 1}) is None
    assert calculate_json({k: v for k, v in out.items() if k != "hints"}) is None
    assert calculate_json(dict(reversed(out.items()))) is None
    assert calculate_json(out | {"lines": [line_out, {**line_out, "more": 1}]}) is None
    assert calculate_json(out | {"card": {"number": "1"}}) is None
    assert calculate_json(out | {"print": [{"title": "no kind"}]}) is None
    assert calculate_json(out | {"print": [{"kind": "message", "colour": "red"}]}) is None
    assert calculate_json(out | {"coupons": {"applied": [], "rejected": [{"code": "X"}]}}) is None


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
    pair: Any, served: list[str], body: Any, status: int | None, code: str | None
) -> None:
    fast, slow = both(pair(program(), max_lines=2), body)
    assert served == [], "an error was encoded as an answer"
    assert fast.status_code == slow.status_code and fast.status_code >= 400, fast.text
    assert status is None or fast.status_code == status, fast.text
    assert code is None or fast.json()["error"]["code"] == code, fast.text
    assert fast.content == slow.content


def test_what_the_direct_path_leaves_alone(make_till: Any, served: list[str]) -> None:
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
    assert r.status_code == 200 and served == ["answers"], r.text


def test_the_token_is_checked_before_the_direct_path(make_till: Any, served: list[str]) -> None:
    till = make_till(program(), token="s3cret")
    body = {"receipt_id": "R-1", "lines": LINES}
    r = till.http.post("/v1/receipts/calculate", json=body, headers={"Authorization": "Bearer no"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert served == []
    with till.service.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM receipts").fetchone()[0] == 0
    assert till.http.post("/v1/receipts/calculate", json=body).status_code == 200
    assert served == ["answers"]


def test_a_body_over_the_limit_is_refused_on_the_direct_path(
    make_till: Any, served: list[str]
) -> None:
    till = make_till(program(), max_body_bytes=2000)
    body = json.dumps({"receipt_id": "R-1", "lines": [line(f"S{i}", "1.00") for i in range(40)]})

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        yield body.encode()

    r = till.http.post("/v1/receipts/calculate", content=chunks(), headers=JSON)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text
    assert served == []


def test_a_pos_gone_before_its_body_is_whole_is_no_error(
    make_till: Any, served: list[str], caplog: pytest.LogCaptureFixture
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
    assert served == ["answers"]
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
