"""What tills and admins send head office, validated: the push batch, enrolment, admin bodies.

Bodies are parsed here, not by FastAPI, so that a refusal names the path of the first bad
field in the protocol's words (``entries[3].points: must be a whole number``) and a batch
over the size limit is refused before its entries are even looked at.

Every JSON body is bounded before it is parsed (:func:`check_json`): at most
:data:`MAX_DEPTH` levels of arrays and objects and :data:`MAX_DIGITS` digits in a row in a
number, so no body can exhaust the parser's recursion or the integer conversion, and no
finite-looking literal becomes an infinity. Those refusals are 400 ``json_too_deep`` and
``number_too_large``, never a traceback.

A push (:func:`parse_push`, about 2 MB for 1,000 entries with their receipt facts) is
decoded by msgspec, which keeps each receipt-fact body as the text the till sent
(:attr:`FactIn.text`: stored as it is, never encoded again); anything that fast path does
not take goes the ordinary way (``json`` and pydantic), so every refusal reads the same.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from itertools import accumulate
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import msgspec
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    field_validator,
)

from tillgate.core.errors import BatchTooLarge, InvalidRequest, JsonTooDeep, NumberTooLarge

MAX_BATCH = 1000
MAX_ADJUST = 10**9  # points one admin adjust may move
M = TypeVar("M", bound=BaseModel)
BIGINT = 2**63 - 1
# The deepest body HQ takes is a program file (about 8 levels); 32 leaves room to grow and
# stays far below Python's recursion limit, which an unbounded body reached (a 500).
MAX_DEPTH = 32
# Digits in a row in a number literal. Only the parser's safety: Python refuses to convert
# an integer of over 4300 digits at all (a 500) and is quadratic before that. Far above
# anything HQ stores (a BIGINT has 19), so the fields' own range checks still answer with
# a path, and an odd number in a till's receipt facts is still skipped, never refused
# (a refused push would stop the till's outbox).
MAX_DIGITS = 100

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]
CardNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,40}$")]
# What the database can store. Whether a till may push it is head office's judgement
# (tillgate.hq.authority): an entry out of its bounds is quarantined, not refused, so that
# it never blocks the entries after it.
Points = Annotated[int, Field(strict=True, ge=-BIGINT, le=BIGINT)]
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z_]{0,31}$")]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def ts(when: datetime) -> str:
    """Instants are stored and sent as UTC ISO-8601 with microseconds (they sort as text)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def whole(name: str, value: object, low: int, high: int) -> int:
    """``value`` if it is an integer (not a bool) within [low, high], else a 400 (a query
    parameter: FastAPI hands over any integer, however long)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{name}: must be an integer")
    if not low <= value <= high:
        raise InvalidRequest(f"{name}: must be between {low} and {high}")
    return value


class _In(BaseModel):
    # Unknown fields are ignored: a newer till may send more than this HQ knows.
    model_config = ConfigDict(extra="ignore", frozen=True)


class EntryIn(_In):
    id: Text64
    seq: Annotated[int, Field(strict=True, ge=1)]
    till: Ident
    card: CardNumber
    kind: Kind
    points: Points
    receipt_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    refund_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    ref: Annotated[str, StringConstraints(max_length=128)] | None = None
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None
    created_at: AwareDatetime
    available_from: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None

    @field_validator("created_at", "available_from", "expires_at")
    @classmethod
    def _in_utc_range(cls, v: datetime | None) -> datetime | None:
        # Stored as UTC text: 9999-12-31T23:00-05:00 is beyond the year 9999 in UTC.
        if v is not None:
            try:
                v.astimezone(UTC)
            except OverflowError:
                raise ValueError("is out of range (after 9999-12-31 in UTC)") from None
        return v

    def stored(self) -> dict[str, Any]:
        """The entry as HQ stores and compares it (instants normalised to UTC text)."""
        return {
            "id": self.id,
            "till": self.till,
            "seq": self.seq,
            "card": self.card,
            "kind": self.kind,
            "points": self.points,
            "receipt_id": self.receipt_id,
            "refund_id": self.refund_id,
            "ref": self.ref,
            "note": self.note,
            "created_at": ts(self.created_at),
            "available_from": ts(self.available_from) if self.available_from else None,
            "expires_at": ts(self.expires_at) if self.expires_at else None,
        }


class CouponUseIn(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    promotion_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    receipt_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    card: CardNumber | None = None
    used_at: AwareDatetime


class CardNewIn(_In):
    number: CardNumber
    status: Literal["new", "active", "blocked"] = "new"
    created_at: AwareDatetime | None = None


class FactIn(_In):
    """One receipt's (or refund's) facts, as the till recorded them (tillgate.core.rules.facts)."""

    id: Annotated[str, StringConstraints(pattern=r"^(sale|refund):[^\x00-\x1f]{1,128}$")]
    kind: Literal["sale", "refund"]
    receipt_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    after_seq: Annotated[int, Field(strict=True, ge=0, le=BIGINT)]
    created_at: AwareDatetime
    # The body as head office reads it: from a push (parse_push), only its fields that
    # head office reads (_ReadBody); the whole body is :attr:`text`.
    body: dict[str, Any]
    # The body's JSON as the till sent it (set by parse_push; never a field a till sends).
    _text: str | None = PrivateAttr(default=None)

    @property
    def text(self) -> str:
        """The body as JSON text: as the till sent it, or (a fact built otherwise) encoded."""
        if self._text is None:
            return json.dumps(self.body, ensure_ascii=False, sort_keys=True)
        return self._text


ReceiptId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
CouponCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]
MAX_HOLD_COUPONS = 50


class HoldIn(_In):
    """An online calculate's reservation (``POST /v1/holds``): points and coupon codes."""

    receipt_id: ReceiptId
    card: CardNumber | None = None
    points: Annotated[int, Field(strict=True, ge=0, le=BIGINT)] = 0
    # True: the POS asked for exactly this many points; less is no use (nothing changes).
    exact: bool = False
    coupons: Annotated[list[CouponCode], Field(max_length=MAX_HOLD_COUPONS)] = []
    seconds: Annotated[int, Field(strict=True, ge=1, le=86_400)] = 600


