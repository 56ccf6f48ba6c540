"""A request-body size limit for the POS API and head office: 413 before anything parses.

A body announced too large (``Content-Length``) is refused before it is read; a body sent
without a length (chunked) is counted as it arrives and refused once it passes the limit.
The refusal is the APIs' usual ``{"error": {"code": "payload_too_large", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_response(status: int, code: str, message: str) -> JSONResponse:
    """The APIs' error body: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (``by_path`` sets others) with 413.

    ``setting`` names the config key behind the limit, for the message.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit: int,
        by_path: Mapping[str, int] | None = None,
        setting: str = "",
    ) -> None:
        self.app = app
        self.limit = limit
        self.by_path = dict(by_path or {})
        self.setting = f" ({setting})" if setting else ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.limit)
        message = f"the request body is larger than {limit} bytes{self.setting}"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                if int(length) > limit:
                    await error_response(413, "payload_too_large", message)(scope, receive, send)
                    return
            except ValueError:
                bad = error_response(400, "invalid_request", "bad Content-Length")
                await bad(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            received = await receive()
            if received["type"] == "http.request":
                seen += len(received.get("body", b""))
                if seen > limit:
                    # An HTTPException raised while FastAPI reads the body is passed on
                    # as it is (any other error there becomes a generic 400); both apps
                    # answer it as payload_too_large.
                    raise HTTPException(413, detail=message)
            return received

        await self.app(scope, limited, send)
