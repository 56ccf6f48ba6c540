"""The HQ client's failures: each a clear SyncError, never a crash or a hang.

Refusals come from the real HQ (revoked credential, wrong till, a bad cursor); a proxy's
5xx from the link in front of it; what no HQ would answer (HTML, not JSON, no answer in
time, a reply of the wrong shape) from a misbehaving loopback server or the stub.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.conftest import free_port, program
from tests.sync.badhq import MisbehavingHq
from tests.sync.realhq import ChainHq, HqLink, enroll
from tillgate.core.errors import HqBadReply, HqRefused, HqUnreachable
from tillgate.sync.client import HqClient


class _MisbehavingHq(BaseHTTPRequestHandler):
    """Not head office: a loopback server answering what a proxy or a broken HQ would, as
    the test path says (slow, an HTML page, a 502 page). Only for those cases."""

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
def misbehaving() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _MisbehavingHq)
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


def test_slow_hq_times_out(misbehaving: str) -> None:
    client = HqClient(
        url=f"{misbehaving}/slow", credential="c", timeout=httpx.Timeout(0.3), retry_seconds=1
    )
    started = time.monotonic()
    with pytest.raises(HqUnreachable, match="no answer in time"):
        client._once("GET", "/slow/x")
    assert time.monotonic() - started < 10  # bounded by the timeout, not by the server
    client.close()


def test_not_json_is_a_bad_reply(misbehaving: str) -> None:
    with (
        HqClient(url=misbehaving, credential="c") as client,
        pytest.raises(HqBadReply, match="not JSON"),
    ):
        client._once("GET", "/garbage")


def test_an_html_error_page_is_refused_with_its_status(misbehaving: str) -> None:
    with HqClient(url=misbehaving, credential="c") as client, pytest.raises(HqRefused) as exc:
        client._once("GET", "/badgateway")
    assert exc.value.status == 502 and exc.value.code == "http_502"


def client_of(hq: ChainHq, till: str = "till-1") -> tuple[HqClient, HqLink]:
    """An enrolled till's client to the real HQ (with a program in its feed), over a link
    that records every request."""
    hq.publish(program())
    cred = enroll(hq, till)
    link = HqLink()
    return HqClient(url=cred.url, credential=cred.credential, transport=link), link


def test_401_says_enroll_again(hq: ChainHq) -> None:
    client, _ = client_of(hq)
    assert client.changes(0, 10).cursor > 0
    hq.revoke_till("till-1")
    with pytest.raises(HqRefused, match=r"till-1 was revoked at .*; enroll the till again") as exc:
        client.changes(0, 10)
    assert exc.value.status == 401 and exc.value.code == "unauthorized"
    client.close()


def test_403_wrong_till_says_which_setting(hq: ChainHq) -> None:
    client, _ = client_of(hq)
    with pytest.raises(HqRefused, match=r"\[till\] id must be") as exc:
        client.push({"till": "till-2", "entries": []})
    assert exc.value.code == "wrong_till" and exc.value.status == 403
    assert hq.through("till-1") == 0 and hq.rows("SELECT * FROM tills WHERE id = 'till-2'") == []
    client.close()


def test_a_4xx_is_not_retried_a_5xx_is(hq: ChainHq) -> None:
    client, link = client_of(hq)
    link.fail_before = [500, 503]
    assert client.changes(0, 10).cursor == hq.cursor() > 0
    assert len(link.requests) == 3 and link.statuses == [200]
    with pytest.raises(HqRefused, match="400 invalid_request: cursor"):
        client.changes(-1, 10)
    assert len(link.requests) == 4 and link.statuses == [200, 400]
    client.close()


def test_a_wrong_shape_names_the_field() -> None:
    client = HqClient(
        url="http://hq.test",
        credential="c",
        transport=MisbehavingHq(httpx.Response(200, json={"through_seq": -1})),
    )
    with pytest.raises(HqBadReply, match="push reply: through_seq"):
        client.push({"till": "t", "entries": []})
    client = HqClient(
        url="http://hq.test", transport=MisbehavingHq(httpx.Response(200, json={"till": "t"}))
    )
    with pytest.raises(HqBadReply, match="enrolment reply: hq"):
        client.enroll("CODE")


def test_the_credential_is_sent_as_a_bearer_token(hq: ChainHq) -> None:
    cred = enroll(hq, "till-1")
    link = HqLink()
    client = HqClient(url=hq.url + "/", credential=cred.credential, transport=link)
    assert client.changes(5, 7).cursor == 5  # HQ knew the till by its credential
    assert link.requests[0].headers["authorization"] == f"Bearer {cred.credential}"
    assert str(link.requests[0].url) == f"{hq.url}/v1/sync/changes?cursor=5&cards=rows&limit=7"
    assert link.statuses == [200]
    client.close()
