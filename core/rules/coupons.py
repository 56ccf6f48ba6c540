"""Signed coupon codes that any till of the chain can verify offline.

A coupon printed by one till must be honoured by another that cannot reach head office,
so the code carries everything needed to check it, signed with one of the chain's coupon
keys (HMAC-SHA256, truncated to 40 bits). Two layouts, both 23 symbols::

    version 1:  version:4 |         tag:24 | serial:32 | expiry day:15 | mac:40
    version 2:  version:4 | key:5 | tag:24 | serial:27 | expiry day:15 | mac:40

    TG  +  Crockford base32 of the 115 bits  =  25 characters, e.g. TG1A2B3C4D5E6F7G8H9J0K1M2

- ``key`` names the key that signed the code (1‥31). A version-1 code is key 1's: codes
  signed with key 1 keep layout 1, so tills not yet upgraded still read them and every
  code printed before keys had ids stays valid until it expires. Every later key (after
  ``tillgate hq coupons rotate-key``) writes layout 2. A code whose key is unknown to the
  verifier, or revoked, is refused with that reason, before its MAC is even looked at.
- ``tag`` is :func:`promotion_tag` of the promotion that honours the code; the service
  maps it back to a promotion id (HQ refuses a program whose coupon promotions collide).
- ``serial`` makes each code unique; :func:`serial_for` derives it from the receipt so a
  reprinted receipt shows the same code. A version-2 code keeps the serial's low 27 bits.
  Single use is enforced by the ledger, not here.
- ``expiry day`` is the last valid day, counted from 2020-01-01 (fits until 2109).
- 40 bits of MAC: a forger must try ~10¹² codes at a till to hit one, and every typing
  mistake is caught. Crockford base32 survives handwriting (O/0, I/L/1 are the same).

Why the key id's 5 bits come from the serial, not the tag or the MAC: the MAC is the
forgery bound and stays whole; a shorter tag would make coupon promotions collide sooner,
and a collision makes a program unusable; a shorter serial only makes two codes of one
promotion with the same expiry day coincide sooner — 50 % at ~13,600 codes instead of
~77,000 — and head office's issuing skips a code it has already issued. The price: at
most 31 keys in a chain's life (a key id is never reused), plenty for rotating on a
compromise or once a year; and the code stays 25 characters, so receipts and the
coupon pictures keep their layout.

Pure: no I/O, no clock. Whether a code has expired is the caller's question, asked with
its own clock (:meth:`SignedCode.expired`); where the keys live is the caller's too
(:class:`KeySource`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from ..errors import CouponInvalid

PREFIX = "TG"
VERSION = 2  # the layout of codes signed with any key but key 1 (see the module docstring)
LEGACY_KEY = 1  # version-1 codes are this key's
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
EPOCH = date(2020, 1, 1)

_VERSION_BITS, _KEY_BITS, _TAG_BITS, _DAY_BITS, _MAC_BITS = 4, 5, 24, 15, 40
_SERIAL_BITS = {1: 32, 2: 27}  # per layout: version 2 gives 5 of the serial's bits to the key
_HEADER_BITS = 75  # version + (key) + tag + serial + day, in both layouts
_TOTAL_BITS = _HEADER_BITS + _MAC_BITS  # 115 = 23 symbols × 5 bits
_SYMBOLS = _TOTAL_BITS // 5
MAX_SERIAL = (1 << _SERIAL_BITS[1]) - 1  # what issue() takes; layout 2 keeps the low bits
MAX_KEY_ID = (1 << _KEY_BITS) - 1
LAST_DAY = EPOCH + timedelta(days=(1 << _DAY_BITS) - 1)
# Crockford's reading rules: case-insensitive, O is 0, I and L are 1.
_DECODE = {c: i for i, c in enumerate(ALPHABET)} | {"O": 0, "I": 1, "L": 1}
_MAC_DOMAIN = b"tillgate-coupon-v1\x00"  # the header's version bits tell the layouts apart
_FINGERPRINT_DOMAIN = b"tillgate-coupon-key-fingerprint\x00"


@dataclass(frozen=True, kw_only=True)
class SignedCode:
    """What a verified coupon code says: which promotion, which coupon, until when."""

    promotion_tag: int
    serial: int
    valid_until: date
    code: str  # canonical form
    key_id: int = LEGACY_KEY  # the key that signed it

    def expired(self, today: date) -> bool:
        """True once ``today`` (till-local) is past the last valid day."""
        return today > self.valid_until


@dataclass(frozen=True, kw_only=True)
class CouponKeys:
    """A chain's coupon keys as one value: id → key, and the ids revoked.

    New codes are signed with ``current``, the newest key not revoked; codes of every
    other known key verify until they expire, codes of a revoked key never again.
    """

    keys: Mapping[int, bytes] = field(default_factory=dict)
    revoked: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        for key_id, key in self.keys.items():
            check_key_id(key_id)
            if not isinstance(key, bytes) or len(key) < 16:
                raise ValueError("a coupon key must be at least 16 random bytes")

    def __repr__(self) -> str:  # never print a key
        return f"CouponKeys(ids={sorted(self.keys)}, revoked={sorted(self.revoked)})"

    @property
    def current(self) -> int | None:
        """The id new codes are signed with (None: no key that may sign)."""
        usable = [k for k in self.keys if k not in self.revoked]
        return max(usable) if usable else None


class KeySource(Protocol):
    """Where a signer finds the keys in force (the till's key folder, head office's)."""

    def coupon_keys(self) -> CouponKeys: ...


class CouponSigner:
    """Issues and verifies coupon codes with the chain's keys.

    ``CouponSigner(key)`` signs with one key, as key 1; ``CouponSigner(keys)`` with a
    fixed :class:`CouponKeys`; ``CouponSigner(source)`` asks a :class:`KeySource` on each
    use, so keys that arrive or are revoked while the service runs are in force at once.
    """

    def __init__(self, key: bytes | CouponKeys | KeySource) -> None:
        if isinstance(key, bytes | bytearray):
            key = CouponKeys(keys={LEGACY_KEY: bytes(key)})
        if not isinstance(key, CouponKeys) and not hasattr(key, "coupon_keys"):
            raise ValueError("a coupon key must be at least 16 random bytes")
        self._source = key

    def __repr__(self) -> str:
        return "CouponSigner(key=<hidden>)"

    def keys(self) -> CouponKeys:
        source = self._source
        return source if isinstance(source, CouponKeys) else source.coupon_keys()

    def issue(self, *, promotion_id: str, serial: int, valid_until: date) -> str:
        """A new code for ``promotion_id``, valid up to and including ``valid_until``."""
        if not 0 <= serial <= MAX_SERIAL:
            raise ValueError(f"serial must be within 0..{MAX_SERIAL}")
        if not EPOCH <= valid_until <= LAST_DAY:
            raise ValueError(f"valid_until must be within {EPOCH}..{LAST_DAY}")
        ring = self.keys()
        key_id = ring.current
        if key_id is None:
            raise CouponInvalid("no coupon key may sign: every key is revoked; rotate the key")
        day = (valid_until - EPOCH).days
        header = _pack_header(key_id, promotion_tag(promotion_id), serial, day)
        value = (header << _MAC_BITS) | _mac(ring.keys[key_id], header)
        return PREFIX + _encode(value, _SYMBOLS)

    def verify(self, code: str) -> SignedCode:
        """Check a typed or scanned code; raise :class:`CouponInvalid` if malformed, forged,
        or signed with a key that is revoked or unknown here."""
        canon = canonical(code)
        value = _decode(canon[len(PREFIX) :])
        header, mac = value >> _MAC_BITS, value & ((1 << _MAC_BITS) - 1)
        version = header >> (_HEADER_BITS - _VERSION_BITS)
        if version not in _SERIAL_BITS:
            # A later layout would fail the MAC below for the wrong reason; say the real one.
            raise CouponInvalid(f"coupon code version {version} is not supported")
        serial_bits = _SERIAL_BITS[version]
        key_id = LEGACY_KEY
        if version >= 2:
            key_id = (header >> (_TAG_BITS + serial_bits + _DAY_BITS)) & MAX_KEY_ID
        ring = self.keys()
        if key_id in ring.revoked:
            raise CouponInvalid(
                f"coupon code was signed with coupon key {key_id}, which head office revoked"
            )
        key = ring.keys.get(key_id)
        if key is None:
            raise CouponInvalid(
                f"coupon code was signed with coupon key {key_id}, which this till does not "
                "know (not yet synced from head office, or forged)"
            )
        if not hmac.compare_digest(_mac(key, header).to_bytes(5), mac.to_bytes(5)):
            raise CouponInvalid("coupon code is not genuine (mistyped or forged)")
        tag = (header >> (serial_bits + _DAY_BITS)) & ((1 << _TAG_BITS) - 1)
        serial = (header >> _DAY_BITS) & ((1 << serial_bits) - 1)
        day = header & ((1 << _DAY_BITS) - 1)
        return SignedCode(
            promotion_tag=tag,
            serial=serial,
            valid_until=EPOCH + timedelta(days=day),
            code=canon,
            key_id=key_id,
        )


def check_key_id(key_id: int) -> int:
    """``key_id`` if a code can carry it (1‥31), else ValueError."""
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 1 <= key_id <= MAX_KEY_ID:
        raise ValueError(f"a coupon key id is a whole number within 1..{MAX_KEY_ID}")
    return key_id


def fingerprint(key: bytes) -> str:
    """A short public name of a key (16 hex digits): tells two copies apart, reveals nothing."""
    return hmac.new(key, _FINGERPRINT_DOMAIN, hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, header: int) -> int:
    message = _MAC_DOMAIN + header.to_bytes((_HEADER_BITS + 7) // 8)
    digest = hmac.new(key, message, hashlib.sha256).digest()
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
    return int.from_bytes(h.digest()[: _SERIAL_BITS[1] // 8])


def generate_key() -> bytes:
    """A new random coupon key (32 bytes) for a chain."""
    return secrets.token_bytes(32)


def _pack_header(key_id: int, tag: int, serial: int, day: int) -> int:
    if key_id == LEGACY_KEY:
        fields = [(_VERSION_BITS, 1), (_TAG_BITS, tag), (_SERIAL_BITS[1], serial)]
    else:
        serial &= (1 << _SERIAL_BITS[2]) - 1
        fields = [
            (_VERSION_BITS, 2),
            (_KEY_BITS, key_id),
            (_TAG_BITS, tag),
            (_SERIAL_BITS[2], serial),
        ]
    value = 0
    for bits, part in (*fields, (_DAY_BITS, day)):
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