class HoldResolutionIn(_In):
    """How a receipt's hold ended at the till: confirmed (with the points redeemed),
    cancelled, or released (priced offline after no answer; head office's hold goes)."""

    receipt_id: ReceiptId
    resolution: Literal["confirmed", "cancelled", "released"]
    redeemed: Annotated[int, Field(strict=True, ge=0, le=BIGINT)] = 0
    coupons: Annotated[list[CouponCode], Field(max_length=MAX_HOLD_COUPONS)] = []
    card: CardNumber | None = None
    at: AwareDatetime | None = None


class PushIn(_In):
    till: Ident
    entries: list[EntryIn] = []
    coupons_used: list[CouponUseIn] = []
    cards_new: list[CardNewIn] = []
    facts: Annotated[list[FactIn], Field(max_length=MAX_BATCH)] = []
    holds: Annotated[list[HoldResolutionIn], Field(max_length=MAX_BATCH)] = []


class CardAdjustIn(_In):
    """Head office's own credit (points > 0) or debit (points < 0) of a card."""

    points: Annotated[int, Field(strict=True, ge=-MAX_ADJUST, le=MAX_ADJUST)]
    reason: Reason

    @field_validator("points")
    @classmethod
    def _not_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("must not be 0 (a credit is > 0, a debit < 0)")
        return v


class DecisionIn(_In):
    """An admin's release or reject of a quarantined entry: why (optional)."""

    reason: Reason | None = None


class EnrollIn(_In):
    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class EnrollCodeIn(_In):
    store: Ident
    till: Ident


class CouponsIssueIn(_In):
    promotion: Ident
    count: Annotated[int, Field(strict=True, ge=1, le=100_000)]
    valid_until: datetime | None = None


class CouponsRevokeIn(_In):
    codes: Annotated[list[Annotated[str, StringConstraints(min_length=1)]], Field(min_length=1)]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)] = "revoked"


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (("." if out else "") + str(part))
    return out


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "timezone_aware":
        return "must be a time with an offset, e.g. 2026-11-23T06:00:00+00:00"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def first_error(exc: ValidationError) -> str:
    """The first problem of a validation error as ``path: message``."""
    err: dict[str, Any] = dict(exc.errors()[0])
    path = _path(tuple(err.get("loc", ())))
    msg = _message(err)
    return f"{path}: {msg}" if path else msg


