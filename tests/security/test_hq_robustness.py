"""Head office under hostile input: bounded JSON, bounded ids, a JSON 500 with a request id,
and no plain HTTP beyond loopback unless asked for.

A real HQ on loopback on SQLite and on PostgreSQL (tests/hq's fixtures), and a real
``tillgate hq serve`` process where the command line or the process log is what is tested.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.hq import conftest as hq_fixtures
from tests.hq.helpers import ADMIN, HqTest, make_cert
from tests.hq.test_cli import spawn_hq, stop
from tillgate.hq import wire

# tests/hq's fixtures, by name: a running HQ on SQLite and on PostgreSQL.
hq = hq_fixtures.hq
db_url = hq_fixtures.db_url
pg_base_url = hq_fixtures.pg_base_url
pg_session = hq_fixtures.pg_session
sqlite_template = hq_fixtures.sqlite_template


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def deep_enroll(depth: int) -> bytes:
    return f'{{"code": "x", "extra": {nested(depth)}}}'.encode()


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage().startswith("refused ")]


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def ids(r: httpx.Response) -> str:
    rid = r.headers.get("x-request-id", "")
    assert len(rid) == 16, r.headers
    return rid


# ---------------------------------------------------------------- bounded JSON


def test_deeply_nested_json_is_400_on_every_kind_of_route(
    hq: HqTest, caplog: pytest.LogCaptureFixture
) -> None:
    """Once a 500 and a RecursionError traceback per request, unauthenticated."""
    till = hq.enroll()
    before = hq.snapshot()
    very_deep = deep_enroll(100_000)
    cases: list[tuple[httpx.Client, str]] = [
        (hq.client(), "/v1/enroll"),  # no credential at all
        (till.http, "/v1/sync/push"),
        (till.http, "/v1/holds"),
        (hq.admin, "/v1/admin/enroll-codes"),
        (hq.admin, "/v1/admin/program"),  # parsed by admin.py, not wire.py
        (hq.admin, "/v1/admin/cards/2900000000011/adjust"),
    ]
    caplog.set_level(logging.INFO)
    for client, path in cases:
        caplog.clear()
        r = client.post(path, content=very_deep, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (path, r.text)
        error = r.json()["error"]
        assert error["code"] == "json_too_deep" and error["max_depth"] == wire.MAX_DEPTH
        assert "nested deeper than 32" in error["message"]
        assert_no_traceback(caplog)
        [line] = refusals(caplog)  # one line, with the request id the client got
        assert "json_too_deep" in line.getMessage() and ids(r) in line.getMessage()
    assert hq.snapshot() == before


def test_the_depth_limit_is_exact_and_text_inside_strings_does_not_count(hq: HqTest) -> None:
    client = hq.client()
    # {"code": .., "extra": [[…]]}: the object is one level, so 31 arrays reach 32.
    r = client.post("/v1/enroll", content=deep_enroll(wire.MAX_DEPTH - 1))
    assert r.status_code == 403 and r.json()["error"]["code"] == "enrolment_refused"
    r = client.post("/v1/enroll", content=deep_enroll(wire.MAX_DEPTH))
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep"
    # Brackets, quotes and digits inside a string are text.
    code = "[" * 35 + '\\"' + "9" * 25  # JSON-encoded: a backslash and a quote escaped
    r = client.post("/v1/enroll", json={"code": code})
    assert r.status_code == 403, r.text


def test_a_deeply_nested_toml_program_is_refused_as_invalid(
    hq: HqTest, caplog: pytest.LogCaptureFixture
) -> None:
    """The TOML inside ``{"toml": …}`` is text to the JSON scan: its own parser bounds it."""
    before = hq.snapshot()
    caplog.set_level(logging.INFO)
    for toml in ("a = " + nested(100_000), "[program]\nname = " + nested(900, '"x"')):
        r = hq.admin.post("/v1/admin/program", json={"toml": toml})
        assert r.status_code == 422, r.text  # as any program that does not validate
        error = r.json()["error"]
        assert error["code"] == "invalid_program" and "nested too deeply" in error["errors"][0]
        assert_no_traceback(caplog)
    assert hq.snapshot() == before


@pytest.mark.parametrize(
    ("literal", "code"),
    [
        ("1" * 5000, "number_too_large"),  # once a 500: Python's 4300-digit limit
        ("9" * (wire.MAX_DIGITS + 1), "number_too_large"),
        ("1e999", "number_too_large"),  # an infinity as a float
        ("-1e999", "number_too_large"),
        ("0." + "1" * (wire.MAX_DIGITS + 1), "number_too_large"),
        ("1" * wire.MAX_DIGITS, "invalid_request"),  # parsed: the field's range check says no
        ("NaN", "invalid_request"),
        ("Infinity", "invalid_request"),
    ],
)
def test_huge_numbers_are_400_on_till_and_admin_routes(
    hq: HqTest, caplog: pytest.LogCaptureFixture, literal: str, code: str
) -> None:
    till = hq.enroll()
    before = hq.snapshot()
    caplog.set_level(logging.INFO)
    bodies = [
        (till.http, "/v1/sync/push", f'{{"till": "{till.id}", "entries": [{{"seq": {literal}}}]}}'),
        (till.http, "/v1/holds", f'{{"receipt_id": "R1", "points": {literal}}}'),
        (hq.admin, "/v1/admin/cards/2900000000011/adjust", f'{{"points": {literal}}}'),
        (hq.admin, "/v1/admin/coupons/issue", f'{{"promotion": "p", "count": {literal}}}'),
    ]
    for client, path, body in bodies:
        r = client.post(path, content=body.encode())
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["code"] == code, r.text
    assert_no_traceback(caplog)
    assert len(refusals(caplog)) == len(bodies)
    assert hq.snapshot() == before


def test_numbers_within_bounds_still_reach_the_fields_checks(hq: HqTest) -> None:
    till = hq.enroll()
    r = till.http.post("/v1/holds", json={"receipt_id": "R1", "points": 2**63})
    assert r.status_code == 400 and "points: must be <= 9223372036854775807" in r.text
    r = till.http.post("/v1/holds", content=b'{"receipt_id": "R1", "points": 1.5}')
    assert r.status_code == 400 and "points: must be a whole number" in r.text
    r = hq.admin.post("/v1/admin/enroll-codes", content=b"\xff\xfe{}")
    assert r.status_code == 400 and "not UTF-8" in r.json()["error"]["message"]


# ---------------------------------------------------------------- bounded ids in the URL


def test_huge_cursors_and_limits_are_400_and_huge_ids_are_not_found(
    hq: HqTest, caplog: pytest.LogCaptureFixture
) -> None:
    """``cursor=99999999999999999999999`` was a 500 OverflowError."""
    till = hq.enroll()
    caplog.set_level(logging.INFO)
    for query in (
        "cursor=99999999999999999999999",
        f"cursor={2**63}",
        "cursor=-1",
        "cursor=" + "9" * 5000,
        "limit=99999999999999999999999",
        "limit=0",
    ):
        r = till.http.get(f"/v1/sync/changes?{query}")
        assert r.status_code == 400, (query, r.text)
        assert r.json()["error"]["code"] == "invalid_request"
        assert r.json()["error"]["message"].startswith(query.split("=")[0])
    r = till.http.get(f"/v1/sync/changes?cursor={2**63 - 1}&limit=2000")
    assert r.status_code == 200, r.text  # the largest of each is still a question
    # A quarantine flag's id beyond any the database holds is simply not there.
    for flag in ("99999999999999999999999", str(2**63), "0", "-5", "9" * 5000):
        for verb in ("release", "reject"):
            r = hq.admin.post(f"/v1/admin/flags/{flag}/{verb}", json={})
            assert r.status_code in (400, 404), (flag, r.text)
            assert r.json()["error"]["code"] in ("not_found", "invalid_request")
    assert_no_traceback(caplog)


# ---------------------------------------------------------------- the unexpected


def damage_the_program(hq: HqTest) -> None:
    """A program row edited by hand into something no code expects (valid JSON, wrong
    shape): every push and hold reads the program in force."""
    with hq.hq.db.write() as tx:
        tx.execute(
            "INSERT INTO programs (version, name, body, published_at) VALUES (?, ?, ?, ?)",
            (7, "damaged", '{"program": "edited by hand"}', "2026-11-23T06:00:00.000000+00:00"),
        )


def test_an_unexpected_error_is_a_json_500_with_a_request_id_and_one_traceback(
    hq: HqTest, caplog: pytest.LogCaptureFixture
) -> None:
    till = hq.enroll()
    damage_the_program(hq)
    caplog.set_level(logging.INFO)
    caplog.clear()
    r = till.http.post("/v1/holds", json={"receipt_id": "R1", "points": 0})
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/json"
    rid = ids(r)
    error = r.json()["error"]
    assert error["code"] == "internal_error" and error["request_id"] == rid
    assert rid in error["message"] and "head-office log" in error["message"]
    assert "ValidationError" not in r.text and "Traceback" not in r.text  # nothing internal
    tracebacks = [rec for rec in caplog.records if rec.exc_info]
    assert len(tracebacks) == 1, [rec.getMessage() for rec in caplog.records]
    assert rid in tracebacks[0].getMessage() and "/v1/holds" in tracebacks[0].getMessage()
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert errors == tracebacks  # uvicorn logged nothing of it a second time
    # The server carries on, and every answer has an id of its own.
    ok = hq.client().get("/healthz")
    assert ok.status_code == 200 and ids(ok) != rid
    assert ids(hq.admin.get("/v1/admin/tills")) not in (rid, ids(ok))


# ---------------------------------------------------------------- hq serve: the process


def _serve(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "hq", "serve", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_plain_http_beyond_loopback_exits_2_before_anything_starts(tmp_path: Path) -> None:
    data = tmp_path / "hq"
    for host in ("0.0.0.0", "::", "192.0.2.10", "hq.example"):
        r = _serve(tmp_path, "--host", host, "--port", str(free_port()), "--data-dir", str(data))
        assert r.returncode == 2, r.stderr
        [line] = r.stderr.strip().splitlines()
        assert f"--host {host}" in line
        assert "--tls-cert" in line and "--insecure-http" in line
    assert not data.exists()  # no token, no database: nothing ran


def test_insecure_http_runs_beyond_loopback_with_a_warning(tmp_path: Path) -> None:
    port = free_port()
    proc = spawn_hq(
        ["--host", "0.0.0.0", "--port", str(port), "--insecure-http"],
        cwd=tmp_path,
        url=f"http://127.0.0.1:{port}",
    )
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert r.status_code == 200 and ids(r)
    finally:
        stop(proc)
    log = (tmp_path / "hq.log").read_text()
    assert "WARNING" in log and "plain HTTP on 0.0.0.0 (--insecure-http)" in log


def test_tls_beyond_loopback_serves_https_only(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    proc = spawn_hq(
        ["--host", "0.0.0.0", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
        cwd=tmp_path,
        url=url,
    )
    try:
        token = (tmp_path / "hq-admin.token").read_text().strip()
        with httpx.Client(
            base_url=url, verify=ssl.create_default_context(cafile=str(cert)), timeout=10
        ) as client:
            r = client.get("/v1/admin/tills", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json() == {"tills": []}
            r = client.post("/v1/enroll", content=deep_enroll(1000))
            assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep"
        with pytest.raises(httpx.HTTPError):  # plain HTTP is not spoken there
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        stop(proc)
    log = (tmp_path / "hq.log").read_text()
    assert f"serving on https://0.0.0.0:{port}" in log
    assert "Traceback" not in log and "plain HTTP" not in log


def test_the_process_log_has_one_line_per_refusal_and_no_traceback(tmp_path: Path) -> None:
    """What an operator sees: ``hq serve``'s own log while someone throws bad JSON at it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn_hq(["--port", str(port)], cwd=tmp_path, url=url)
    try:
        bad: list[Any] = [
            deep_enroll(100_000),
            b'{"code": ' + b"1" * 5000 + b"}",
            b'{"code": 1e999}',
        ]
        for body in bad:
            r = httpx.post(f"{url}/v1/enroll", content=body, timeout=10)
            assert r.status_code == 400, r.text
        r = httpx.get(f"{url}/v1/admin/tills", headers={"Authorization": f"Bearer {ADMIN}"})
        assert r.status_code == 401
    finally:
        stop(proc)
    log = (tmp_path / "hq.log").read_text()
    assert "Traceback" not in log and "RecursionError" not in log, log
    refused = [ln for ln in log.splitlines() if "refused POST /v1/enroll" in ln]
    assert len(refused) == len(bad), log
