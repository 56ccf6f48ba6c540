"""What tills and admins send head office, validated: the push batch, enrolment, admin bodies.

Bodies are parsed here, not by FastAPI, so that a refusal names the path of the first bad
field in the protocol's words (``entries[3].points: must be a whole number``) and a batch
over the size limit is refused before its entries are even looked at.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from tillgate.core.errors import BatchTooLarge, InvalidRequest

MAX_BATCH = 1000
M = TypeVar("M", bound=BaseModel)
KINDS = ("accrue", "redeem", "hold", "release", "reverse", "return", "expire", "adjust")

Text64 = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]
CardNumber = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,40}$")]
Points = Annotated[int, Field(strict=True, ge=-(10**12), le=10**12)]


def ts(when: datetime) -> str:
    """Instants are stored and sent as UTC ISO-8601 with microseconds (they sort as text)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


class _In(BaseModel):
    # Unknown fields are ignored: a newer till may send more than this HQ knows.
    model_config = ConfigDict(extra="ignore", frozen=True)


class EntryIn(_In):
    id: Text64
    seq: Annotated[int, Field(strict=True, ge=1)]
    till: Ident
    card: CardNumber
    kind: Literal["accrue", "redeem", "hold", "release", "reverse", "return", "expire", "adjust"]
    points: Points
    receipt_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    refund_id: Annotated[str, StringConstraints(max_length=128)] | None = None
    ref: Annotated[str, StringConstraints(max_length=128)] | None = None
    note: Annotated[str, StringConstraints(max_length=1000)] | None = None
    created_at: AwareDatetime
    available_from: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None

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


class PushIn(_In):
    till: Ident
    entries: list[EntryIn] = []
    coupons_used: list[CouponUseIn] = []
    cards_new: list[CardNewIn] = []


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


def decode_json(body: bytes) -> Any:
    """A request body as JSON, or InvalidRequest saying why it is not."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(f"malformed JSON: {exc}") from exc


def parse(model: type[M], data: Any) -> M:
    """Validate decoded JSON against ``model``; InvalidRequest names the first bad field."""
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(first_error(exc)) from exc


def parse_push(body: bytes) -> PushIn:
    """The push batch: size first (413), then every field (400 with the path)."""
    data = decode_json(body)
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        n = len(data["entries"])
        if n > MAX_BATCH:
            raise BatchTooLarge(
                f"{n} entries in one push; at most {MAX_BATCH}: send them in smaller batches",
                details={"max": MAX_BATCH},
            )
    push = parse(PushIn, data)
    for i, e in enumerate(push.entries):
        if i and e.seq != push.entries[i - 1].seq + 1:
            raise InvalidRequest(
                f"entries[{i}].seq: {e.seq} does not follow {push.entries[i - 1].seq}; entries "
                "must be in ascending seq with no holes"
            )
    return push
