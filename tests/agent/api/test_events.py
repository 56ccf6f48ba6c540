"""GET /v1/events: the cashier's screen stream (Server-Sent Events) over real HTTP."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from typing import Any

import httpx

from tests.conftest import ANNA, line, program
from tillgate.agent.usecases.events import EventBus


class Stream:
    """Reads an SSE stream in a thread; events arrive on a queue as (kind, data)."""

    def __init__(self, url: str) -> None:
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=30))
        self._thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._thread.start()
        assert self.ready.wait(10), "the stream did not open"

    def _run(self, url: str) -> None:
        try:
            with self._client.stream("GET", f"{url}/v1/events") as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                self.ready.set()
                kind = None
                for raw in r.iter_lines():
                    if raw.startswith("event: "):
                        kind = raw[7:]
                    elif raw.startswith("data: ") and kind:
                        self.events.put((kind, json.loads(raw[6:])))
                        kind = None
        except httpx.HTTPError:
            return

    def next(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        while True:
            k, data = self.events.get(timeout=timeout)
            if k == kind:
                return data

    def close(self) -> None:
        self._client.close()


def test_card_receipt_and_hints_events_reach_the_screen(make_till):
    till = make_till(program())
    stream = Stream(till.url)
    try:
        r = till.http.post(
            "/v1/session/card", json={"card": f";{ANNA}=2812?", "source": "card_reader"}
        )
        assert r.status_code == 200
        card = stream.next("card")
        assert card["holder"] == "Анна" and card["number"] == "2900•••••0011"
        assert card["source"] == "card_reader"
        assert ANNA not in json.dumps(card)  # never the full number on the wire

        till.ok_calc("R1", [line("a", "100.00")])  # no card in the request: the session's
        receipt = stream.next("receipt")
        assert receipt["status"] == "calculated" and receipt["card"]["source"] == "session"
        hints = stream.next("hints")
        assert hints["receipt_id"] == "R1" and hints["hints"]

        assert till.confirm("R1").status_code == 200
        confirmed = stream.next("receipt")
        assert confirmed["status"] == "confirmed"
        # What was paid, for the screen, though the confirm response itself has no totals.
        assert confirmed["total"] == receipt["total"] and "discount" in confirmed
        till.http.post("/v1/receipts/R1/refund", json={"refund_id": "F1"})
        assert stream.next("receipt")["status"] == "refunded"
    finally:
        stream.close()


def test_a_screen_that_reconnects_gets_the_current_state_first(make_till):
    till = make_till(program())
    till.ok_calc("R1", [line("a", "100.00")], card=ANNA)
    stream = Stream(till.url)
    try:
        receipt = stream.next("receipt")
        assert receipt["receipt_id"] == "R1"
        assert stream.next("hints")["receipt_id"] == "R1"
    finally:
        stream.close()


def test_a_slow_subscriber_loses_old_events_and_never_blocks_publishing():
    bus = EventBus(queue_size=3)
    loop = asyncio.new_event_loop()
    try:
        sub, latest = bus.subscribe(loop)
        assert latest == []
        for i in range(10):
            bus.publish("receipt", {"n": i})  # returns at once, nobody reads yet
        loop.run_until_complete(asyncio.sleep(0))
        got = [sub.queue.get_nowait().data["n"] for _ in range(sub.queue.qsize())]
        assert got == [7, 8, 9]
        bus.close()
        loop.run_until_complete(asyncio.sleep(0))
        assert sub.queue.get_nowait() is None
    finally:
        loop.close()
    # publishing after the loop is gone is harmless
    bus.publish("sync", {"offline": False})


def test_a_new_subscriber_gets_each_devices_status_and_the_latest_of_each_kind():
    bus = EventBus()
    loop = asyncio.new_event_loop()
    try:
        paper = {"device": "printer", "event": "status_changed", "status": "paper_out"}
        bus.publish("device", paper)
        bus.publish(
            "device", {"device": "card_reader", "event": "status_changed", "status": "online"}
        )
        bus.publish("device", {"device": "card_reader", "event": "card_presented", "card": "x"})
        bus.publish("device", {"device": "scanner", "event": "barcode_scanned", "code": "y"})
        bus.publish("sync", {"offline": True})
        bus.publish("sync", {"offline": False})
        _, latest = bus.subscribe(loop)
        shown = [(e.kind, e.data.get("device"), e.data.get("event")) for e in latest]
        # The printer's paper-out survives the swipe and the scan that came after it.
        assert shown == [
            ("device", "printer", "status_changed"),
            ("device", "card_reader", "status_changed"),
            ("device", "scanner", "barcode_scanned"),
            ("sync", None, None),
        ]
        assert latest[0].data == paper and latest[-1].data == {"offline": False}
    finally:
        loop.close()


def test_unknown_event_kind_is_refused():
    import pytest

    with pytest.raises(ValueError, match="unknown event kind"):
        EventBus().publish("gossip", {})
