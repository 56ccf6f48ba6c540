"""Who may call what at head office, over HTTP: the guard, and the routes of people and roles.

:class:`Guard` turns a request's bearer token into a :class:`~tillgate.hq.roles.Principal`
(the admin token of ``hq serve``, a person's session or a script's token), checks the route
against :data:`~tillgate.hq.roles.ROUTE_ROLES` (403 ``forbidden``) and tells the audit log who
acts. :func:`routes` serves sign-in (``/v1/auth/…``) and the admin routes of users, tokens
and settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.concurrency import run_in_threadpool

from tillgate.core.errors import Forbidden, TooManyAttempts, Unauthorized
from tillgate.core.serving import error_response

from . import audit, people, roles, settings, tills, wire
from .roles import BOOTSTRAP, Principal, Rule
from .service import Hq

Password = Annotated[str, StringConstraints(min_length=1, max_length=people.MAX_PASSWORD)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Stores = Annotated[list[wire.Ident], Field(max_length=100)]


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LoginIn(_In):
    name: Name
    password: Password


class PasswordIn(_In):
    name: Name
    password: Password
    new_password: Password


class UserIn(_In):
    name: Name
    role: str
    stores: Stores = []


class TokenIn(_In):
    role: str
    stores: Stores = []
    label: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None


class SettingIn(_In):
    value: Any


class Guard:
    """Authenticates admin requests and checks each against the role × route table."""

    def __init__(self, hq: Hq) -> None:
        self.hq = hq

    async def identify(self, request: Request) -> Principal:
        """Who the request's token is (401 if nobody; 403 for a till's credential)."""
        token = tills.bearer(request.headers.get("authorization"))
        if self.hq.is_admin(token):
            principal = BOOTSTRAP
        else:
            principal = await run_in_threadpool(self._principal, token)
        audit.acting(principal.actor, principal.role.value)
        return principal

    async def authorize(self, request: Request) -> tuple[Principal, Rule]:
        """The principal, if its role may call this route; 401 or 403 if not."""
        principal = await self.identify(request)
        route = request.scope.get("route")
        path = str(getattr(route, "path", request.url.path))
        return principal, roles.authorize(principal, request.method, path)

    def _principal(self, token: str) -> Principal:
        principal = people.authenticate(self.hq.db, token, self.hq.clock.now())
        if principal is not None:
            return principal
        with self.hq.db.read() as tx:
            if tills.find_till(tx, token) is not None:
                raise Forbidden("a till credential cannot call admin endpoints")
        raise Unauthorized(
            "unknown token: the admin token is in hq-admin.token in the HQ data directory; "
            "people sign in with 'tillgate hq login NAME', scripts use 'hq tokens new'"
        )


def routes(hq: Hq, guard: Guard, operator: Callable[[Request], str | None]) -> APIRouter:
    """Sign-in, and the admin routes of users, tokens and settings."""
    api = APIRouter()

    async def body(request: Request, model: type[wire.M]) -> wire.M:
        return wire.parse(model, wire.decode_json(await request.body()))

    def now() -> Any:
        return hq.clock.now()

    async def signing_in(fn: Callable[[], dict[str, Any]]) -> Any:
        try:
            return await run_in_threadpool(fn)
        except TooManyAttempts as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            wait = details.get("retry_after", 60)
            refused = error_response(exc.status, exc.code, exc.message, exc.details)
            refused.headers["Retry-After"] = str(wait)
            return refused

    @api.post("/v1/auth/login", tags=["auth"])
    async def login(request: Request) -> Any:
        """Sign in with name and password: a bearer token for the admin routes of the role."""
        b = await body(request, LoginIn)
        return await signing_in(lambda: people.login(hq.db, b.name, b.password, now=now()))

    @api.post("/v1/auth/password", tags=["auth"])
    async def password(request: Request) -> Any:
        """Change one's password (the one-time one first); signs in."""
        b = await body(request, PasswordIn)
        return await signing_in(
            lambda: people.change_password(hq.db, b.name, b.password, b.new_password, now=now())
        )

    @api.get("/v1/auth/me", tags=["auth"])
    async def me(request: Request) -> Any:
        """Who this token is: actor, role, stores."""
        p = await guard.identify(request)
        return {
            "actor": p.actor,
            "role": p.role.value,
            "stores": sorted(p.stores),
            "token_id": p.token_id,
            "user": p.user,
        }

    @api.post("/v1/auth/logout", tags=["auth"])
    async def logout(request: Request) -> Any:
        """End this session (or revoke this script token)."""
        p = await guard.identify(request)
        return await run_in_threadpool(people.logout, hq.db, p, now())

    @api.get("/v1/admin/users", tags=["people"])
    async def users(request: Request) -> Any:
        """Every user: role, stores, status, last sign-in."""
        await guard.authorize(request)
        return {"users": await run_in_threadpool(people.list_users, hq.db)}

    @api.post("/v1/admin/users", tags=["people"])
    async def user_add(request: Request) -> Any:
        """Add a user; the answer holds their one-time password (shown once)."""
        await guard.authorize(request)
        b = await body(request, UserIn)
        return await run_in_threadpool(
            lambda: people.add_user(
                hq.db, b.name, b.role, list(b.stores), operator=operator(request), now=now()
            )
        )

    @api.post("/v1/admin/users/{name}/disable", tags=["people"])
    async def user_disable(request: Request, name: str) -> Any:
        """Disable a user: no sign-in, and their sessions end at once."""
        await guard.authorize(request)
        return await run_in_threadpool(
            lambda: people.disable_user(hq.db, name, operator=operator(request), now=now())
        )

    @api.get("/v1/admin/tokens", tags=["people"])
    async def tokens(request: Request) -> Any:
        """Every script token and session (never the tokens themselves)."""
        await guard.authorize(request)
        return {"tokens": await run_in_threadpool(people.list_tokens, hq.db, now())}

    @api.post("/v1/admin/tokens", tags=["people"])
    async def token_new(request: Request) -> Any:
        """A script token with a role; the answer holds the token (shown once)."""
        await guard.authorize(request)
        b = await body(request, TokenIn)
        return await run_in_threadpool(
            lambda: people.new_token(
                hq.db,
                b.role,
                list(b.stores),
                label=b.label or None,
                operator=operator(request),
                now=now(),
            )
        )

    @api.post("/v1/admin/tokens/{token_id}/revoke", tags=["people"])
    async def token_revoke(request: Request, token_id: int) -> Any:
        """Revoke a script token or end a session."""
        await guard.authorize(request)
        return await run_in_threadpool(
            lambda: people.revoke_token(hq.db, token_id, operator=operator(request), now=now())
        )

    @api.get("/v1/admin/settings", tags=["people"])
    async def settings_list(request: Request) -> Any:
        """Every setting, its value and default."""
        await guard.authorize(request)
        return {"settings": await run_in_threadpool(settings.listing, hq.db)}

    @api.put("/v1/admin/settings/{key}", tags=["people"])
    async def setting_put(request: Request, key: str) -> Any:
        """Change a setting (``{"value": N}``)."""
        await guard.authorize(request)
        b = await body(request, SettingIn)
        return await run_in_threadpool(
            lambda: settings.put(hq.db, key, b.value, operator=operator(request), now=now())
        )

    return api
