"""What a web browser may ask of the POS API: only what the till's own pages and a POS ask.

The API has no cookies and, by default on loopback, no token, so any page a browser on the
till (or on the POS machine) opens could otherwise drive it: a ``fetch(url, {method: "POST",
mode: "no-cors"})`` needs no CORS permission to *send*, and a DNS-rebinding page (its own
name re-pointed at 127.0.0.1) can even *read* the answers. :class:`BrowserGuard` stands in
front of everything, token or not, and refuses:

- a ``Host`` that is not a name the API is served under — ``127.0.0.1``, ``localhost``,
  ``[::1]`` (any port), ``pos_api.host``, or the address the connection arrived on (a till
  bound to ``0.0.0.0`` is called by its IP) — with 421 ``bad_host`` (DNS rebinding);
- a request a browser marks as coming from another page: an ``Origin`` other than the
  API's own (``null`` included), or ``Sec-Fetch-Site`` other than ``same-origin`` or
  ``none`` — with 403 ``cross_site``;
- a POST (any method but GET, HEAD, OPTIONS) whose body is not declared JSON: only
  ``application/json``, with at most a UTF-8 ``charset``, or no body and no type at all
  (curl's and a POS's bare ``-X POST .../confirm``) — with 415 ``unsupported_media_type``.
  A page without CORS permission can send only text/plain, a form or multipart, or a
  typeless body, which FastAPI would read as JSON.

POS software sends neither ``Origin`` nor ``Sec-Fetch-*`` and is unaffected. Every answer,
refusals included, carries ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: no-referrer``, ``Cross-Origin-Resource-Policy: same-origin`` and a
Content-Security-Policy with ``frame-ancestors 'none'``: for JSON, nothing may load at all;
for the API's own HTML pages, :func:`page_policy` allows exactly their inline scripts and
styles by hash, so no ``'unsafe-inline'`` is needed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import logging
import re
import time
from urllib.parse import urlsplit

from tillgate.core.cards import mask_in_text
from tillgate.core.serving import ASGIApp, Message, Receive, Scope, Send, error_response

logger = logging.getLogger(__name__)

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OWN_SITE = frozenset({"same-origin", "none"})  # Sec-Fetch-Site of the till's own pages, typed URLs
KNOWN_SITES = OWN_SITE | {"same-site", "cross-site"}

# The policy of every answer that is not one of the API's own pages (JSON, errors).
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
)

BAD_HOST = (
    "this till's POS API answers only to its own address (127.0.0.1, localhost, [::1] or "
    "[pos_api] host); the request's Host header names another, as a DNS-rebinding page does"
)
FROM_ORIGIN = (
    "refused: the request comes from a web page of another origin (its Origin header); "
    "the POS API serves POS software and this till's own pages only"
)
FROM_SITE = (
    "refused: the browser marks the request as sent by another site (Sec-Fetch-Site: {}); "
    "the POS API serves POS software and this till's own pages only"
)
NOT_JSON = (
    "the request body must be JSON sent with Content-Type: application/json "
    "(optionally ; charset=utf-8); a POST without a body needs no Content-Type"
)
LOG_EVERY_SECONDS = 60.0  # a page looping its attack must not fill the till's disk with log


class BrowserGuard:
    """ASGI middleware: refuse cross-site and foreign-Host requests; add browser headers.

    ``host`` is ``pos_api.host``: a name or address it gives is served as well as loopback
    (a wildcard such as ``0.0.0.0`` adds nothing: such a till is called by one of its
    addresses, which the connection's own local address matches).
    """

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1") -> None:
        self.app = app
        names = set(LOOPBACK_NAMES)
        configured = _name(host)
        if not _is_wildcard(configured):
            names.add(configured)
        self.names = frozenset(names)
        self._last_logged: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_browser_headers(message.get("headers") or [])
            await send(message)

        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send_with_headers)
            return
        status, code, message = refusal
        self._log(scope, code)
        await error_response(status, code, message)(scope, receive, send_with_headers)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """Why this request is refused, as (status, error code, message); None to serve it."""
        headers: dict[bytes, bytes] = {}
        for key, value in scope.get("headers") or []:
            headers.setdefault(key.lower(), value)
        raw_host = headers.get(b"host")
        host = _split_host(raw_host.decode("latin-1")) if raw_host is not None else None
        # No Host at all is HTTP/1.0 from a program; a browser always sends one.
        if raw_host is not None and (host is None or not self._serves(host[0], scope)):
            return 421, "bad_host", BAD_HOST
        origin = headers.get(b"origin")
        if origin is not None and not _same_origin(
            origin.decode("latin-1"), str(scope.get("scheme", "http")), host
        ):
            return 403, "cross_site", FROM_ORIGIN
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        if site and site not in OWN_SITE:
            shown = site if site in KNOWN_SITES else "an unknown value"
            return 403, "cross_site", FROM_SITE.format(shown)
        if str(scope.get("method", "GET")).upper() not in SAFE_METHODS:
            ctype = headers.get(b"content-type")
            if (ctype is None and _has_body(headers)) or (
                ctype is not None and not is_json_type(ctype.decode("latin-1"))
            ):
                return 415, "unsupported_media_type", NOT_JSON
        return None

    def _serves(self, name: str, scope: Scope) -> bool:
        if name in self.names:
            return True
        # The address this connection reached (on a till bound to 0.0.0.0, its LAN address):
        # an IP literal cannot be re-pointed by DNS, and it is this till's own.
        local = scope.get("server")
        return local is not None and _name(str(local[0])) == name

    def _log(self, scope: Scope, code: str) -> None:
        now = time.monotonic()
        if now - self._last_logged.get(code, -LOG_EVERY_SECONDS) < LOG_EVERY_SECONDS:
            self._quiet[code] = self._quiet.get(code, 0) + 1
            return
        self._last_logged[code] = now
        more = self._quiet.pop(code, 0)
        # The path may hold a card number (GET /v1/cards/…): masked, as in every log line.
        logger.warning(
            "refused %s %s: %s%s",
            scope.get("method", "?"),
            mask_in_text(str(scope.get("path", ""))[:200]),
            code,
            f" (and {more} more such refusals in the last minute)" if more else "",
        )


def with_browser_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` plus the browser headers it lacks; a page's own CSP is kept."""
    present = {key.lower() for key, _ in headers}
    added = [(k, v) for k, v in HEADERS if k not in present]
    if b"content-security-policy" not in present:
        added.append((b"content-security-policy", DATA_POLICY.encode()))
    return [*headers, *added]


def is_json_type(value: str) -> bool:
    """True for ``application/json``, bare or with a UTF-8 ``charset`` (any case, quoted)."""
    media, *params = value.split(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params:
        key, _, val = param.partition("=")
        if not param.strip():
            continue
        if key.strip().lower() != "charset" or val.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1\s*>", re.S | re.I)
_DATA_BLOCK = re.compile(r"""\btype\s*=\s*["']?application/(?:ld\+)?json""", re.I)


def page_policy(page: str) -> str:
    """The Content-Security-Policy of one of the API's own HTML pages.

    Exactly the page's inline ``<script>`` and ``<style>`` blocks may run, by their SHA-256
    (JSON data blocks are not scripts and need none); it may talk to its own origin and
    nothing else, and no page may frame it.
    """
    scripts: list[str] = []
    styles: list[str] = []
    for match in _INLINE.finditer(page):
        tag, attrs, body = match.group(1).lower(), match.group(2), match.group(3)
        if tag == "script" and _DATA_BLOCK.search(attrs):
            continue
        # A browser hashes the text after its parser has turned CR LF and CR into LF.
        text = body.replace("\r\n", "\n").replace("\r", "\n")
        digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
        (scripts if tag == "script" else styles).append(f"'sha256-{digest}'")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src " + (" ".join(dict.fromkeys(scripts)) or "'none'"),
            "style-src " + (" ".join(dict.fromkeys(styles)) or "'none'"),
            "connect-src 'self'",
            "img-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


# ---------------------------------------------------------------- names and origins


def _name(host: str) -> str:
    """A host name as compared: lower case; an IP address in its one canonical spelling."""
    host = host.strip().lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def _is_wildcard(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_unspecified
    except ValueError:
        return False


@functools.lru_cache(maxsize=64)  # every request's Host: the same few, parsed once each
def _split_host(value: str) -> tuple[str, int | None] | None:
    """A Host header as (name, port), ``[v6]`` unbracketed; None when it is malformed."""
    value = value.strip()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:]
    else:
        name, _, port_text = value.partition(":")
        if ":" in port_text:  # an IPv6 address must come in brackets
            return None
    if port_text and not (port_text.isascii() and port_text.isdigit() and int(port_text) < 65536):
        return None
    if not name or not re.fullmatch(r"[A-Za-z0-9._:%\-]+", name):
        return None
    return _name(name), int(port_text) if port_text else None


def _has_body(headers: dict[bytes, bytes]) -> bool:
    """True when the request announces a body: a length above 0, or chunks."""
    if b"transfer-encoding" in headers:
        return True
    length = headers.get(b"content-length", b"0").strip()
    # A malformed length is BodyLimit's 400, not a question of media type.
    return length.isdigit() and int(length) > 0


def _same_origin(origin: str, scheme: str, host: tuple[str, int | None] | None) -> bool:
    """True when ``origin`` is the origin the request was sent to (its scheme and Host)."""
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != scheme or not parts.hostname or parts.path or parts.query:
        return False
    default = 443 if scheme == "https" else 80
    return (_name(parts.hostname), port or default) == (host[0], host[1] or default)