# Bytes, not text: no byte of a multi-byte UTF-8 character is ASCII, so a scan of the raw
# body sees exactly the brackets, quotes and digits a parser would.
_NOT_MARKS = bytes(range(256)).translate(None, b'"[]{}')  # every other byte, to delete
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_TOO_LONG = b"0" * (MAX_DIGITS + 1)


def _outside_strings(text: bytes) -> bytes:
    """The pieces of ``text`` (with no escapes left) that are not between quotes."""
    return b"".join(text.split(b'"')[::2])


def check_json(body: bytes) -> None:
    """Refuse a JSON body nested deeper than MAX_DEPTH or with a number over MAX_DIGITS digits.

    A scan, not a parse: linear in the body, without recursion and at C speed, so it is
    safe on anything the size limit lets through, well-formed or not. Text inside strings
    never counts: escapes go first (a backslash is only ever in a string), then every
    piece between quotes is a string.

    Only the quotes and brackets are kept for the depth, and two quotes side by side (a
    string with no bracket in it, or the gap between two strings with none in it) go at
    once: what is left of a 2 MB push is its brackets, not its hundreds of thousands of
    strings. The digits are looked for in the whole body first; only a body with a run
    that long anywhere is scanned for one outside its strings.
    """
    unescaped = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    marks = unescaped.translate(None, _NOT_MARKS).replace(b'""', b"")
    brackets = _outside_strings(marks) if b'"' in marks else marks
    if len(brackets) > MAX_DEPTH and max(accumulate(map(_STEP.__getitem__, brackets))) > MAX_DEPTH:
        raise JsonTooDeep(
            f"the JSON is nested deeper than {MAX_DEPTH} levels of arrays and objects",
            details={"max_depth": MAX_DEPTH},
        )
    if _TOO_LONG in body.translate(_DIGITS_AS_ZERO) and _TOO_LONG in _outside_strings(
        unescaped
    ).translate(_DIGITS_AS_ZERO):
        raise NumberTooLarge(
            f"a number in the JSON has more than {MAX_DIGITS} digits; nothing head office "
            "stores is anywhere near that large",
            details={"max_digits": MAX_DIGITS},
        )


