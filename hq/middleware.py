"""Head office's outer layers: a request id on every answer, the JSON 500, bounded bodies.

:class:`RequestIds` is the outermost layer of the app: every response carries an
``X-Request-Id``, and an error no handler expected is logged once, with its traceback and
that id, and answered as a JSON ``500 internal_error`` naming the id; nothing of it reaches
uvicorn (which would log the traceback a second time) or Starlette's plain-text 500.
:func:`bounded_json` is a dependency of every route: the body is within
:func:`tillgate.hq.wire.check_json`'s bounds before any route parses it, whichever way it
parses it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tillgate.core.serving import error_response

from . import wire

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"


def route_of(scope: Scope) -> str:
    """The route's template for a log line (``/v1/admin/cards/{number}``): never the path
    itself, which may hold a card number."""
    return str(getattr(scope.get("route"), "path", "") or "(no route)")


def request_id(request: Request) -> str:
    """The id :class:`RequestIds` gave this request (``-`` outside it)."""
    return str(request.scope.get("state", {}).get("request_id", "-"))


class RequestIds:
    """Give each request an id (``X-Request-Id`` on every response) and answer any error no
    handler took as a JSON 500 with that id, its traceback logged here once.

    The outermost layer, so such an error never reaches uvicorn (a second traceback) or
    Starlette's plain-text 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, rid)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            logger.exception(
                "internal error (a defect) in %s %s, request %s",
                scope.get("method"),
                route_of(scope),
                rid,
            )
            if started:  # the status line is out: the connection ends short
                return
            response = error_response(
                500,
                "internal_error",
                f"internal error (request {rid}); see the head-office log",
                {"request_id": rid},
            )
            await response(scope, receive, send_with_id)


# A body up to this size is checked on the event loop: a few tens of microseconds, where
# a hop to the thread pool and back costs more than that (and a hold is on a till's clock).
INLINE_CHECK_BYTES = 4096


def bounded_json(
    *, unbounded: frozenset[str] = frozenset()
) -> Callable[[Request], Awaitable[None]]:
    """A dependency: every request body within wire's JSON bounds before any route; the
    paths in ``unbounded`` take other bodies than JSON (the cards CSV)."""

    async def check(request: Request) -> None:
        if request.url.path in unbounded:
            return
        body = await request.body()  # kept by the request: the route reads it again for free
        if len(body) > INLINE_CHECK_BYTES:
            # Off the event loop: a body at the size limit takes a good part of a second.
            await run_in_threadpool(wire.check_json, body)
        elif body:
            wire.check_json(body)

    return check
