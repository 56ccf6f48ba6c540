"""The admin side of the HQ API over HTTP, for the ``tillgate hq …`` verbs.

Refusals become the error tree: a program or cards file HQ refused is a bad file
(:class:`ProgramError`, :class:`CardsFileError`: exit 2), a refused token is a config
problem (exit 2), an HQ that does not answer is :class:`HqUnreachable` (exit 1). The httpx
transport is the seam tests may replace.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import httpx

from tillgate.core.errors import (
    CardsFileError,
    ConfigError,
    HqBadReply,
    HqRefused,
    HqUnreachable,
    ProductsError,
    ProgramError,
)

CHUNK = 256 << 10
UPLOAD_ANSWER_SECONDS = 1800.0  # the longest wait for head office's answer to an import


class AdminClient:
    """Admin requests to one head office with one token (None: only to sign in)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        operator: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if operator:
            # Who runs the verb: head office writes it into its audit log.
            headers["X-Tillgate-Operator"] = operator.encode("ascii", "replace").decode()
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, *, source: str = "", signing_in: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HqUnreachable(
                f"head office at {self.url} does not answer ({type(exc).__name__}: {exc}); "
                "is 'tillgate hq serve' running there? (--hq URL)"
            ) from exc
        try:
            body = r.json()
        except json.JSONDecodeError as exc:
            raise HqBadReply(
                f"head office at {self.url} answered {r.status_code} with something that is "
                "not JSON; is --hq the head office?"
            ) from exc
        if r.status_code == 200 and isinstance(body, dict):
            return body
        err = body.get("error") if isinstance(body, dict) else None
        if not isinstance(err, dict):
            raise HqBadReply(f"head office at {self.url} answered {r.status_code} unexpectedly")
        code, message = str(err.get("code", "")), str(err.get("message", ""))
        problems = [str(e) for e in err.get("errors") or []]
        if code == "invalid_program":
            raise ProgramError(problems or [message], source=source or "program")
        if code == "invalid_cards":
            raise CardsFileError(problems or [message], source=source or "cards file")
        if code == "invalid_products":
            raise ProductsError(problems or [message], source=source or "product list")
        if r.status_code == 401 and not signing_in:
            raise ConfigError(
                f"head office refused the admin token or session ({code}: {message}); pass "
                "--token, set TILLGATE_HQ_TOKEN, run where hq-admin.token is, or sign in with "
                "'tillgate hq login NAME'"
            )
        if r.status_code in (400, 413) and not signing_in:
            raise ConfigError(f"head office refused the request: {message}")
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
        raise HqRefused(
            f"head office refused: {message}", status=r.status_code, code=code, details=details
        )

    def push_program(self, text: str, *, toml: bool, source: str) -> dict[str, Any]:
        """Publish a program file (TOML text as ``{"toml"}``, JSON text as it is)."""
        content = json.dumps({"toml": text}) if toml else text
        return self._call(
            "POST",
            "/v1/admin/program",
            source=source,
            content=content.encode("utf-8"),
            headers={"Content-Type": "application/json"},
        )

    def import_cards(
        self,
        data: bytes | BinaryIO,
        *,
        source: str,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Upload a cards CSV in one request (all or nothing), reporting bytes sent; a file
        is read and sent a chunk at a time."""
        return self._upload_csv("/v1/admin/cards/import", data, source=source, progress=progress)

    def import_products(
        self, data: bytes, *, source: str, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """Upload a product list CSV in one request (it replaces the list whole, or nothing)."""
        return self._upload_csv(
            "/v1/admin/products",
            data,
            source=source,
            progress=progress,
            params={"source": source},
        )

    def _upload_csv(
        self,
        path: str,
        data: bytes | BinaryIO,
        *,
        source: str,
        progress: Callable[[int], None] | None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST a CSV in chunks of CHUNK bytes, telling ``progress`` how many are sent."""

        file = io.BytesIO(data) if isinstance(data, bytes) else data
        start = file.tell()
        size = file.seek(0, io.SEEK_END) - start
        file.seek(start)

        def chunks() -> Iterator[bytes]:
            sent = 0
            while sent < size:
                part = file.read(min(CHUNK, size - sent))
                if not part:
                    raise ConfigError(f"{source} got shorter while it was being sent")
                sent += len(part)
                yield part
                if progress is not None:
                    progress(sent)

        return self._call(
            "POST",
            path,
            source=source,
            content=chunks(),
            params=params,
            headers={"Content-Type": "text/csv", "Content-Length": str(size)},
            # Head office answers once the whole file is in (one transaction): minutes for
            # millions of rows, so the wait for the answer is longer than other requests'.
            timeout=httpx.Timeout(self._http.timeout.connect, read=UPLOAD_ANSWER_SECONDS),
        )

    def build_card_snapshot(self) -> dict[str, Any]:
        """Build the card snapshot new tills start from (minutes at millions of cards)."""
        wait = httpx.Timeout(self._http.timeout.connect, read=UPLOAD_ANSWER_SECONDS)
        return self._call("POST", "/v1/admin/cards/snapshot", timeout=wait)

    def products(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/products")

    def products_unmatched(self, *, since: str | None, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if since:
            params["since"] = since
        return self._call("GET", "/v1/admin/products/unmatched", params=params)

    def card(self, number: str) -> dict[str, Any]:
        return self._call("GET", f"/v1/admin/cards/{number}")

    def enroll_code(self, *, store: str, till: str) -> dict[str, Any]:
        return self._call("POST", "/v1/admin/enroll-codes", json={"store": store, "till": till})

    def revoke_till(self, till: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/admin/tills/{till}/revoke")

    def tills(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/tills")

    def issue_coupons(self, promotion: str, count: int) -> dict[str, Any]:
        return self._call(
            "POST", "/v1/admin/coupons/issue", json={"promotion": promotion, "count": count}
        )

    def coupon_keys(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/coupons/keys")

    def rotate_coupon_key(self) -> dict[str, Any]:
        return self._call("POST", "/v1/admin/coupons/keys/rotate")

    def revoke_coupon_key(self, key_id: int) -> dict[str, Any]:
        return self._call("POST", f"/v1/admin/coupons/keys/{key_id}/revoke")

    def flags(self, *, decided: bool = False) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/flags", params={"decided": "true"} if decided else None)

    def decide(self, flag: int, *, release: bool, reason: str | None) -> dict[str, Any]:
        verb = "release" if release else "reject"
        body = {"reason": reason} if reason else {}
        return self._call("POST", f"/v1/admin/flags/{flag}/{verb}", json=body)

    def adjust(self, number: str, points: int, reason: str) -> dict[str, Any]:
        return self._call(
            "POST", f"/v1/admin/cards/{number}/adjust", json={"points": points, "reason": reason}
        )

    def audit(self, *, since: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/audit", params={"since": since} if since else None)

    def block(self, number: str, *, blocked: bool, reason: str | None) -> dict[str, Any]:
        verb = "block" if blocked else "unblock"
        body = {"reason": reason} if reason else {}
        return self._call("POST", f"/v1/admin/cards/{number}/{verb}", json=body)

    # ------------------------------------------------------------ people and roles

    def login(self, name: str, password: str) -> dict[str, Any]:
        return self._call(
            "POST", "/v1/auth/login", json={"name": name, "password": password}, signing_in=True
        )

    def change_password(self, name: str, password: str, new_password: str) -> dict[str, Any]:
        body = {"name": name, "password": password, "new_password": new_password}
        return self._call("POST", "/v1/auth/password", json=body, signing_in=True)

    def me(self) -> dict[str, Any]:
        return self._call("GET", "/v1/auth/me")

    def logout(self) -> dict[str, Any]:
        return self._call("POST", "/v1/auth/logout")

    def users(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/users")

    def add_user(self, name: str, role: str, stores: list[str]) -> dict[str, Any]:
        body = {"name": name, "role": role, "stores": stores}
        return self._call("POST", "/v1/admin/users", json=body)

    def disable_user(self, name: str) -> dict[str, Any]:
        return self._call("POST", f"/v1/admin/users/{name}/disable")

    def tokens(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/tokens")

    def new_token(self, role: str, stores: list[str], label: str | None) -> dict[str, Any]:
        body = {"role": role, "stores": stores, "label": label}
        return self._call("POST", "/v1/admin/tokens", json=body)

    def revoke_token(self, token_id: int) -> dict[str, Any]:
        return self._call("POST", f"/v1/admin/tokens/{token_id}/revoke")

    def settings(self) -> dict[str, Any]:
        return self._call("GET", "/v1/admin/settings")

    def set_setting(self, key: str, value: int) -> dict[str, Any]:
        return self._call("PUT", f"/v1/admin/settings/{key}", json={"value": value})
