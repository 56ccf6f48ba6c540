"""Head office's HTTP API (docs/sync-protocol.md): enrolment, push, pull, admin endpoints.

Every refusal is ``{"error": {"code", "message", …details}}`` with its status, and is
raised before or inside the one transaction a request writes in, so a refused request
writes nothing. Bodies are read raw and parsed by :mod:`tillgate.hq.wire` (paths in the
protocol's words, size limits before parsing); the work runs in the thread pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tillgate.core import __version__, errors
from tillgate.core.serving import BodyLimit, error_response

from . import admin, audit, corrections, feed, holds, ledger, quarantine, tills, wire
from .service import Hq

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_BODY = 8 << 20  # a push of 1000 entries is well under 1 MiB
MAX_IMPORT = 512 << 20  # a cards CSV of a few million cards
IMPORT_PATH = "/v1/admin/cards/import"


OPERATOR_HEADER = "x-tillgate-operator"


def operator(request: Request) -> str | None:
    """The person an admin verb says it runs for (recorded in the audit log as given)."""
    name = request.headers.get(OPERATOR_HEADER, "").strip()
    return "".join(c for c in name if c.isprintable())[:100] or None


def create_app(hq: Hq) -> FastAPI:
    """The HQ API over ``hq``."""
    app = FastAPI(
        title="tillgate head office",
        version=__version__,
        description="Enrolment, ledger push and change feed for tills; admin endpoints.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(BodyLimit, limit=MAX_BODY, by_path={IMPORT_PATH: MAX_IMPORT})

    @app.exception_handler(errors.ApiError)
    async def api_error(_: Request, exc: errors.ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(errors.StoreError)
    async def store_error(_: Request, exc: errors.StoreError) -> JSONResponse:
        logger.error("database error: %s", exc)
        return error_response(503, "store_unavailable", f"head office database: {exc}")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
        msg = str(first.get("msg", "invalid"))
        return error_response(400, "invalid_request", f"{loc}: {msg}" if loc else msg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_request" if exc.status_code == 400 else "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def defect(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error (a defect): %s", type(exc).__name__)
        return error_response(500, "internal_error", "internal error; see the head-office log")

    async def work(fn: Callable[..., R], *args: Any) -> R:
        return await run_in_threadpool(fn, *args)

    def till_of(token: str, tx: Any) -> tills.TillId:
        try:
            return tills.authenticate(tx, token)
        except errors.Unauthorized:
            if hq.is_admin(token):
                raise errors.Forbidden(
                    "the admin token is not a till credential; enrol the till"
                ) from None
            raise

    async def require_admin(request: Request) -> None:
        token = tills.bearer(request.headers.get("authorization"))
        if hq.is_admin(token):
            return

        def refuse() -> None:
            with hq.db.read() as tx:
                if tills.find_till(tx, token) is not None:
                    raise errors.Forbidden("a till credential cannot call admin endpoints")
            raise errors.Unauthorized(
                "wrong admin token; it is in hq-admin.token in the HQ data directory"
            )

        await work(refuse)

    # ------------------------------------------------------------ tills

    @app.post("/v1/enroll", tags=["tills"])
    async def enroll(request: Request) -> Any:
        """Exchange a one-time enrolment code for this till's credential."""
        body = wire.parse(wire.EnrollIn, wire.decode_json(await request.body()))

        def run() -> dict[str, Any]:
            till, credential = tills.enroll(hq.db, code=body.code, now=hq.clock.now())
            logger.info("till %s of store %s enrolled", till.id, till.store)
            return {
                "till": till.id,
                "store": till.store,
                "credential": credential,
                "coupon_key": hq.coupon_key.hex(),
                "hq": hq.instance_id,
            }

        return await work(run)

    @app.post("/v1/sync/push", tags=["tills"])
    async def push(request: Request) -> Any:
        """Store a batch of this till's ledger entries, coupon uses and new cards."""
        token = tills.bearer(request.headers.get("authorization"))
        raw = await request.body()

        def run() -> dict[str, Any]:
            with hq.db.write() as tx:
                till = till_of(token, tx)
                # Parsed after authentication: a stranger learns nothing from error details.
                batch = wire.parse_push(raw)
                now = hq.clock.now()
                reply = ledger.push(tx, till, batch, now, policies=hq.policies)
                reply["holds"] = holds.after_push(tx, till.id, batch, reply["through_seq"], now)
                return reply

        return await work(run)

    @app.post("/v1/holds", tags=["tills"])
    async def hold(request: Request) -> Any:
        """Reserve, for an open receipt, the points it redeems and the coupons it applies."""
        token = tills.bearer(request.headers.get("authorization"))
        raw = await request.body()

        def run() -> dict[str, Any]:
            # A hold is a reservation: it is not worth a disk flush on the calculate's clock
            # (a power cut may lose the last ones; docs/sync-protocol.md, "Online holds").
            with hq.db.write(durable=False) as tx:
                till = till_of(token, tx)
                body = wire.parse(wire.HoldIn, wire.decode_json(raw))
                policy = ledger.policy_of(tx, hq.policies)
                return holds.reserve(tx, till, body, hq.clock.now(), policy)

        return await work(run)

    @app.post("/v1/holds/resolve", tags=["tills"])
    async def hold_resolve(request: Request) -> Any:
        """End a receipt's hold: confirmed (the points it redeemed), cancelled, released."""
        token = tills.bearer(request.headers.get("authorization"))
        raw = await request.body()

        def run() -> dict[str, Any]:
            with hq.db.write() as tx:
                till = till_of(token, tx)
                body = wire.parse(wire.HoldResolutionIn, wire.decode_json(raw))
                status = holds.resolve(tx, till.id, body, hq.clock.now())
                return {"receipt_id": body.receipt_id, "status": status}

        return await work(run)

    @app.get("/v1/sync/changes", tags=["tills"])
    async def changes(request: Request, cursor: int = 0, limit: int = feed.DEFAULT_LIMIT) -> Any:
        """Everything that changed after ``cursor``: program, cards, coupons."""
        token = tills.bearer(request.headers.get("authorization"))

        def run() -> dict[str, Any]:
            with hq.db.read() as tx:
                till = till_of(token, tx)
            return feed.changes(hq.db, till, cursor=cursor, limit=limit, now=hq.clock.now())

        return await work(run)

    # ------------------------------------------------------------ admin

    @app.post("/v1/admin/program", tags=["admin"])
    async def program(request: Request) -> Any:
        """Validate a program/promotions file whole and publish it as a new version."""
        await require_admin(request)
        parsed = admin.decode_program_body(await request.body())
        return await work(admin.publish_program, hq.db, parsed, hq.clock.now())

    @app.post(IMPORT_PATH, tags=["admin"])
    async def cards_import(request: Request) -> Any:
        """Import or update cards from CSV; nothing is imported if any row is bad."""
        await require_admin(request)
        raw = await request.body()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.InvalidCards(
                "the cards file is not UTF-8 text",
                details={"errors": [f"byte {exc.start}: not UTF-8"]},
            ) from exc
        return await work(admin.import_cards, hq.db, text, hq.clock.now())

    @app.get("/v1/admin/cards/{number}", tags=["admin"])
    async def card(request: Request, number: str) -> Any:
        """A card as HQ knows it: holder, tier, balance, pending, lots and every entry."""
        await require_admin(request)
        return await work(admin.show_card, hq.db, number, hq.clock.now())

    @app.post("/v1/admin/enroll-codes", tags=["admin"])
    async def enroll_code(request: Request) -> Any:
        """Issue a one-time enrolment code for a till (valid 7 days)."""
        await require_admin(request)
        body = wire.parse(wire.EnrollCodeIn, wire.decode_json(await request.body()))
        return await work(
            lambda: tills.issue_code(hq.db, store=body.store, till=body.till, now=hq.clock.now())
        )

    @app.post("/v1/admin/tills/{till}/revoke", tags=["admin"])
    async def revoke(request: Request, till: str) -> Any:
        """Revoke a till's credential; its next request is refused."""
        await require_admin(request)
        return await work(lambda: tills.revoke(hq.db, till=till, now=hq.clock.now()))

    @app.get("/v1/admin/tills", tags=["admin"])
    async def till_list(request: Request) -> Any:
        """Every enrolled till: store, last push, through_seq, last seen, revoked."""
        await require_admin(request)
        return {"tills": await work(tills.list_tills, hq.db)}

    @app.post("/v1/admin/coupons/issue", tags=["admin"])
    async def coupons_issue(request: Request) -> Any:
        """Signed coupon codes for a coupon promotion of the program in force."""
        await require_admin(request)
        body = wire.parse(wire.CouponsIssueIn, wire.decode_json(await request.body()))
        return await work(admin.issue_coupons, hq.db, hq.signer, body, hq.clock.now())

    @app.post("/v1/admin/coupons/revoke", tags=["admin"])
    async def coupons_revoke(request: Request) -> Any:
        """Revoke coupon codes at every till."""
        await require_admin(request)
        body = wire.parse(wire.CouponsRevokeIn, wire.decode_json(await request.body()))
        return await work(admin.revoke_coupons, hq.db, body, hq.clock.now())

    @app.get("/v1/admin/flags", tags=["admin"])
    async def flag_list(request: Request, decided: bool = False) -> Any:
        """Quarantined entries, negative cards, sequence conflicts, coupon double uses."""
        await require_admin(request)

        def run() -> dict[str, Any]:
            return admin.flags(hq.db) | {"quarantined": quarantine.listing(hq.db, decided=decided)}

        return await work(run)

    async def decide(request: Request, flag: int, *, release: bool) -> Any:
        await require_admin(request)
        raw = await request.body()
        body = wire.parse(wire.DecisionIn, wire.decode_json(raw) if raw.strip() else {})
        return await work(
            lambda: corrections.decide(
                hq.db,
                flag,
                release=release,
                reason=body.reason,
                operator=operator(request),
                now=hq.clock.now(),
            )
        )

    @app.post("/v1/admin/flags/{flag}/release", tags=["admin"])
    async def flag_release(request: Request, flag: int) -> Any:
        """Let a quarantined entry count: its points become spendable everywhere."""
        return await decide(request, flag, release=True)

    @app.post("/v1/admin/flags/{flag}/reject", tags=["admin"])
    async def flag_reject(request: Request, flag: int) -> Any:
        """Keep a quarantined entry out for good: it never counts at any till."""
        return await decide(request, flag, release=False)

    @app.post("/v1/admin/cards/{number}/adjust", tags=["admin"])
    async def card_adjust(request: Request, number: str) -> Any:
        """Head office's own credit or debit of a card, with an audit row."""
        await require_admin(request)
        body = wire.parse(wire.CardAdjustIn, wire.decode_json(await request.body()))
        return await work(
            lambda: corrections.adjust(
                hq.db, number, body, operator=operator(request), now=hq.clock.now()
            )
        )

    @app.get("/v1/admin/holds", tags=["admin"])
    async def hold_list(request: Request, every: bool = False, card: str | None = None) -> Any:
        """The holds that reserve points now (``every``: all of them, resolved ones too)."""
        await require_admin(request)

        def run() -> dict[str, Any]:
            with hq.db.read() as tx:
                return {"holds": holds.listing(tx, hq.clock.now(), every=every, card=card)}

        return await work(run)

    @app.get("/v1/admin/audit", tags=["admin"])
    async def audit_log(request: Request, since: str | None = None) -> Any:
        """Every change an admin made to points: who, when, what and why."""
        await require_admin(request)
        start = wire.parse_since(since)
        return {"audit": await work(lambda: audit.rows(hq.db, since=start))}

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "hq": hq.instance_id}

    return app
