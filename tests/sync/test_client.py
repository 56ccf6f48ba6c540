"""The HQ client's failures: each a clear SyncError, never a crash or a hang."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.sync.fakehq import error
from tillgate.agent.errors import HqBadReply, HqRefused, HqUnreachable
from tillgate.sync.client import HqClient


class _Handler(BaseHTTPRequestHandler):
    """A loopback 'HQ' that misbehaves as the test path says."""

    def do_GET(self) -> None:
        if self.path.startswith("/slow"):
            time.sleep(2)
        body, ctype, status = b'{"cursor": 0}', "application/json", 200
        if "garbage" in self.path:
            body, ctype = b"<html>proxy error</html>", "text/html"
        elif "badgateway" in self.path:
            body, ctype, status = b"<html>502</html>", "text/html", 502
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the slow case: the client gave up, as it should

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def test_hq_down_is_unreachable() -> None:
    client = HqClient(url=f"http://127.0.0.1:{free_port()}", credential="c")
    with pytest.raises(HqUnreachable, match=r"cannot reach head office at http://127\.0\.0\.1"):
        client.changes(0, 10)
    client.close()


def test_slow_hq_times_out(server: str) -> None:
    client = HqClient(
        url=f"{server}/slow", credential="c", timeout=httpx.Timeout(0.3), retry_seconds=1
    )
    started = time.monotonic()
    with pytest.raises(HqUnreachable, match="no answer in time"):
        client._once("GET", "/slow/x")
    assert time.monotonic() - started < 10  # bounded by the timeout, not by the server
    client.close()


def test_not_json_is_a_bad_reply(server: str) -> None:
    with (
        HqClient(url=server, credential="c") as client,
        pytest.raises(HqBadReply, match="not JSON"),
    ):
        client._once("GET", "/garbage")


def test_an_html_error_page_is_refused_with_its_status(server: str) -> None:
    with HqClient(url=server, credential="c") as client, pytest.raises(HqRefused) as exc:
        client._once("GET", "/badgateway")
    assert exc.value.status == 502 and exc.value.code == "http_502"


def mock(*answers: httpx.Response) -> HqClient:
    queue = list(answers)
    return HqClient(
        url="http://hq.test",
        credential="c",
        transport=httpx.MockTransport(lambda request: queue.pop(0)),
    )


def test_401_says_enroll_again() -> None:
    client = mock(error(401, "unauthorized", "credential revoked"))
    with pytest.raises(HqRefused, match="credential revoked; enroll the till again") as exc:
        client.changes(0, 10)
    assert exc.value.status == 401


def test_403_wrong_till_says_which_setting() -> None:
    client = mock(error(403, "wrong_till", "till-2 pushed as till-1"))
    with pytest.raises(HqRefused, match=r"\[till\] id must be") as exc:
        client.push({"till": "till-1", "entries": []})
    assert exc.value.code == "wrong_till"


def test_a_4xx_is_not_retried_a_5xx_is() -> None:
    ok = httpx.Response(200, json={"cursor": 3})
    assert mock(error(500, "internal"), error(503, "busy"), ok).changes(0, 10).cursor == 3
    client = mock(error(400, "invalid_request"), ok)
    with pytest.raises(HqRefused, match="invalid_request"):
        client.changes(0, 10)


def test_a_wrong_shape_names_the_field() -> None:
    client = mock(httpx.Response(200, json={"through_seq": -1}))
    with pytest.raises(HqBadReply, match="push reply: through_seq"):
        client.push({"till": "t", "entries": []})
    client = mock(httpx.Response(200, json={"till": "t"}))
    with pytest.raises(HqBadReply, match="enrolment reply: hq"):
        client.enroll("CODE")


def test_the_credential_is_sent_as_a_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"cursor": 0})

    client = HqClient(
        url="http://hq.test/", credential="s3cret", transport=httpx.MockTransport(handler)
    )
    client.changes(5, 7)
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert str(seen[0].url) == "http://hq.test/v1/sync/changes?cursor=5&limit=7"
