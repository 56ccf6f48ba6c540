"""The connection a till keeps to head office for its holds: no handshake per hold, and
still never a hold past ``sync.hold_timeout_ms`` (sync/deadline.py, ``Kept``).

Between the till's client and the real head office sits a TCP relay (tests/sync/relay.py)
that counts connections and breaks them the way a network does.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BORIS
from tests.hq.helpers import make_cert
from tests.hq.test_cli import free_port, spawn_hq, stop
from tests.sync import test_holds_faults as faults
from tests.sync.realhq import Chain, ChainHq
from tests.sync.relay import TcpRelay
from tillgate.agent.usecases.ports import HoldAsk, HoldEnd
from tillgate.hq.server import KEEP_ALIVE_SECONDS as HQ_KEEPS
from tillgate.sync import holds as till_holds
from tillgate.sync.holds import HqHolds

# The till with Boris's card at head office, as the hold fault tests have it (a fixture).
till = faults.till


def ask(receipt_id: str) -> HoldAsk:
    return dataclasses.replace(faults.ASK, receipt_id=receipt_id)


@pytest.fixture
def relay(hq: ChainHq) -> Iterator[TcpRelay]:
    with TcpRelay(hq.url) as r:
        yield r


@pytest.fixture
def holds(till: Chain, relay: TcpRelay) -> Iterator[HqHolds]:
    h = HqHolds(url=relay.url, credential=till.credential.credential)
    yield h
    h.close()


def test_holds_and_their_ends_in_a_row_share_one_connection(
    holds: HqHolds, relay: TcpRelay
) -> None:
    for i in range(5):
        grant = holds.reserve(ask(f"R-{i}"))
        assert grant is not None and grant.granted == 100
        assert holds.resolve(HoldEnd(receipt_id=f"R-{i}", resolution="cancelled", card=BORIS))
    assert relay.accepted == 1


def test_a_connection_head_office_dropped_is_made_anew_within_the_same_hold(
    holds: HqHolds, relay: TcpRelay
) -> None:
    assert holds.reserve(ask("R-1")) is not None
    relay.drop_on_next_request()  # a server that timed it out just as the request came
    began = time.monotonic()
    grant = holds.reserve(ask("R-2"))
    # Granted, not priced offline: the request went again on a new connection.
    assert grant is not None and grant.granted == 100
    assert time.monotonic() - began < 0.3
    assert (relay.resets, relay.accepted) == (1, 2)


def test_a_kept_connection_gone_silent_ends_at_the_deadline(
    holds: HqHolds, relay: TcpRelay, hq: ChainHq
) -> None:
    assert holds.reserve(ask("R-1")) is not None
    relay.go_silent()  # a NAT that forgot the connection: nothing arrives, nothing is said
    began = time.monotonic()
    assert holds.reserve(ask("R-2")) is None  # no answer: this receipt is priced offline
    took = time.monotonic() - began
    assert 0.3 - 0.02 <= took < 0.3 + 0.5, took
    # The next hold is made on a new connection, and granted.
    assert holds.reserve(ask("R-3")) is not None
    assert relay.accepted == 2
    assert {h["receipt_id"] for h in hq.api.admin.get("/v1/admin/holds").json()["holds"]} >= {
        "R-1",
        "R-3",
    }


def test_a_reply_trickling_in_on_a_kept_connection_ends_at_the_deadline(
    holds: HqHolds, relay: TcpRelay
) -> None:
    # A byte every 50 ms: every read gets something, so httpx's own timeout never fires;
    # the deadline shuts the kept connection down.
    assert holds.reserve(ask("R-1")) is not None
    relay.trickle(0.05)
    began = time.monotonic()
    assert holds.reserve(ask("R-2")) is None
    took = time.monotonic() - began
    assert 0.3 - 0.02 <= took < 0.3 + 0.5, took
    assert holds.reserve(ask("R-3")) is not None
    assert relay.accepted == 2


def test_a_connection_idle_past_its_keep_alive_is_not_used_again(
    till: Chain, relay: TcpRelay
) -> None:
    holds = HqHolds(url=relay.url, credential=till.credential.credential, keep_alive=0.2)
    try:
        assert holds.reserve(ask("R-1")) is not None
        time.sleep(0.4)
        assert holds.reserve(ask("R-2")) is not None
        assert relay.accepted == 2
    finally:
        holds.close()


def test_head_office_keeps_a_connection_longer_than_a_till_does() -> None:
    # The till must be the one to let go: a server that closes first races the till's
    # next request (which then goes again, on a new connection, costing a handshake).
    assert HQ_KEEPS > till_holds.KEEP_ALIVE_SECONDS


def test_hq_serve_over_tls_keeps_a_tills_connection_and_its_deadline_still_holds(
    tmp_path: Path,
) -> None:
    """A real ``hq serve`` over TLS: the connection outlives uvicorn's own 5 s keep-alive,
    and a reply trickling in on a kept TLS connection still ends at the hold's deadline."""
    cert, key = make_cert(tmp_path)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    args = ["--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)]
    proc = spawn_hq([*args, "--data-dir", str(tmp_path)], cwd=tmp_path, url=url)
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        credential = _enrolled_till(url, tmp_path, trust)
        with TcpRelay(url) as relay:
            holds = HqHolds(url=relay.url.replace("http:", "https:"), credential=credential,
                            verify=trust)  # fmt: skip
            try:
                assert holds.reserve(ask("R-1")) is not None
                time.sleep(5.5)  # past uvicorn's default keep-alive of 5 s
                assert holds.reserve(ask("R-2")) is not None
                assert relay.accepted == 1
                # What a deadline does to the kept connection reaches it under TLS (the
                # TLS socket is kept, not the plain one TLS took over).
                assert holds.client.kept is not None and holds.client.kept.shutdown()
                assert holds.reserve(ask("R-3")) is not None
                assert relay.accepted == 2
                relay.trickle(0.05)
                began = time.monotonic()
                assert holds.reserve(ask("R-4")) is None
                assert time.monotonic() - began < 0.3 + 0.5
                assert holds.reserve(ask("R-5")) is not None
                assert relay.accepted == 3
            finally:
                holds.close()
    finally:
        stop(proc)


def _enrolled_till(url: str, data_dir: Path, trust: ssl.SSLContext) -> str:
    """A till credential at the head office at ``url``, with Boris's card imported."""
    token = (data_dir / "hq-admin.token").read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=auth, verify=trust, timeout=10) as admin:

        def ok(path: str, **kw: Any) -> Any:
            r = admin.post(path, **kw)
            assert r.status_code == 200, r.text
            return r.json()

        csv = f"number,tier,status,balance\n{BORIS},gold,active,1000\n"
        ok("/v1/admin/cards/import", content=csv, headers={"Content-Type": "text/csv"})
        code = ok("/v1/admin/enroll-codes", json={"store": "s", "till": "t"})["code"]
        return str(ok("/v1/enroll", json={"code": code})["credential"])
