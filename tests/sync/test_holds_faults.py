"""A head office that is slow, answers nonsense, or refuses: a hold is "no answer" within
``sync.hold_timeout_ms``, and the receipt is priced offline — never an error at the POS."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import BORIS, program
from tests.sync.badhq import Answer, BadHqServer, Drip, HugeReply, MisbehavingHq, error
from tests.sync.realhq import Chain, ChainHq, card
from tillgate.agent.usecases.ports import HoldAsk, HoldEnd
from tillgate.sync.holds import HqHolds

ASK = HoldAsk(receipt_id="R-1", card=BORIS, points=100, exact=False, coupons=(), seconds=60)
DATA = program(accrual_delay_days=0, expiry_days=0, max_redeem_percent=100)


@pytest.fixture
def till(make_chain: Callable[..., Chain], hq: ChainHq) -> Chain:
    t = make_chain("till-a", data=DATA, holds=True)
    hq.import_cards(card(BORIS, opening_balance=1000))
    t.syncer.run_once()
    return t


@pytest.fixture
def bad(hq: ChainHq) -> Iterator[BadHqServer]:
    with BadHqServer(hq.url) as server:
        yield server


def holds_via(url: str, till: Chain, timeout_ms: int = 300) -> HqHolds:
    return HqHolds(url=url, credential=till.credential.credential, timeout_ms=timeout_ms)


@pytest.mark.parametrize("headers", [False, True], ids=["slow-body", "slow-headers"])
def test_a_slow_head_office_is_no_answer_within_the_timeout(
    till: Chain, bad: BadHqServer, headers: bool
) -> None:
    bad.arm("/v1/holds", Drip(every=0.05, headers=headers))
    holds = holds_via(bad.url, till)
    began = time.monotonic()
    assert holds.reserve(ASK) is None
    assert time.monotonic() - began < 0.3 + 0.5  # the deadline, plus a busy machine
    holds.close()


def test_a_slow_head_office_prices_the_receipt_offline(till: Chain, bad: BadHqServer) -> None:
    bad.arm("/v1/holds", Drip(every=0.05))
    slow = dataclasses.replace(till.service, reservations=holds_via(bad.url, till))
    began = time.monotonic()
    r = slow.calculate(
        till_request("R-1", "500.00"),
    )
    assert time.monotonic() - began < 0.3 + 0.7
    # program.offline.redeem_per_card = 500 by default; the receipt is 500.00 at 100%.
    assert r["offline"] is True and r["redeemed"]["points"] == 500
    assert r["hints"][0]["kind"] == "offline"
    # The confirm cannot reach head office either; the push tells it later.
    bad.arm("/v1/holds/resolve", Drip(every=0.05))
    assert slow.confirm("R-1")["redeemed"]["points"] == 500
    assert till.rows("SELECT resolution, sent_at IS NULL FROM hq_holds") == [("confirmed", 1)]
    till.syncer.run_once()
    assert till.rows("SELECT sent_at IS NULL FROM hq_holds") == [(0,)]


def till_request(receipt: str, amount: str) -> object:
    from tillgate.agent.api.schemas import CalculateIn

    return CalculateIn.model_validate(
        {
            "receipt_id": receipt,
            "card": BORIS,
            "redeem": "max",
            "lines": [{"sku": "A", "name": "a", "qty": 1, "price": amount}],
        }
    ).to_request()


@pytest.mark.parametrize(
    "reply",
    [
        httpx.Response(200, content=b"<html>proxy</html>"),
        httpx.Response(200, json={"receipt_id": "R-1"}),  # no grant
        httpx.Response(200, json={"receipt_id": "R-1", "granted": 101, "seconds": 60}),
        httpx.Response(200, json={"receipt_id": "R-2", "granted": 1, "seconds": 60}),
        httpx.Response(200, json={"receipt_id": "R-1", "granted": -5, "seconds": 60}),
        error(500, "internal_error"),
        error(503, "store_unavailable"),
        error(401, "unauthorized", "revoked"),
        error(404, "not_found"),  # an older head office without holds
    ],
    ids=[
        "html",
        "no-grant",
        "more-than-asked",
        "other-receipt",
        "negative",
        "500",
        "503",
        "401",
        "404",
    ],
)
@pytest.mark.parametrize("line", ["socket", "httpx-transport"])
def test_a_reply_that_is_not_a_grant_is_no_answer(reply: httpx.Response, line: str) -> None:
    """Through the till's own hold line on a real socket, and through HqClient over an
    httpx transport (the seam the in-process tests use)."""
    if line == "httpx-transport":
        holds = HqHolds(
            url="http://hq.invalid", credential="x", transport=MisbehavingHq(reply, reply)
        )
        assert holds.reserve(ASK) is None
        assert holds.resolve(HoldEnd(receipt_id="R-1", resolution="cancelled")) is False
        holds.close()
        return
    with BadHqServer() as server:
        for path in ("/v1/holds", "/v1/holds/resolve"):
            server.arm(path, Answer(reply))
        holds = HqHolds(url=server.url, credential="x")
        assert holds.reserve(ASK) is None
        assert holds.resolve(HoldEnd(receipt_id="R-1", resolution="cancelled")) is False
        holds.close()


@pytest.mark.parametrize(
    "reply",
    [
        HugeReply(),  # its size said up front: refused unread
        HugeReply(declared=False),  # not said: read no further than the limit
        HugeReply(status=500),  # an error's body: its status is the answer
        Answer(httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"\x1f\x8b")),
        Answer(httpx.Response(200, json={"receipt_id": "R-1", "granted": 100, "seconds": 60,
                                         "coupons": [{"code": "X" * 70_000}]})),
    ],
    ids=["huge", "huge-undeclared", "huge-error", "compressed", "over-the-limit"],
)  # fmt: skip
def test_a_reply_too_big_or_compressed_is_no_answer_and_read_no_further(
    till: Chain, bad: BadHqServer, reply: Answer | HugeReply
) -> None:
    bad.arm("/v1/holds", reply)
    holds = holds_via(bad.url, till)
    began = time.monotonic()
    assert holds.reserve(ASK) is None
    assert time.monotonic() - began < 0.3 + 0.5
    assert reply.served.bytes_sent < 64 << 20  # of 200 MiB: the till stopped reading
    bad.disarm()
    grant = holds.reserve(ASK)  # head office is back: granted, on a new connection
    assert grant is not None and grant.granted == 100
    holds.close()


def test_a_head_office_that_is_down_answers_at_once(till: Chain) -> None:
    till.link.down = True
    began = time.monotonic()
    r = till.calc("R-1", "500.00", card=BORIS, redeem="max")
    assert time.monotonic() - began < 0.3 + 0.5
    assert r["offline"] is True


def test_a_head_office_under_a_path_is_asked_there() -> None:
    """``hq.url`` may name a path (a proxy's); the hold line asks under it, as the sync does."""
    reply = httpx.Response(200, json={"receipt_id": "R-1", "granted": 100, "available": 100,
                                      "seconds": 60})  # fmt: skip
    with BadHqServer() as server:
        answer = server.arm("/tillgate/v1/holds", Answer(reply))
        holds = HqHolds(url=f"{server.url}/tillgate/", credential="c-1")
        grant = holds.reserve(ASK)
        holds.close()
    assert grant is not None and grant.granted == 100
    seen = answer.served.headers[0]
    assert seen["authorization"] == "Bearer c-1" and seen["content-type"] == "application/json"
    assert seen["accept-encoding"] == "identity"
