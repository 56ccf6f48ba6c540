"""Roles at head office: who may call which admin route, as one table.

:data:`ROUTE_ROLES` is the one source of truth: :class:`tillgate.hq.access.Guard` checks every
admin request against it, ``docs/security.md`` shows it (:func:`matrix_markdown`, checked by a
test to be the same), and a test calls every route with a token of every role. A route of
the app that is missing here is admin-only (a route nobody declared fails closed), and a test
refuses such an app.

The roles, by what a person's job needs:

* ``admin`` — everything; the token ``hq serve`` makes is the first admin.
* ``marketer`` — publishes the program and the product list, issues and revokes coupons
  (reads reports: no route yet).
* ``analyst`` — reads reports and pseudonymised exports (neither has a route yet).
* ``store_manager`` — reads the tills and flags of their own stores (``--store``, one or more);
  lists show only those, another store's item is 403 (receipts and reports: no route yet).
* ``support`` — finds cards, blocks and unblocks them, and adjusts points within the limit an
  admin sets (``support-adjust-limit``, default 500).

Pure: no I/O. The principal (who a token is) comes from :mod:`tillgate.hq.people`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from tillgate.core.errors import Forbidden, InvalidRequest


class Role(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    ANALYST = "analyst"
    STORE_MANAGER = "store_manager"
    SUPPORT = "support"


ROLES = tuple(r.value for r in Role)
BOOTSTRAP_ACTOR = "admin-token"  # the token hq serve made (hq-admin.token)


@dataclass(frozen=True, kw_only=True)
class Principal:
    """Who sent a request: a person's session, a script's token, or the bootstrap admin."""

    actor: str  # the user's name, 'token:ID' for a script, 'admin-token'
    role: Role
    stores: frozenset[str] = frozenset()
    token_id: int | None = None  # None: the bootstrap admin token
    user: str | None = None


BOOTSTRAP = Principal(actor=BOOTSTRAP_ACTOR, role=Role.ADMIN)


@dataclass(frozen=True)
class Rule:
    """Who may call a route besides admins, and what the route does (for the matrix)."""

    what: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    # The route reads per store: a store manager sees only their stores (store= one of them).
    by_store: bool = False

    def allows(self, role: Role) -> bool:
        return role is Role.ADMIN or role in self.roles


def _rule(what: str, *roles: Role, by_store: bool = False) -> Rule:
    return Rule(what, frozenset(roles), by_store)


_M, _SM, _SUP = Role.MARKETER, Role.STORE_MANAGER, Role.SUPPORT

# "METHOD /path" as FastAPI declares the route (path parameters in braces).
ROUTE_ROLES: dict[str, Rule] = {
    "POST /v1/admin/program": _rule("publish the program (hq push)", _M),
    "POST /v1/admin/products": _rule("import the product list (hq products import)", _M),
    "GET /v1/admin/products": _rule("show the product list's version (hq products show)", _M),
    "GET /v1/admin/products/unmatched": _rule(
        "names tills could not match (hq products unmatched)", _M
    ),
    "POST /v1/admin/coupons/issue": _rule("issue coupon codes", _M),
    "POST /v1/admin/coupons/revoke": _rule("revoke coupon codes", _M),
    "GET /v1/admin/coupons/keys": _rule("list coupon signing keys"),
    "POST /v1/admin/coupons/keys/rotate": _rule("start a new coupon signing key"),
    "POST /v1/admin/coupons/keys/{key_id}/revoke": _rule("revoke a coupon signing key"),
    "GET /v1/admin/cards/{number}": _rule("find a card by number or phone", _SUP),
    "POST /v1/admin/cards/{number}/block": _rule("block a card", _SUP),
    "POST /v1/admin/cards/{number}/unblock": _rule("unblock a card", _SUP),
    "POST /v1/admin/cards/{number}/adjust": _rule(
        "adjust points (support: |POINTS| ≤ support-adjust-limit)", _SUP
    ),
    "POST /v1/admin/cards/import": _rule("import cards (personal data)"),
    "POST /v1/admin/cards/snapshot": _rule("build the card snapshot new tills start from"),
    "GET /v1/admin/tills": _rule("list tills (store= filters)", _SM, by_store=True),
    "GET /v1/admin/tills/{till}": _rule("one till", _SM, by_store=True),
    "GET /v1/admin/flags": _rule("list flags (store= filters)", _SM, by_store=True),
    "POST /v1/admin/flags/{flag}/release": _rule("release a quarantined entry"),
    "POST /v1/admin/flags/{flag}/reject": _rule("reject a quarantined entry"),
    "GET /v1/admin/holds": _rule("list online holds"),
    "POST /v1/admin/enroll-codes": _rule("issue a till enrolment code"),
    "POST /v1/admin/tills/{till}/revoke": _rule("revoke a till's credential"),
    "GET /v1/admin/users": _rule("list users"),
    "POST /v1/admin/users": _rule("add a user"),
    "POST /v1/admin/users/{name}/disable": _rule("disable a user"),
    "GET /v1/admin/tokens": _rule("list tokens and sessions"),
    "POST /v1/admin/tokens": _rule("make a script token"),
    "POST /v1/admin/tokens/{token_id}/revoke": _rule("revoke a token or session"),
    "GET /v1/admin/settings": _rule("read settings"),
    "PUT /v1/admin/settings/{key}": _rule("change a setting"),
    "GET /v1/admin/audit": _rule("read the audit log"),
}

# What the roles are for but head office does not serve yet; shown in the matrix so that
# nobody mistakes a missing route for a refusal.
PLANNED: tuple[tuple[str, frozenset[Role]], ...] = (
    ("read reports (hq report)", frozenset({_M, Role.ANALYST, _SM})),
    ("pseudonymised exports (hq export)", frozenset({Role.ANALYST})),
    ("read receipts", frozenset({_SM})),
)

# Routes any principal may call with its own token (no role check), and routes with none.
SELF_ROUTES = {
    "GET /v1/auth/me": "who this token is",
    "POST /v1/auth/logout": "end this session",
}
OPEN_ROUTES = {
    "POST /v1/auth/login": "sign in with name and password (5 failures a minute per name)",
    "POST /v1/auth/password": "change one's password (the one-time one first)",
}


def rule_for(method: str, path: str) -> Rule:
    """The rule of a route; an undeclared route is admin-only."""
    return ROUTE_ROLES.get(f"{method.upper()} {path}", Rule("undeclared: admin only"))


def authorize(principal: Principal, method: str, path: str) -> Rule:
    """The route's rule if ``principal`` may call it; Forbidden (403 forbidden) if not."""
    rule = rule_for(method, path)
    if not rule.allows(principal.role):
        may = ", ".join(["admin", *sorted(r.value for r in rule.roles)])
        raise Forbidden(
            f"role {principal.role.value} may not {rule.what} ({method.upper()} {path}); "
            f"allowed: {may}",
            details={"role": principal.role.value},
        )
    return rule