def json_text(body: bytes) -> str:
    """A request body as text (JSON is UTF-8), or InvalidRequest saying where it is not."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: byte {exc.start} is not UTF-8") from exc


def _finite(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise NumberTooLarge(f"the number {literal[:40]} is too large (it is infinite as a float)")
    return value


def _not_json(name: str) -> NoReturn:
    raise InvalidRequest(f"malformed JSON: {name} is not a JSON number")


def decode_json(body: bytes) -> Any:
    """A request body as JSON within the bounds of :func:`check_json`, or InvalidRequest
    (``json_too_deep``, ``number_too_large``, ``invalid_request``) saying why it is not."""
    check_json(body)
    text = json_text(body)
    try:
        return json.loads(text, parse_float=_finite, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from exc


def parse(model: type[M], data: Any) -> M:
    """Validate decoded JSON against ``model``; InvalidRequest names the first bad field."""
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(first_error(exc)) from exc


class _RawFact(msgspec.Struct):
    """A receipt fact as msgspec reads it: its body kept as the text the till sent."""

    id: Any = msgspec.UNSET
    kind: Any = msgspec.UNSET
    receipt_id: Any = msgspec.UNSET
    after_seq: Any = msgspec.UNSET
    created_at: Any = msgspec.UNSET
    body: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


class _RawPush(msgspec.Struct):
    """A push as msgspec reads it (unknown fields skipped, never built); pydantic then
    validates what it read (:class:`PushIn`)."""

    till: Any = msgspec.UNSET
    entries: Any = msgspec.UNSET
    coupons_used: Any = msgspec.UNSET
    cards_new: Any = msgspec.UNSET
    holds: Any = msgspec.UNSET
    facts: list[_RawFact] | msgspec.UnsetType = msgspec.UNSET


class _ReadBody(msgspec.Struct):
    """What head office reads of a fact body: the top-level fields the counters
    (:mod:`tillgate.hq.counters`) and the facts' card column read. msgspec checks the rest
    is JSON and skips it, never building it: the body is stored as the text sent."""

    card: Any = msgspec.UNSET
    local_time: Any = msgspec.UNSET
    total: Any = msgspec.UNSET
    uses: Any = msgspec.UNSET
    stamps: Any = msgspec.UNSET
    budget: Any = msgspec.UNSET
    amount_returned: Any = msgspec.UNSET
    at: Any = msgspec.UNSET


_PUSH_DECODER = msgspec.json.Decoder(_RawPush)
_BODY_DECODER = msgspec.json.Decoder()
_READ_DECODER = msgspec.json.Decoder(_ReadBody)
# An exponent of three digits or more: the only way a number of at most MAX_DIGITS digits
# in a row can be infinite as a float (10**100 * 10**99 is not).
_EXPONENTS = bytes.maketrans(b"0123456789E+", b"0000000000e-")


def _may_be_infinite(body: bytes) -> bool:
    """Whether some literal of ``body`` may be an infinite float (inside strings too: a
    false alarm only costs decoding every fact body whole)."""
    marked = body.translate(_EXPONENTS)
    return b"e000" in marked or b"e-000" in marked


def _given(struct: msgspec.Struct) -> dict[str, Any]:
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not msgspec.UNSET
    }


def _fast_push(body: bytes) -> tuple[dict[str, Any], list[str | None]] | None:
    """The push as data, and each fact's body as the text the till sent (None: the body
    is not an object, which validation refuses); None when this path does not take the
    body (malformed, an infinite number, a list that is not one): :func:`decode_json`
    then refuses it, with the words it always had. Bounded by :func:`check_json` first."""
    try:
        push = _PUSH_DECODER.decode(body)
        data = _given(push)
        if isinstance(push.facts, msgspec.UnsetType):
            return data, []
        facts, texts = [], []
        # A body is decoded only as far as head office reads it (a skipped field is still
        # checked to be JSON, but a skipped infinity is not refused: then whole, as ever).
        whole = _may_be_infinite(body)
        for raw in push.facts:
            fact = _given(raw)
            text = None
            if not isinstance(raw.body, msgspec.UnsetType):
                if whole:
                    fact["body"] = _BODY_DECODER.decode(raw.body)
                else:
                    fact["body"] = _given(_READ_DECODER.decode(raw.body))
                if isinstance(fact["body"], dict):
                    text = bytes(raw.body).decode("utf-8")
            facts.append(fact)
            texts.append(text)
        data["facts"] = facts
        return data, texts
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def parse_push(body: bytes, *, bounded: bool = False) -> PushIn:
    """The push batch: size first (413), then every field (400 with the path).

    Each receipt fact keeps the text of its body as the till sent it (:attr:`FactIn.text`):
    valid JSON within :func:`check_json`'s bounds, an object, and what head office stores.
    ``bounded``: the caller has had ``body`` through :func:`check_json` already (the app
    does, for every route: ``middleware.bounded_json``), which is not done twice (≈ 9 ms
    of a 2 MB push).
    """
    if not bounded:
        check_json(body)
    json_text(body)  # not UTF-8: refused, naming the byte
    fast = _fast_push(body)
    data, texts = fast if fast is not None else (decode_json(body), [])
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        n = len(data["entries"])
        if n > MAX_BATCH:
            raise BatchTooLarge(
                f"{n} entries in one push; at most {MAX_BATCH}: send them in smaller batches",
                details={"max": MAX_BATCH},
            )
    push = parse(PushIn, data)
    for fact, text in zip(push.facts, texts, strict=False):
        fact._text = text
    for i, e in enumerate(push.entries):
        if i and e.seq != push.entries[i - 1].seq + 1:
            raise InvalidRequest(
                f"entries[{i}].seq: {e.seq} does not follow {push.entries[i - 1].seq}; entries "
                "must be in ascending seq with no holes"
            )
    return push


def parse_since(text: str | None) -> datetime | None:
    """A ``since`` query parameter: a date or a time with an offset (a date means 00:00 UTC)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequest(f"since: {text!r} is not a date or an ISO-8601 time") from exc
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
