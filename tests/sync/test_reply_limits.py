"""Every reply from head office is read with a size limit and within a deadline.

The replies come from :class:`~tests.sync.badhq.BadHqServer`, a real HTTP server on
loopback, so the client's real network stack is what stops reading: a reply of 200 MiB
(with or without its length, compressed, or as an error page), a reply that drips a byte
at a time (in its body or in its headers), JSON shaped to blow up when parsed. Each must
end in a clear SyncError soon, having read no more than the limit.
"""

from __future__ import annotations

import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest

from tests.conftest import program
from tests.sync.badhq import BadHqServer, Drip, HugeReply, MiB, MisbehavingHq
from tests.sync.realhq import ChainHq, HqLink, card, enroll
from tillgate.core.errors import HqBadReply, HqRefused, HqUnreachable
from tillgate.sync.client import HqClient, ReplyLimits
from tillgate.sync.wire import ChangePage, parse

T = TypeVar("T")
PUSH, CHANGES = "/v1/sync/push", "/v1/sync/changes"
# The socket buffers on both ends of a loopback connection hold a few MiB that the server
# has "sent" but the client never read; reading 200 MiB would show as far more than this.
SENT_SLACK = 24 * MiB


@pytest.fixture
def bad() -> Iterator[BadHqServer]:
    with BadHqServer() as server:
        yield server


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` on a thread of its own; fails the test if it is still going after
    ``seconds`` (a read that never ends must not hang the test run too)."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except BaseException as exc:
            out["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"still reading head office's reply after {seconds} s"
    if "error" in out:
        raise out["error"]
    return out["value"]  # type: ignore[no-any-return]


def peak_allocated(call: Callable[[], Any]) -> int:
    """The most memory Python held at once while ``call`` ran (its exception re-raised)."""
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("declared", [True, False], ids=["with-length", "until-close"])
def test_a_200_mib_page_is_refused_at_the_limit(bad: BadHqServer, declared: bool) -> None:
    sent = bad.arm(CHANGES, HugeReply(200 * MiB, declared=declared)).served
    client = HqClient(url=bad.url, credential="c")  # the default limits
    errors: list[Exception] = []

    def pull() -> None:
        try:
            client.changes(0, 4)
        except HqBadReply as exc:
            errors.append(exc)

    peak = within(30, lambda: peak_allocated(pull))
    client.close()
    limit = ReplyLimits().page_bytes
    assert peak < 3 * limit, f"held {peak / MiB:.0f} MiB to refuse a 200 MiB reply"
    (exc,) = errors
    assert f"change page of more than {limit} bytes" in str(exc)
    # Asked again for 2 changes, then 1 (a page of big cards gets through that way); a bad
    # reply is not retried otherwise.
    assert [h["path"] for h in sent.headers] == [
        f"{CHANGES}?cursor=0&cards=rows&limit={n}" for n in (4, 2, 1)
    ]
    deadline = time.monotonic() + 10
    while sent.hung_up < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent.hung_up == sent.requests == 3
    assert sent.bytes_sent < 3 * (limit + SENT_SLACK)


def test_a_page_too_big_is_asked_for_in_smaller_pages(hq: ChainHq) -> None:
    """Cards with many lots make big pages: the till gets through them a few at a time."""
    numbers = [f"29000000{i:05d}" for i in range(40)]
    hq.publish(program())
    hq.import_cards(*(card(n, holder="Х" * 150) for n in numbers))
    cred = enroll(hq, "till-1")
    link = HqLink()
    limits = ReplyLimits(page_bytes=4096)
    client = HqClient(url=cred.url, credential=cred.credential, transport=link, limits=limits)
    cursor, seen, pages = 0, [], 0
    while True:
        page = client.changes(cursor, 500)
        pages += 1
        seen += [c.number for c in page.cards] + [row[0] for row in page.plain]
        cursor = page.cursor
        if not page.more:
            break
    client.close()
    assert sorted(seen) == numbers and cursor == hq.cursor()
    asked = [int(r.url.params["limit"]) for r in link.requests]
    assert asked[:2] == [500, 250] and min(asked) >= 1 and pages > 1


def test_a_200_mib_push_reply_and_error_page_are_read_no_further_than_their_limits(
    bad: BadHqServer,
) -> None:
    limits = ReplyLimits(reply_bytes=256 << 10, error_bytes=16 << 10)
    client = HqClient(url=bad.url, credential="c", limits=limits, retry_attempts=1)
    pushed = bad.arm(PUSH, HugeReply(200 * MiB, declared=False)).served
    with pytest.raises(HqBadReply, match=r"push reply .*more than 262144 bytes"):
        within(30, lambda: client.push({"till": "t", "entries": []}))
    # A 500 of 200 MiB: refused with its status alone, its body read only to the limit.
    failed = bad.arm(CHANGES, HugeReply(200 * MiB, status=500, declared=False)).served
    with pytest.raises(HqRefused) as exc:
        within(30, lambda: client.changes(0, 10))
    assert exc.value.status == 500 and exc.value.code == "http_500"
    client.close()
    assert pushed.bytes_sent < SENT_SLACK and failed.bytes_sent < SENT_SLACK


def test_a_compressed_bomb_is_never_inflated(bad: BadHqServer) -> None:
    """200 MiB of JSON gzipped to a few hundred KiB: under any byte limit on the wire, so
    the client asks for no compression and refuses a compressed reply unread."""

    class Gzipped(HugeReply):
        def body(self) -> Iterator[bytes]:
            squeeze = zlib.compressobj(1, zlib.DEFLATED, 31)
            for piece in super().body():
                if out := squeeze.compress(piece):
                    yield out
            yield squeeze.flush()

        def answer(self, handler: Any, body: bytes, stop: threading.Event) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Encoding", "gzip")
            handler.end_headers()
            try:
                for piece in self.body():
                    handler.wfile.write(piece)
            except OSError:
                pass  # the till hung up unread, as it should

    served = bad.arm(CHANGES, Gzipped(200 * MiB)).served
    client = HqClient(url=bad.url, credential="c")
    with pytest.raises(HqBadReply, match="gzip-encoded"):
        within(30, lambda: client.changes(0, 10))
    client.close()
    assert served.headers[0]["accept-encoding"] == "identity"


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_reply_dripping_a_byte_at_a_time_ends_at_the_deadline(
    bad: BadHqServer, where: str
) -> None:
    """httpx's read timeout is per read: a byte every 0.2 s never trips a 2 s timeout."""
    dripping = bad.arm(CHANGES, Drip(0.2, headers=where == "headers")).served
    client = HqClient(
        url=bad.url, credential="c", timeout=httpx.Timeout(2.0), limits=ReplyLimits(seconds=1.5)
    )
    started = time.monotonic()
    with pytest.raises(HqUnreachable, match=r"did not finish answering .* within 1\.5 s"):
        within(20, lambda: client.changes(0, 10))
    took = time.monotonic() - started
    client.close()
    # Retried as any failure to answer is (three attempts in tests), each cut at 1.5 s.
    attempts = dripping.requests
    assert 1 <= attempts <= 3 and 1.5 * attempts <= took < 1.5 * attempts + 2, (attempts, took)
    deadline = time.monotonic() + 5
    while dripping.hung_up < attempts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dripping.hung_up == attempts  # the till closed every one of them
    assert all(1.5 <= t < 3 for t in dripping.hang_up_after), dripping.hang_up_after
    assert dripping.bytes_sent > 3 * attempts  # it was answering, slowly, all along


def test_a_slow_but_steady_reply_within_the_deadline_arrives(bad: BadHqServer) -> None:
    class SlowPage(Drip):
        def stream(self) -> Iterator[bytes]:
            page = b'{"cursor": 7, "more": false}'
            yield b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            yield f"Content-Length: {len(page)}\r\n\r\n".encode()
            yield from (page[i : i + 4] for i in range(0, len(page), 4))

    bad.arm(CHANGES, SlowPage(0.1))
    with HqClient(url=bad.url, credential="c", limits=ReplyLimits(seconds=5)) as client:
        assert within(20, lambda: client.changes(0, 10)).cursor == 7


def test_deeply_nested_json_is_a_bad_reply_not_a_crash() -> None:
    nested = httpx.Response(200, content=b"[" * 100_000)
    client = HqClient(url="http://hq.test", credential="c", transport=MisbehavingHq(nested))
    with pytest.raises(HqBadReply, match="nested too deeply"):
        client.changes(0, 10)


def test_a_page_of_a_million_bad_cards_stops_at_the_first() -> None:
    """Within the byte limit, but every card bad: the error names the first and stops
    there, instead of building a million errors (a gigabyte) to report them all."""
    page = {"cursor": 1, "cards": [{}] * 1_000_000}
    with pytest.raises(HqBadReply, match=r"cards\.0\.number") as exc:
        parse(ChangePage, page, what="change page")
    cause = exc.value.__cause__
    assert cause is not None and cause.error_count() == 1  # type: ignore[attr-defined]
