"""The POS API as a FastAPI application (routes, auth, size limits, JSON errors).

A use case is a SQLite transaction in :class:`~tillgate.agent.usecases.TillService`, and
calculate and confirm may wait on head office: handlers run them in the thread pool
(:func:`_work`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute, serialize_response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tillgate.agent.usecases import TillService
from tillgate.core import __version__, errors
from tillgate.core.cards import mask_in_text
from tillgate.core.serving import (
    ASGIApp,
    BodyLimit,
    Direct,
    DirectHandler,
    Receive,
    Scope,
    Send,
    error_response,
)

from . import schemas as s
from .answers import calculate_json
from .docs_page import DOCS_HTML
from .guard import BrowserGuard, is_json_type, page_policy
from .panel import panel_html

logger = logging.getLogger(__name__)

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": s.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 415, 421, 503)
}


class BearerAuth:
    """Require ``Authorization: Bearer <token>`` on every /v1 route when a token is set.

    ``GET /v1/events`` also takes the token as ``?token=``: the hint panel's EventSource
    cannot send headers. The token is never logged (and the agent keeps no access log).
    """

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.token
            and scope["type"] == "http"
            and scope["path"].startswith("/v1/")
            and not (self._header_ok(scope) or self._query_ok(scope))
        ):
            refusal = "missing or wrong Authorization: Bearer token"
            await error_response(401, "unauthorized", refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _header_ok(self, scope: Scope) -> bool:
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        scheme, _, value = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(value.strip(), self.token)

    def _query_ok(self, scope: Scope) -> bool:
        if scope["path"] != "/v1/events" or scope.get("method") != "GET":
            return False
        given = parse_qs(scope.get("query_string") or b"", keep_blank_values=True).get(b"token")
        return given is not None and len(given) == 1 and hmac.compare_digest(given[0], self.token)


async def _work(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a use case in the thread pool; the answer is checked and encoded on the loop.

    A plain ``def`` handler with a response model costs two hops to the thread pool and
    back: FastAPI checks its answer against the model in the pool too. Each hop wakes a
    thread, which on a busy or virtual machine is most of a request's overhead
    (docs/performance.md, "holds: where the time goes"); an ``async`` handler that hands
    the use case over itself makes one.
    """
    return await run_in_threadpool(fn, *args, **kwargs)


