"""A misbehaving head office: canned replies that a correct HQ never sends. Nothing else.

Every sync test talks to the real HQ (:mod:`tests.sync.realhq`). This stub stands in for
it only where the real one cannot be made to misbehave, to show the till refuses cleanly
and keeps its data whole:

* a change page that breaks the protocol (a field of the wrong type, not an object) or
  whose cursor goes back;
* a ``409 sequence_gap`` that points past the till's own ledger, or names no seq;
* a reply of the wrong shape (``through_seq`` -1, an enrolment reply without ``hq``).

It answers its replies in order, one per request, and fails the test if asked for more.
Plugged into :class:`~tests.sync.realhq.HqLink` as ``stub`` it answers instead of HQ
until its replies run out; on its own it is an HqClient transport.
HTML error pages, non-JSON and slow answers come from a loopback server in test_client.py.
"""

from __future__ import annotations

from typing import Any

import httpx


def error(status: int, code: str, message: str = "", **extra: Any) -> httpx.Response:
    """An error reply in the protocol's shape."""
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


def hq_card(number: str, *, balance: int) -> dict[str, Any]:
    """A card as the change feed shows it, for a canned page."""
    return {"number": number, "status": "active", "balance": balance, "lots": []}


class MisbehavingHq(httpx.BaseTransport):
    """Answers each request with the next canned reply."""

    def __init__(self, *replies: httpx.Response) -> None:
        self.replies = list(replies)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert self.replies, f"the misbehaving HQ stub has no reply left for {request.url.path}"
        canned = self.replies.pop(0)
        return httpx.Response(canned.status_code, headers=canned.headers, content=canned.content)