def stores_in_view(principal: Principal, requested: str | None) -> frozenset[str] | None:
    """The stores a per-store read shows (None: every store).

    A store manager sees their own stores, or the one of them ``store=`` names; naming
    another store is 403. Other roles see what ``store=`` names, or everything.
    """
    if principal.role is not Role.STORE_MANAGER:
        return frozenset({requested}) if requested else None
    if requested is None:
        return principal.stores
    if requested not in principal.stores:
        raise Forbidden(
            f"store {requested!r} is not one of yours ({', '.join(sorted(principal.stores))})",
            details={"role": principal.role.value},
        )
    return frozenset({requested})


def check_store(principal: Principal, store: str, what: str) -> None:
    """Refuse (403) a single item of a store the principal does not manage."""
    if principal.role is Role.STORE_MANAGER and store not in principal.stores:
        raise Forbidden(
            f"{what} belongs to store {store!r}, not one of yours",
            details={"role": "store_manager"},
        )


def parse_role(text: str) -> Role:
    try:
        return Role(text)
    except ValueError:
        raise InvalidRequest(f"role: {text!r} is not one of {', '.join(ROLES)}") from None


def check_stores(role: Role, stores: Iterable[str]) -> frozenset[str]:
    """The stores of a new user or token: required for store_manager, refused for others."""
    found = frozenset(stores)
    if role is Role.STORE_MANAGER and not found:
        raise InvalidRequest("stores: a store_manager needs at least one store (--store S)")
    if role is not Role.STORE_MANAGER and found:
        raise InvalidRequest(f"stores: only a store_manager has stores, not a {role.value}")
    return found


def matrix_markdown() -> str:
    """The role × route matrix for docs/security.md, from :data:`ROUTE_ROLES`."""
    head = ["Route", "What", *ROLES]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def mark(rule: Rule, role: Role) -> str:
        if not rule.allows(role):
            return "—"
        return "own stores" if rule.by_store and role is Role.STORE_MANAGER else "yes"

    for route, rule in ROUTE_ROLES.items():
        cells = [f"`{route}`", rule.what, *(mark(rule, r) for r in Role)]
        lines.append("| " + " | ".join(cells) + " |")
    for what, roles in PLANNED:
        cells = ["(no route yet)", what, *("planned" if r in roles else "—" for r in Role)]
        cells[2] = "yes"  # admin
        lines.append("| " + " | ".join(cells) + " |")
    for route, what in SELF_ROUTES.items():
        lines.append("| " + " | ".join([f"`{route}`", what, *("yes" for _ in Role)]) + " |")
    for route, what in OPEN_ROUTES.items():
        lines.append("| " + " | ".join([f"`{route}`", what, *("no token" for _ in Role)]) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m tillgate.hq.roles: the matrix for docs/security.md
    print(matrix_markdown(), end="")