def _validation_message(exc: RequestValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors()[:5]:
        loc = [str(x) for x in err.get("loc", ()) if x != "body"]
        path = ""
        for x in loc:
            path += f"[{x}]" if x.isdigit() else (("." if path else "") + x)
        if err.get("type") == "json_invalid":
            return f"malformed JSON: {err.get('ctx', {}).get('error', 'cannot parse')}"
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "is required"
        parts.append(f"{path}: {msg}" if path else msg)
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def create_app(
    service: TillService,
    *,
    token: str = "",
    host: str = "127.0.0.1",
    max_body_bytes: int = 1 << 20,
    status_extra: Callable[[], dict[str, Any]] | None = None,
) -> FastAPI:
    """The POS API over ``service``; ``status_extra`` adds device/sync state to /v1/status.

    ``host`` is ``pos_api.host``: the API answers to it as well as to loopback names.
    """
    app = FastAPI(
        title="tillgate POS API",
        version=__version__,
        description="Local API that POS software calls around every sale: calculate, "
        "confirm, cancel, refund, card lookup, status.",
        docs_url=None,
        redoc_url=None,
    )

    # Calculate, on the sale's clock, served past FastAPI's layers (core/serving.py);
    # inside BearerAuth, so the token is checked first. Filled at the end.
    direct: dict[str, DirectHandler] = {}
    app.add_middleware(Direct, routes=direct, on_error=lambda: app.exception_handlers)
    app.add_middleware(BearerAuth, token=token)
    app.add_middleware(BodyLimit, limit=max_body_bytes, setting="pos_api.max_body_bytes")
    # Outermost (added last): a cross-site or foreign-Host request is refused before
    # anything else looks at it, and every answer gets the browser headers.
    app.add_middleware(BrowserGuard, host=host)

    @app.exception_handler(errors.ApiError)
    async def api_error(_: Request, exc: errors.ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(errors.StorageFullError)
    async def storage_full(_: Request, exc: errors.StorageFullError) -> JSONResponse:
        logger.error("storage full: %s", exc)
        return error_response(503, "storage_full", str(exc))

    @app.exception_handler(errors.StoreError)
    async def store_error(_: Request, exc: errors.StoreError) -> JSONResponse:
        logger.error("store error: %s", exc)
        return error_response(503, "store_unavailable", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "invalid_request",  # e.g. a body FastAPI could not parse at all
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
        }.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def defect(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error (a defect): %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error; see the agent log")

    rid = Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:#\-]{0,63}$", description="receipt_id")

    @app.post(
        "/v1/receipts/calculate",
        response_model=s.CalculateOut,
        responses=ERROR_RESPONSES,
        tags=["receipts"],
    )
    async def calculate(body: s.CalculateIn) -> Any:
        """Price the open basket: discounts, points to redeem and accrue, hints, print items."""
        return await _work(service.calculate, body.to_request())

    @app.post(
        "/v1/receipts/{receipt_id}/confirm",
        response_model=s.ConfirmOut,
        responses=ERROR_RESPONSES,
        tags=["receipts"],
    )
    async def confirm(body: s.ConfirmIn | None = None, receipt_id: str = rid) -> Any:
        """Commit the last calculation: ledger entries are durable before this answers."""
        body = body or s.ConfirmIn()
        return await _work(service.confirm, receipt_id, paid=body.paid, fiscal_id=body.fiscal_id)

    @app.post(
        "/v1/receipts/{receipt_id}/cancel",
        response_model=s.CancelOut,
        responses=ERROR_RESPONSES,
        tags=["receipts"],
    )
    async def cancel(receipt_id: str = rid) -> Any:
        """Abandon the sale and release any hold."""
        return await _work(service.cancel, receipt_id)

    @app.post(
        "/v1/receipts/{receipt_id}/refund",
        response_model=s.RefundOut,
        responses=ERROR_RESPONSES,
        tags=["receipts"],
    )
    async def refund(body: s.RefundIn, receipt_id: str = rid) -> Any:
        """Return some lines (or all): points reversed/returned in proportion, never over."""
        lines = [(ln.index, ln.qty) for ln in body.lines] if body.lines is not None else None
        if lines is not None and not lines:
            raise errors.InvalidRequest("lines is empty; omit it to return the whole receipt")
        return await _work(service.refund, receipt_id, refund_id=body.refund_id, lines=lines)

    @app.get(
        "/v1/cards/{card:path}",
        response_model=s.CardLookupOut,
        responses=ERROR_RESPONSES,
        tags=["cards"],
    )
    async def card(card: str = Path(max_length=512)) -> Any:
        """A card by number, track data, QR payload or phone: balance, hints, history."""
        return await _work(service.card_lookup, card)

    @app.post("/v1/session/card", responses=ERROR_RESPONSES, tags=["cards"])
    def present(body: s.PresentIn) -> Any:
        """Present a card at the till (what a reader does); the next calculate uses it."""
        return service.present(body.card, source=body.source)

    @app.get(
        "/v1/events",
        tags=["till"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def events(request: Request) -> StreamingResponse:
        """Server-Sent Events for the cashier's screen: card, hints, receipt, device, sync.

        The latest event of each kind comes first, so a screen that (re)connects is current
        at once; a comment line every 15 s keeps proxies from closing an idle stream.
        """
        bus = service.events
        sub, latest = bus.subscribe(asyncio.get_running_loop())

        async def stream() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                for event in latest:
                    yield event.sse()
                idle = 0.0
                while not bus.closed:
                    try:
                        item = await asyncio.wait_for(sub.queue.get(), timeout=1.0)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        idle += 1.0
                        if idle >= 15:
                            idle = 0.0
                            yield ": ping\n\n"
                        continue
                    if item is None:
                        return
                    idle = 0.0
                    yield item.sse()
            finally:
                bus.unsubscribe(sub)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/v1/status", tags=["till"])
    def status() -> Any:
        """The till's identity, connection state, sync backlog and devices."""
        st = service.settings
        out: dict[str, Any] = {
            "till": st.till,
            "store": st.store,
            "version": __version__,
            "offline": service.offline,
            "last_sync": None,
        }
        out.update(service.status())
        presented = service.session.current(service.clock.now())
        # The card a swipe or scan started, masked: the next receipt will use it.
        out["card_session"] = (
            {"card": mask_in_text(presented.raw), "source": presented.source}
            if presented is not None
            else None
        )
        out["devices"] = {
            "printer": {"status": "not_configured"},
            "scanner": {"status": "not_configured"},
            "card_reader": {"status": "not_configured"},
            "intercept": {"status": "disabled"},
        }
        if status_extra is not None:
            extra = status_extra()
            # The program's and the product list's versions are the service's; their files
            # (standalone) are the daemon's.
            for part in ("program", "products"):
                if isinstance(out.get(part), dict) and isinstance(extra.get(part), dict):
                    extra[part] = out[part] | extra[part]
            out.update(extra)
        return out

    @app.get("/", include_in_schema=False)
    def panel() -> HTMLResponse:
        # The cashier's hint panel: no data in it (the events are), so no token either.
        st = service.settings
        page = panel_html(
            language=st.language,
            till=st.till,
            store=st.store,
            card_session_seconds=service.session.seconds,
        )
        policy = page_policy(page)  # its own inline script and style, by hash
        return HTMLResponse(
            page, headers={"Cache-Control": "no-store", "Content-Security-Policy": policy}
        )

    docs_policy = page_policy(DOCS_HTML)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # Self-contained (no CDN): a till may have no internet.
        return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": docs_policy})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    direct["/v1/receipts/calculate"] = _direct_calculate(
        service, _route(app, "/v1/receipts/calculate")
    )
    return app


def _route(app: FastAPI, path: str) -> APIRoute:
    return next(r for r in app.routes if isinstance(r, APIRoute) and r.path == path)


def _direct_calculate(service: TillService, route: APIRoute) -> DirectHandler:
    """``POST /v1/receipts/calculate`` without FastAPI's layers, answered as its route would.

    The body is parsed and checked by the route's model (pydantic's own JSON parser); one
    that does not parse or validate goes to the route, for FastAPI's own error texts. The
    answer is encoded as FastAPI would encode it against the route's response model
    (``answers.py``; an answer of another shape is checked and encoded by FastAPI's own
    ``serialize_response``). ``test_direct.py`` holds the two paths to the same bytes.
    """

    async def calculate(request: Request) -> Response | None:
        if not is_json_type(request.headers.get("content-type", "")):
            return None  # a POST with no body and no type (guard.py): FastAPI answers it
        try:
            body = s.CalculateIn.model_validate_json(await request.body())
        except ValidationError:  # malformed JSON too
            return None
        if service.calculates_quickly():
            out = service.calculate(body.to_request())  # ≈ 1 ms on the loop, no hop
        else:
            out = await _work(service.calculate, body.to_request())
        content = calculate_json(out)
        if content is None:
            content = await serialize_response(
                field=route.response_field, response_content=out, dump_json=True
            )
        return Response(content, media_type="application/json")

    return calculate
