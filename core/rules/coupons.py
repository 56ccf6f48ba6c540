"""Signed coupon codes that any till of the chain can verify offline.

A coupon printed by one till must be honoured by another that cannot reach head office,
so the code carries everything needed to check it, signed with the chain's coupon key
(HMAC-SHA256, truncated to 40 bits)::

    TG  +  Crockford base32 of  version:4 | tag:24 | serial:32 | expiry day:15 | mac:40
        =  "TG" + 23 symbols = 25 characters, e.g. TG1A2B3C4D5E6F7G8H9J0K1M2

- ``tag`` is :func:`promotion_tag` of the promotion that honours the code; the service
  maps it back to a promotion id (HQ refuses a program whose coupon promotions collide).
- ``serial`` makes each code unique; :func:`serial_for` derives it from the receipt so a
  reprinted receipt shows the same code. Single use is enforced by the ledger, not here.
- ``expiry day`` is the last valid day, counted from 2020-01-01 (fits until 2109).
- 40 bits of MAC: a forger must try ~10¹² codes at a till to hit one, and every typing
  mistake is caught. Crockford base32 survives handwriting (O/0, I/L/1 are the same).

Pure: no I/O, no clock. Whether a code has expired is the caller's question, asked with
its own clock (:meth:`SignedCode.expired`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from ..errors import CouponInvalid

PREFIX = "TG"
VERSION = 1
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EPOCH = date(2020, 1, 1)

_TAG_BITS, _SERIAL_BITS, _DAY_BITS, _MAC_BITS, _VERSION_BITS = 24, 32, 15, 40, 4
_HEADER_BITS = _VERSION_BITS + _TAG_BITS + _SERIAL_BITS + _DAY_BITS  # 75
_TOTAL_BITS = _HEADER_BITS + _MAC_BITS  # 115 = 23 symbols × 5 bits
_SYMBOLS = _TOTAL_BITS // 5
MAX_SERIAL = (1 << _SERIAL_BITS) - 1
LAST_DAY = EPOCH + timedelta(days=(1 << _DAY_BITS) - 1)
# Crockford's reading rules: case-insensitive, O is 0, I and L are 1.
_DECODE = {c: i for i, c in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}
_MAC_DOMAIN = b"tillgate-coupon-v1\x00"


@dataclass(frozen=True, kw_only=True)
class SignedCode:
    """What a verified coupon code says: which promotion, which coupon, until when."""

    promotion_tag: int
    serial: int
    valid_until: date
    code: str  # canonical form

    def expired(self, today: date) -> bool:
        """True once ``today`` (till-local) is past the last valid day."""
        return today > self.valid_until


class CouponSigner:
    """Issues and verifies coupon codes with one chain-wide secret key."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise ValueError("a coupon key must be at least 16 random bytes")
        self._key = key

    def __repr__(self) -> str:
        return "CouponSigner(key=<hidden>)"

    def issue(self, *, promotion_id: str, serial: int, valid_until: date) -> str:
        """A new code for ``promotion_id``, valid up to and including ``valid_until``."""
        if not 0 <= serial <= MAX_SERIAL:
            raise ValueError(f"serial must be within 0..{MAX_SERIAL}")
        if not EPOCH <= valid_until <= LAST_DAY:
            raise ValueError(f"valid_until must be within {EPOCH}..{LAST_DAY}")
        day = (valid_until - EPOCH).days
        header = _pack_header(promotion_tag(promotion_id), serial, day)
        value = (header << _MAC_BITS) | self._mac(header)
        return PREFIX + _encode(value, _SYMBOLS)

    def verify(self, code: str) -> SignedCode:
        """Check a typed or scanned code; raise :class:`CouponInvalid` if malformed or forged."""
        canon = canonical(code)
        value = _decode(canon[len(PREFIX) :])
        header, mac = value >> _MAC_BITS, value & ((1 << _MAC_BITS) - 1)
        version = header >> (_HEADER_BITS - _VERSION_BITS)
        if version != VERSION:
            # A later layout would fail the MAC below for the wrong reason; say the real one.
            raise CouponInvalid(f"coupon code version {version} is not supported")
        if not hmac.compare_digest(self._mac(header).to_bytes(5), mac.to_bytes(5)):
            raise CouponInvalid("coupon code is not genuine (mistyped or forged)")
        tag = (header >> (_SERIAL_BITS + _DAY_BITS)) & ((1 << _TAG_BITS) - 1)
        serial = (header >> _DAY_BITS) & MAX_SERIAL
        day = header & ((1 << _DAY_BITS) - 1)
        return SignedCode(
            promotion_tag=tag,
            serial=serial,
            valid_until=EPOCH + timedelta(days=day),
            code=canon,
        )

    def _mac(self, header: int) -> int:
        message = _MAC_DOMAIN + header.to_bytes((_HEADER_BITS + 7) // 8)
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return int.from_bytes(digest[: _MAC_BITS // 8])


def canonical(code: str) -> str:
    """The one spelling of a typed code: upper case, no dashes or spaces, O→0, I/L→1.

    The ``TG`` prefix may be left out when typing. Raises :class:`CouponInvalid` when the
    text cannot be a coupon code at all (wrong length or characters).
    """
    text = "".join(code.split()).replace("-", "").upper() if isinstance(code, str) else ""
    with_prefix = len(text) == len(PREFIX) + _SYMBOLS and text.startswith(PREFIX)
    body = text[len(PREFIX) :] if with_prefix else text
    if len(body) != _SYMBOLS:
        raise CouponInvalid(
            f"not a coupon code: expected {PREFIX} and {_SYMBOLS} letters/digits (got {len(body)})"
        )
    try:
        return PREFIX + "".join(ALPHABET[_DECODE[c]] for c in body)
    except KeyError as exc:
        raise CouponInvalid(f"not a coupon code: {exc.args[0]!r} is not a code symbol") from exc


def promotion_tag(promotion_id: str) -> int:
    """The 24-bit tag a code carries for its promotion (first bits of SHA-256 of the id)."""
    digest = hashlib.sha256(promotion_id.encode("utf-8")).digest()
    return int.from_bytes(digest[: _TAG_BITS // 8])


def tag_collisions(promotion_ids: Iterable[str]) -> list[tuple[str, str]]:
    """Pairs of promotion ids whose tags collide (a program must not have any among coupons)."""
    seen: dict[int, str] = {}
    clashes: list[tuple[str, str]] = []
    for pid in promotion_ids:
        tag = promotion_tag(pid)
        if tag in seen and seen[tag] != pid:
            clashes.append((seen[tag], pid))
        seen.setdefault(tag, pid)
    return clashes


def serial_for(*parts: str) -> int:
    """A deterministic 32-bit serial from e.g. till id, receipt id and promotion id."""
    h = hashlib.sha256(b"tillgate-coupon-serial\x00")
    for part in parts:
        data = part.encode("utf-8")
        # Length-prefixed, so ("ab", "c") and ("a", "bc") give different serials.
        h.update(len(data).to_bytes(4) + data)
    return int.from_bytes(h.digest()[: _SERIAL_BITS // 8])


def generate_key() -> bytes:
    """A new random coupon key (32 bytes) for a chain."""
    return secrets.token_bytes(32)


def _pack_header(tag: int, serial: int, day: int) -> int:
    value = VERSION
    for bits, part in ((_TAG_BITS, tag), (_SERIAL_BITS, serial), (_DAY_BITS, day)):
        value = (value << bits) | part
    return value


def _encode(value: int, symbols: int) -> str:
    out = []
    for _ in range(symbols):
        value, digit = divmod(value, 32)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _decode(body: str) -> int:
    value = 0
    for c in body:
        value = value * 32 + ALPHABET.index(c)
    return value
