"""Head office's HTTP API (docs/sync-protocol.md): enrolment, push, pull, admin endpoints.

Every refusal is ``{"error": {"code", "message", …details}}`` with its status, and is
raised before or inside the one transaction a request writes in, so a refused request
writes nothing. Bodies are read raw and parsed by :mod:`tillgate.hq.wire` (paths in the
protocol's words, size limits before parsing); the work runs in the thread pool.

Every body is within :func:`tillgate.hq.wire.check_json`'s bounds (depth, digits) before
any route sees it; every response carries an ``X-Request-Id``; a refusal is one log line
and an error no handler expected a JSON 500 naming that id, its traceback logged once
(:mod:`tillgate.hq.middleware`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tillgate.core import __version__, errors
from tillgate.core.serving import BodyLimit, Direct, DirectHandler, error_response

from . import (
    access,
    admin,
    audit,
    cardimport,
    corrections,
    feed,
    feedparts,
    holds,
    ledger,
    products,
    roles,
    settings,
    snapshotapi,
    tills,
    wire,
)
from .middleware import RequestIds, bounded_json, request_id, route_of
from .service import Hq

logger = logging.getLogger(__name__)

R = TypeVar("R")

MAX_BODY = 8 << 20  # a push of 1000 entries is well under 1 MiB
MAX_IMPORT = 512 << 20  # a cards CSV of a few million cards
IMPORT_PATH = "/v1/admin/cards/import"
PRODUCTS_PATH = "/v1/admin/products"  # a product list CSV: hundreds of thousands of goods


OPERATOR_HEADER = "x-tillgate-operator"


def operator(request: Request) -> str | None:
    """The person an admin verb says it runs for (recorded in the audit log as given)."""
    name = request.headers.get(OPERATOR_HEADER, "").strip()
    return "".join(c for c in name if c.isprintable())[:100] or None


def create_app(hq: Hq) -> FastAPI:
    """The HQ API over ``hq``."""
    checked = bounded_json(unbounded=frozenset({IMPORT_PATH, PRODUCTS_PATH}))
    app = FastAPI(
        title="tillgate head office",
        version=__version__,
        description="Enrolment, ledger push and change feed for tills; admin endpoints.",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(checked)],
    )
    # The till's hold routes, served past FastAPI's layers (core/serving.py); filled below.
    direct: dict[str, DirectHandler] = {}
    app.add_middleware(Direct, routes=direct, on_error=lambda: app.exception_handlers)

    def served(route: Callable[[Request], Awaitable[Any]]) -> DirectHandler:
        """A route of the app's, served directly: the app's body check, then the route."""

        async def serve(request: Request) -> Response:
            await checked(request)
            return JSONResponse(await route(request))

        return serve

    app.add_middleware(
        BodyLimit, limit=MAX_BODY, by_path={IMPORT_PATH: MAX_IMPORT, PRODUCTS_PATH: MAX_IMPORT}
    )
    app.add_middleware(RequestIds)  # added last: the outermost

    def refused(request: Request, status: int, code: str) -> None:
        # One line per refusal, never a traceback: the route's template, not its path.
        logger.info(
            "refused %s %s: %s %s (request %s)",
            request.method,
            route_of(request.scope),
            status,
            code,
            request_id(request),
        )

    @app.exception_handler(errors.ApiError)
    async def api_error(request: Request, exc: errors.ApiError) -> JSONResponse:
        refused(request, exc.status, exc.code)
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(errors.StoreError)
    async def store_error(_: Request, exc: errors.StoreError) -> JSONResponse:
        logger.error("database error: %s", exc)
        return error_response(503, "store_unavailable", f"head office database: {exc}")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body"))
        msg = str(first.get("msg", "invalid"))
        refused(request, 400, "invalid_request")
        return error_response(400, "invalid_request", f"{loc}: {msg}" if loc else msg)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, "invalid_request" if exc.status_code == 400 else "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail))

    async def work(fn: Callable[..., R], *args: Any) -> R:
        return await run_in_threadpool(fn, *args)

    def till_of(token: str, tx: Any, *, asked: Any = None) -> tills.TillId:
        try:
            return tills.authenticate(tx, token, asked=asked)
        except errors.Unauthorized:
            if hq.is_admin(token):
                raise errors.Forbidden(
                    "the admin token is not a till credential; enrol the till"
                ) from None
            raise

    # Every admin route asks the guard first: who the token is, and whether its role may
    # call the route (hq/roles.py ROUTE_ROLES; docs/security.md). People, tokens, settings
    # and sign-in are served by hq/access.py.
    guard = access.Guard(hq)

    async def authorize(request: Request) -> roles.Principal:
        return (await guard.authorize(request))[0]

    app.include_router(access.routes(hq, guard, operator))
    app.include_router(
        snapshotapi.routes(hq, work=work, till_of=till_of, authorize=authorize, operator=operator)
    )

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
                # Within check_json's bounds: the app's dependency checked every body.
                batch = wire.parse_push(raw, bounded=True)
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
            now = hq.clock.now()
            with hq.db.write(durable=False) as tx:
                credential = tills.ask_till(tx, token)
                known, body, asked = hq.known_tills.get(token), None, None
                if known is not None:
                    # The hold's reads go with the credential's check, which runs first;
                    # a body that does not parse is refused after it, as for a stranger.
                    with suppress(errors.InvalidRequest):
                        body = wire.parse(wire.HoldIn, wire.decode_json(raw))
                    if body is not None:
                        asked = holds.ask(tx, known, body, now)
                till = till_of(token, tx, asked=credential)
                hq.known_tills.put(token, till.id)
                if body is None:
                    body = wire.parse(wire.HoldIn, wire.decode_json(raw))
                policy = ledger.policy_of(tx, hq.policies, till=till)
                return holds.reserve(tx, till, body, now, policy, asked=asked)

        return await work(run)

    direct["/v1/holds"] = served(hold)

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

    direct["/v1/holds/resolve"] = served(hold_resolve)

    # What a page says of a card alike to every till, built once per change of the card
    # and kept by this process alone: its key changes whenever its content would.
    card_parts = feedparts.CardParts(hq.lookup_key)

    @app.get("/v1/sync/changes", tags=["tills"])
    async def changes(
        request: Request,
        cursor: int = 0,
        limit: int = feed.DEFAULT_LIMIT,
        cards: str = "objects",
        cards_through: int = 0,
    ) -> Any:
        """Everything that changed after ``cursor``: program, cards (as objects, or as a
        compact page's rows with ``cards=rows``), coupons."""
        token = tills.bearer(request.headers.get("authorization"))

        def run() -> bytes:
            now = hq.clock.now()
            with hq.db.read() as tx:  # the credential's check and the page: one snapshot
                asked = tills.ask_till(tx, token)
                till = till_of(token, tx, asked=asked)
                page = feed.read_page(
                    tx,
                    till,
                    cursor=cursor,
                    limit=limit,
                    now=now,
                    lookup_key=hq.lookup_key,
                    coupon_keys=hq.keys,
                    parts=card_parts,
                    row=asked.one(),
                    shape=cards,
                    cards_through=cards_through,
                )
            feed.pulled(hq.db, till, page, now)
            return page.body

        return Response(await work(run), media_type="application/json")

    @app.get("/v1/sync/products", tags=["tills"])
    async def product_page(
        request: Request,
        version: str,
        after: int = 0,
        limit: int = products.DEFAULT_PAGE,
    ) -> Response:
        """One page of the product list in force (the version a change page named)."""
        token = tills.bearer(request.headers.get("authorization"))

        def run() -> bytes:
            with hq.db.read() as tx:
                till_of(token, tx)
            return products.page(hq.db, version=version, after=after, limit=limit)

        return Response(await work(run), media_type="application/json")

    # ------------------------------------------------------------ admin

    @app.post("/v1/admin/program", tags=["admin"])
    async def program(request: Request) -> Any:
        """Validate a program/promotions file whole and publish it as a new version."""
        await authorize(request)
        parsed = admin.decode_program_body(await request.body())
        return await work(
            lambda: admin.publish_program(hq.db, parsed, hq.clock.now(), operator=operator(request))
        )

    @app.post(IMPORT_PATH, tags=["admin"])
    async def cards_import(request: Request) -> Any:
        """Import or update cards from CSV; nothing is imported if any row is bad."""
        await authorize(request)
        upload = await cardimport.spool(request.stream())

        def run() -> dict[str, Any]:
            with cardimport.lines_of(upload) as lines:
                return admin.import_cards(hq.db, lines, hq.clock.now(), operator=operator(request))

        try:
            return await work(run)
        finally:
            upload.close()

    @app.post(PRODUCTS_PATH, tags=["admin"])
    async def products_import(request: Request, source: str = "") -> Any:
        """Replace the product list from CSV; nothing is imported if anything is bad."""
        await authorize(request)
        raw = await request.body()

        def run() -> dict[str, Any]:
            parsed = products.parse_upload(raw, source=source or "product list")
            return products.import_list(
                hq.db, parsed, hq.clock.now(), source=source, operator=operator(request)
            )

        return await work(run)

    @app.get(PRODUCTS_PATH, tags=["admin"])
    async def products_show(request: Request) -> Any:
        """The product list in force: version, count, categories."""
        await authorize(request)
        return await work(products.show, hq.db)

    @app.get(f"{PRODUCTS_PATH}/unmatched", tags=["admin"])
    async def products_unmatched(
        request: Request, since: str | None = None, limit: int = 100
    ) -> Any:
        """The names tills could not match to a product, counted from receipt facts."""
        await authorize(request)
        start = wire.parse_since(since) or hq.clock.now() - products.UNMATCHED_DAYS
        if not 1 <= limit <= 10_000:
            raise errors.InvalidRequest("limit: must be between 1 and 10000")
        return await work(lambda: products.unmatched(hq.db, since=start, limit=limit))

    @app.get("/v1/admin/cards/{number}", tags=["admin"])
    async def card(request: Request, number: str) -> Any:
        """A card as HQ knows it: holder, tier, balance, pending, lots and every entry."""
        await authorize(request)
        return await work(admin.show_card, hq.db, number, hq.clock.now())

    @app.post("/v1/admin/enroll-codes", tags=["admin"])
    async def enroll_code(request: Request) -> Any:
        """Issue a one-time enrolment code for a till (valid 7 days)."""
        await authorize(request)
        body = wire.parse(wire.EnrollCodeIn, wire.decode_json(await request.body()))

        def run() -> dict[str, str]:
            now = hq.clock.now()
            with hq.db.write() as tx:  # the code and its audit row, or neither
                out = tills.issue_code(tx, store=body.store, till=body.till, now=now)
                audit.write(
                    tx,
                    action="till.enroll_code",
                    subject=f"{body.store}/{body.till}",
                    detail={"expires_at": out["expires_at"]},
                    reason="",
                    operator=operator(request),
                    now=now,
                    after={"expires_at": out["expires_at"]},
                )
            return out

        return await work(run)

    @app.post("/v1/admin/tills/{till}/revoke", tags=["admin"])
    async def revoke(request: Request, till: str) -> Any:
        """Revoke a till's credential; its next request is refused."""
        await authorize(request)

        def run() -> dict[str, Any]:
            now = hq.clock.now()
            with hq.db.write() as tx:  # the revocation and its audit row, or neither
                out = tills.revoke(tx, till=till, now=now)
                if out.pop("revoked"):  # not revoked before
                    audit.write(
                        tx,
                        action="till.revoke",
                        subject=till,
                        detail={},
                        reason="",
                        operator=operator(request),
                        now=now,
                        before={"revoked": False},
                        after={"revoked": True},
                    )
            return out

        return await work(run)

    @app.get("/v1/admin/tills", tags=["admin"])
    async def till_list(request: Request, store: str | None = None) -> Any:
        """Every enrolled till (of ``store``): store, last push, through_seq, last seen."""
        stores = roles.stores_in_view(await authorize(request), store)
        return {"tills": await work(admin.tills_in_view, hq.db, stores)}

    @app.get("/v1/admin/tills/{till}", tags=["admin"])
    async def till_one(request: Request, till: str) -> Any:
        """One enrolled till."""
        principal = await authorize(request)
        found = [t for t in await work(admin.tills_in_view, hq.db, None) if t["till"] == till]
        if not found:
            raise errors.NotFound(f"no till {till!r} has enrolled at this head office")
        roles.check_store(principal, found[0]["store"], f"till {till}")
        return found[0]

    @app.post("/v1/admin/coupons/issue", tags=["admin"])
    async def coupons_issue(request: Request) -> Any:
        """Signed coupon codes for a coupon promotion of the program in force."""
        await authorize(request)
        body = wire.parse(wire.CouponsIssueIn, wire.decode_json(await request.body()))
        return await work(
            lambda: admin.issue_coupons(
                hq.db, hq.signer, body, hq.clock.now(), operator=operator(request)
            )
        )

    @app.post("/v1/admin/coupons/revoke", tags=["admin"])
    async def coupons_revoke(request: Request) -> Any:
        """Revoke coupon codes at every till."""
        await authorize(request)
        body = wire.parse(wire.CouponsRevokeIn, wire.decode_json(await request.body()))
        return await work(
            lambda: admin.revoke_coupons(hq.db, body, hq.clock.now(), operator=operator(request))
        )

    # Coupon keys: admin only (so declared in roles.ROUTE_ROLES).
    @app.get("/v1/admin/coupons/keys", tags=["admin"])
    async def coupon_keys(request: Request) -> Any:
        """The chain's coupon keys: id, fingerprint, made, revoked; never a key."""
        await authorize(request)
        return await work(hq.keys.listing)

    @app.post("/v1/admin/coupons/keys/rotate", tags=["admin"])
    async def coupon_key_rotate(request: Request) -> Any:
        """A new coupon key signs every new code; codes of older keys verify until they expire."""
        await authorize(request)
        return await work(lambda: hq.keys.rotate(now=hq.clock.now(), operator=operator(request)))

    @app.post("/v1/admin/coupons/keys/{key_id}/revoke", tags=["admin"])
    async def coupon_key_revoke(request: Request, key_id: int) -> Any:
        """Refuse every code signed with coupon key ``key_id``, here and at every till."""
        await authorize(request)
        return await work(
            lambda: hq.keys.revoke(key_id, now=hq.clock.now(), operator=operator(request))
        )

    @app.get("/v1/admin/flags", tags=["admin"])
    async def flag_list(request: Request, decided: bool = False, store: str | None = None) -> Any:
        """Quarantined entries, negative cards, sequence conflicts, coupon double uses."""
        stores = roles.stores_in_view(await authorize(request), store)
        return await work(lambda: admin.flags_in_view(hq.db, decided=decided, stores=stores))

    async def decide(request: Request, flag: int, *, release: bool) -> Any:
        await authorize(request)
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
        principal = await authorize(request)
        body = wire.parse(wire.CardAdjustIn, wire.decode_json(await request.body()))

        def run() -> dict[str, Any]:
            if principal.role is roles.Role.SUPPORT:
                with hq.db.read() as tx:
                    limit = settings.get(tx, settings.SUPPORT_ADJUST_LIMIT)
                if abs(body.points) > limit:
                    raise errors.AdjustLimitExceeded(
                        f"support may adjust at most {limit} points at a time, not "
                        f"{abs(body.points)}; ask an admin "
                        f"(setting {settings.SUPPORT_ADJUST_LIMIT})",
                        details={"limit": limit},
                    )
            return corrections.adjust(
                hq.db, number, body, operator=operator(request), now=hq.clock.now()
            )

        return await work(run)

    async def block(request: Request, number: str, *, blocked: bool) -> Any:
        await authorize(request)
        raw = await request.body()
        body = wire.parse(wire.DecisionIn, wire.decode_json(raw) if raw.strip() else {})
        return await work(
            lambda: admin.set_blocked(
                hq.db,
                number,
                blocked=blocked,
                reason=body.reason or "",
                operator=operator(request),
                now=hq.clock.now(),
            )
        )

    @app.post("/v1/admin/cards/{number}/block", tags=["admin"])
    async def card_block(request: Request, number: str) -> Any:
        """Block a card: every till refuses it from its next pull on."""
        return await block(request, number, blocked=True)

    @app.post("/v1/admin/cards/{number}/unblock", tags=["admin"])
    async def card_unblock(request: Request, number: str) -> Any:
        """Unblock a card (active again)."""
        return await block(request, number, blocked=False)

    @app.get("/v1/admin/holds", tags=["admin"])
    async def hold_list(request: Request, every: bool = False, card: str | None = None) -> Any:
        """The holds that reserve points now (``every``: all of them, resolved ones too)."""
        await authorize(request)

        def run() -> dict[str, Any]:
            with hq.db.read() as tx:
                return {"holds": holds.listing(tx, hq.clock.now(), every=every, card=card)}

        return await work(run)

    @app.get("/v1/admin/audit", tags=["admin"])
    async def audit_log(request: Request, since: str | None = None) -> Any:
        """Every change made at head office: who, in which role, when, what, why."""
        await authorize(request)
        start = wire.parse_since(since)
        return {"audit": await work(lambda: audit.rows(hq.db, since=start))}

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "hq": hq.instance_id}

    return app
