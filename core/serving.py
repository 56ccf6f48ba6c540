"""Serving HTTP, for the POS API and head office alike: binding, the server, body limits.

:func:`bind` opens the listening socket up front (a busy port is a clear error);
:func:`server_class` is uvicorn's server with the signal handling both daemons need;
:class:`Direct` serves the few routes on a sale's clock past FastAPI's layers.

A request-body size limit: 413 before anything parses.

A body announced too large (``Content-Length``) is refused before it is read; a body sent
without a length (chunked) is counted as it arrives and refused once it passes the limit.
The refusal is the APIs' usual ``{"error": {"code": "payload_too_large", "message"}}``.
"""

from __future__ import annotations

import gc
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from . import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def error_response(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    """The APIs' error body: ``{"error": {"code", "message", …details}}``.

    ``details`` (a dict) become fields of the error beside ``code`` and ``message``, e.g.
    ``redeemable`` of ``insufficient_points``; they never replace those two.
    """
    body: dict[str, Any] = {"code": code, "message": message}
    if isinstance(details, dict):
        body.update({k: v for k, v in details.items() if k not in body})
    return JSONResponse({"error": body}, status_code=status)


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


# A direct route's answer; None: the app answers the request itself (FastAPI's own texts).
DirectHandler = Callable[[Request], Awaitable[Response | None]]


@dataclass(frozen=True)
class _Template:
    path: str  # what a log line names as the route (never a path holding a card number)


class Direct:
    """Serve a few POST routes without FastAPI's routing, dependency and encoding layers.

    The POS calculate and head office's hold routes are on a sale's clock, and on a busy
    or virtual machine each layer a request passes costs more than it does in a loop
    (docs/performance.md, "holds: where the time goes"). A handler gets the request with
    its body read; it answers, or returns None to hand the request to the app as it came
    (the body replayed), so that what it does not take on (a body that does not validate,
    say) gets the app's own answer. Its errors go to the app's exception handlers
    (``on_error()``, looked up along the error's classes); one no handler takes is raised
    to the layers outside. Every other request passes through. Inside the body limit and
    whatever authenticates the caller.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Mapping[str, DirectHandler],
        on_error: Callable[[], Mapping[Any, Callable[..., Any]]],
    ) -> None:
        self.app = app
        self.routes = routes
        self.on_error = on_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = None
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.routes.get(scope["path"])
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = _Template(scope["path"])
        request = Request(scope, receive)
        body, response = b"", None
        try:
            body = await request.body()
            response = await handler(request)
        except ClientDisconnect:
            return  # gone before its body was whole: nobody to answer, nothing was done
        except Exception as exc:
            handlers = self.on_error()
            take = next((handlers[k] for k in type(exc).__mro__ if k in handlers), None)
            if take is None:
                raise
            response = await take(request, exc)
        if response is None:
            await self.app(scope, _replay(body, receive), send)
            return
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for a request whose body was read already: the body, then the rest."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def bind(host: str, port: int, *, setting: str = "set pos_api.port") -> socket.socket:
    """Bind a listening socket up front so a busy port is a clear error, not a log line.

    ``setting`` tells the user how to choose another port (the agent's and HQ's differ).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets, and
    # without it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise errors.TillgateError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); another program may "
            f"be using the port: stop it or {setting}"
        ) from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _JoinedWrites:
    """A connection's transport that sends a response's head with the start of its body.

    uvicorn writes the status line and headers, then the body: two sends, so on loopback
    two transmissions (each runs the receiving side's TCP work in the sender's system call)
    and two wake-ups of the POS for one answer. Here a head waits for the next write, and
    goes with it in one; never longer than the event loop's next turn, so a streamed
    answer (the panel's events) starts as before. Nothing is reordered: whatever is
    written while a head waits goes after it, and closing sends it first.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: Any, loop: Any) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif data[:9] == b"HTTP/1.1 " and data[9:12] != b"100":  # a head (not 100 Continue)
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def writelines(self, data: Any) -> None:
        self.write(b"".join(data))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return len(self._held or b"") + int(self._transport.get_write_buffer_size())

    def __getattr__(self, name: str) -> Any:  # the rest as the transport has it
        return getattr(self._transport, name)


def http_protocol() -> type:
    """uvicorn's HTTP protocol (httptools where installed, as uvicorn's own choice), whose
    answers go out in one send each (:class:`_JoinedWrites`); for ``uvicorn.Config(http=)``."""
    base: type
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        base = HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn's pure-Python parser
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol

    class Protocol(base):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:
            super().connection_made(_JoinedWrites(transport, self.loop))

    return Protocol


def server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, minus its habit of re-raising SIGTERM after shutdown.

        uvicorn re-sends the captured signal to the process once it has stopped, which
        would kill it before the scheduler is stopped and the data file closed; the daemon
        (and ``hq serve``) installs the same handlers itself and exits 0 after a clean stop
        instead.
        """

        on_exit: Callable[[], None] | None = None

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # Open event streams would hold the graceful shutdown up: end them first.
            if self.on_exit is not None:
                self.on_exit()
            super().handle_exit(sig, frame)

        def run_until_signal(self, sock: socket.socket) -> None:
            """Serve on ``sock`` until SIGINT/SIGTERM; the previous handlers come back after."""
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
            # What start-up made (modules, the program, the app) lives as long as the
            # process: out of the collector's sight, a full collection no longer walks it.
            # Before, one took ~70 ms in the middle of a calculate now and then.
            gc.collect()
            gc.freeze()
            try:
                self.run(sockets=[sock])
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server
