"""HQ's replies as validated values (``docs/sync-protocol.md``), checked before use.

Whatever HQ answers is checked whole here, before any of it touches the till's data file:
a reply with a wrong field becomes one :class:`~tillgate.core.errors.HqBadReply` naming
the field, never a half-applied page or a KeyError in a sync thread.

Every number is bounded to what SQLite (and HQ's databases) hold, a signed 64-bit
integer: a bigger one would fail the write half-way through a page, or, as a cursor, be
stored and sent back to HQ on every pull. Every list stops at its first bad item: a page
of a million bad cards is one error, not a million (which took a gigabyte to build).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    FailFast,
    Field,
    PrivateAttr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from tillgate.core.errors import HqBadReply
from tillgate.core.productfile import MAX_ITEMS, MAX_LEN
from tillgate.core.products import Product
from tillgate.core.rules.tiers import parse_birthday

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
NonNeg = Annotated[int, Field(ge=0, le=INT64_MAX)]
T = TypeVar("T")
Items = Annotated[list[T], FailFast()]  # stops at the first bad item


class _Reply(BaseModel):
    # HQ may add fields in a later version; the till ignores what it does not know.
    model_config = ConfigDict(extra="ignore", frozen=True)

    @classmethod
    def checked(cls, **fields: Any) -> Self:
        """An instance of ``fields`` (every field, each already checked against the model's
        bounds), built without validating them again: what ``model_construct`` does, at a
        tenth of its cost (22 µs a card, half a first start's parsing; tests/sync/
        test_wire_fast.py checks the two agree)."""
        made = cls.__new__(cls)
        object.__setattr__(made, "__dict__", fields)
        object.__setattr__(made, "__pydantic_fields_set__", set(fields))
        object.__setattr__(made, "__pydantic_extra__", None)
        object.__setattr__(made, "__pydantic_private__", None)
        return made


class Conflict(_Reply):
    """An entry of this till that HQ holds differently (same id or same seq)."""

    seq: Annotated[int, Field(ge=1, le=INT64_MAX)]
    id: str = ""
    reason: str = ""


class PushReply(_Reply):
    through_seq: NonNeg
    stored: NonNeg = 0
    duplicates: NonNeg = 0
    conflicts: Items[Conflict] = []
    negative_cards: Items[str] = []
    facts: Items[str] = []  # the ids of the receipt facts head office holds
    holds: Items[str] = []  # the receipts whose hold resolution head office now holds


class CouponVerdict(_Reply):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    status: Annotated[str, Field(min_length=1, max_length=32)]


class HoldReply(_Reply):
    """Head office's answer to a hold: what it reserved for the receipt, and until when."""

    receipt_id: str
    granted: NonNeg
    available: NonNeg = 0
    seconds: Annotated[int, Field(ge=0, le=86_400)]
    refused: str | None = None
    coupons: Annotated[list[CouponVerdict], FailFast(), Field(max_length=50)] = []


class ResolveReply(_Reply):
    receipt_id: str
    status: str


class Lot(_Reply):
    points: Int64
    available_from: AwareDatetime
    expires_at: AwareDatetime | None = None


# What the other tills counted of a card (docs/sync-protocol.md, "Chain-wide counters").
# Bounded to what a true HQ sends (hq/counters.py): spend days SPEND_DAYS + 3, use days
# 2 × USE_DAYS + 1, promotions MAX_PROMOTIONS (the same number on both sides).
MAX_SPEND_DAYS, MAX_USE_DAYS, MAX_PROMOTIONS = 3700, 10, 10_000
PromotionId = Annotated[str, Field(min_length=1, max_length=64)]


class PromotionUses(_Reply):
    total: NonNeg = 0
    days: Annotated[dict[date, NonNeg], Field(max_length=MAX_USE_DAYS)] = {}


class ChainCounts(_Reply):
    """A card's counts at every other till: the requesting till adds its own."""

    visits: NonNeg = 0
    # [local day, kopecks]: a refund of a sale head office never saw may make a day negative
    spend: Annotated[list[tuple[date, Int64]], FailFast(), Field(max_length=MAX_SPEND_DAYS)] = []
    uses: Annotated[dict[PromotionId, PromotionUses], Field(max_length=MAX_PROMOTIONS)] = {}
    stamps: Annotated[dict[PromotionId, NonNeg], Field(max_length=MAX_PROMOTIONS)] = {}


# A till keeps a card holder's display name, phone hash and birthday's month and day
# (docs/security.md, "Personal data"); a head office from before that sends the full
# name, phone and date: the full phone is ignored, and sync/feed.py keeps of the rest
# only what the till may hold.
HexDigest = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _month_day(text: str) -> str:
    parse_birthday(text)  # ValueError for --02-30 and the like
    return text


MonthDay = Annotated[str, Field(pattern=r"^--\d\d-\d\d$"), AfterValidator(_month_day)]


class CardChange(_Reply):
    number: Annotated[str, Field(min_length=1, max_length=64)]
    holder: str = ""
    phone_hash: HexDigest | None = None
    birthday: MonthDay | date | None = None
    tier: str | None = None
    segments: Items[str] = []
    clubs: Items[str] = []
    status: Literal["active", "new", "blocked"] = "active"
    balance: Int64 = 0
    pending: NonNeg = 0
    lots: Items[Lot] = []
    through_seq: NonNeg = 0
    held: NonNeg = 0  # what other tills' open receipts hold of the card at head office
    uses: ChainCounts = ChainCounts()  # the name is the protocol's (it began as uses only)


NO_COUNTS = ChainCounts()  # a card no other till counted (most of a first snapshot)
_CARD_FIELDS = frozenset(CardChange.model_fields)
_LOT_FIELDS = frozenset(Lot.model_fields)
_STATUSES = frozenset(("active", "new", "blocked"))
_HEX64 = re.compile(r"[0-9a-f]{64}")
_MONTH_DAY = re.compile(r"--[0-9][0-9]-[0-9][0-9]")
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-][0-9][0-9]:[0-9][0-9])"
)


def _fast_card(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A card as :class:`CardChange` checks it, at a tenth of the cost for the plain ones.

    A snapshot is a million cards, and a model's validation of each (its defaults deep
    copied, every field through the generic machinery) was half of a till's first start.
    A card in the shape head office sends (known fields, plain values, no counts from
    other tills) is checked here, field by field, against the same bounds; anything else
    (a count, an odd value, a bad one) goes through the model, so every error reads as
    it did and names its field."""
    card = _plain_card(value)
    return handler(value) if card is None else card


def _plain_card(d: Any) -> CardChange | None:
    if type(d) is not dict or not d.keys() <= _CARD_FIELDS:
        return None
    number, holder = d.get("number"), d.get("holder", "")
    if type(number) is not str or not 0 < len(number) <= 64 or type(holder) is not str:
        return None
    phone_hash, birthday, tier = d.get("phone_hash"), d.get("birthday"), d.get("tier")
    if phone_hash is not None and (type(phone_hash) is not str or not _HEX64.fullmatch(phone_hash)):
        return None
    if birthday is not None:
        if type(birthday) is not str or not _MONTH_DAY.fullmatch(birthday):
            return None
        try:
            parse_birthday(birthday)
        except ValueError:
            return None
    segments, clubs, status = d.get("segments", []), d.get("clubs", []), d.get("status", "active")
    if (tier is not None and type(tier) is not str) or not _texts(segments) or not _texts(clubs):
        return None
    balance, pending = d.get("balance", 0), d.get("pending", 0)
    through_seq, held, lots = d.get("through_seq", 0), d.get("held", 0), d.get("lots", [])
    if (
        type(status) is not str
        or status not in _STATUSES
        or not _whole(balance, INT64_MIN)
        or not all(_whole(v, 0) for v in (pending, through_seq, held))
        or type(lots) is not list
        or d.get("uses", {}) != {}
    ):
        return None
    plain_lots = [_plain_lot(lot) for lot in lots]
    if None in plain_lots:
        return None
    return CardChange.checked(
        number=number, holder=holder, phone_hash=phone_hash, birthday=birthday, tier=tier,
        segments=segments, clubs=clubs, status=status, balance=balance, pending=pending,
        lots=plain_lots, through_seq=through_seq, held=held, uses=NO_COUNTS,
    )  # fmt: skip


def _plain_lot(d: Any) -> Lot | None:
    if type(d) is not dict or not d.keys() <= _LOT_FIELDS:
        return None
    points, start, end = d.get("points"), _instant(d.get("available_from")), d.get("expires_at")
    if not _whole(points, INT64_MIN) or start is None:
        return None
    until = None if end is None else _instant(end)
    if end is not None and until is None:
        return None
    return Lot.checked(points=points, available_from=start, expires_at=until)


def _instant(text: Any) -> datetime | None:
    if type(text) is not str or not _INSTANT.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _whole(value: Any, low: int) -> bool:
    return type(value) is int and low <= value <= INT64_MAX


def _texts(value: Any) -> bool:
    return type(value) is list and all(type(v) is str for v in value)


class ProgramChange(_Reply):
    version: Annotated[str, Field(min_length=1, max_length=200)]
    body: dict[str, Any]


class RevokedCoupon(_Reply):
    code: Annotated[str, Field(min_length=1)]
    reason: str = "revoked"
    revoked_at: AwareDatetime


class UsedCoupon(_Reply):
    code: Annotated[str, Field(min_length=1)]
    promotion_id: str = ""
    till: str
    receipt_id: str
    used_at: AwareDatetime


KeyId = Annotated[int, Field(ge=1, le=31)]  # what a coupon code has room for


class CouponKey(_Reply):
    id: KeyId
    key: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32,256}$")]


class CouponKeySet(_Reply):
    """The chain's coupon keys in force, and the revoked ids (whole, on each change)."""

    keys: Annotated[list[CouponKey], FailFast(), Field(max_length=31)] = []
    revoked: Annotated[list[KeyId], FailFast(), Field(max_length=31)] = []


class ProductListChange(_Reply):
    """The product list head office has in force: the till downloads it if it differs."""

    version: Annotated[str, Field(min_length=1, max_length=200)]
    count: NonNeg


PRODUCT_COLUMNS = (
    "sku", "name", "category", "barcodes", "aliases", "tags", "no_loyalty", "age_restricted",
)  # fmt: skip
_TEXT = {"sku": MAX_LEN["sku"], "name": MAX_LEN["name"], "category": MAX_LEN["category"]}
_LISTS = {"barcodes": MAX_LEN["barcodes"], "aliases": MAX_LEN["aliases"], "tags": MAX_LEN["tags"]}


class CardSnapshotInfo(_Reply):
    """The card snapshot head office offers a fresh till (``GET /v1/sync/card-snapshot``;
    :mod:`tillgate.sync.snapshot`): its id, the change id it holds every card as of, and
    how its compressed bytes come (``parts`` of them, ``size`` in all, ``sha256``) and
    inflate (``file_size``)."""

    format: int
    id: Annotated[int, Field(ge=1, le=INT64_MAX)]
    change_id: NonNeg
    cards: NonNeg
    parts: Annotated[int, Field(ge=1, le=1_000_000)]
    size: NonNeg
    file_size: NonNeg
    sha256: HexDigest


class ProductPage(_Reply):
    """One page of the product list: the products after position ``after`` asked for.

    Each product is a row of values in the order of ``columns`` (a list of 100,000 goods
    is half the bytes and half the parsing of one in objects); a column the till does not
    know is skipped, so head office may add some. The rows are checked here by hand, not
    by a model per product: the page's products are the one bulk part of the protocol.
    """

    version: Annotated[str, Field(min_length=1, max_length=200)]
    count: NonNeg
    after: NonNeg  # the position of the page's last product: ask after it next
    more: bool = False
    columns: Annotated[list[str], Field(max_length=100)] = list(PRODUCT_COLUMNS)
    products: list[Any] = []

    def rows(self) -> list[Product]:
        """The page's products, each checked against the product file's own bounds; a
        bad one is HqBadReply naming it (nothing of the page is used)."""
        at = {c: i for i, c in reversed(list(enumerate(self.columns)))}
        missing = [c for c in _TEXT if c not in at]
        if missing:
            raise HqBadReply(f"head office sent a product list page without {', '.join(missing)}")
        width = len(self.columns)
        texts = [(c, at[c], limit) for c, limit in _TEXT.items()]
        lists = [(c, at.get(c), limit) for c, limit in _LISTS.items()]
        flags = [(c, at.get(c)) for c in ("no_loyalty", "age_restricted")]
        out: list[Product] = []
        for n, row in enumerate(self.products):
            if type(row) is not list or len(row) != width:
                raise _bad_product(n, "", f"is not a row of {width} values")
            for column, i, limit in texts:
                value = row[i]
                if type(value) is not str or not 0 < len(value) <= limit:
                    raise _bad_product(n, column, f"must be text of 1 to {limit} characters")
            got: list[tuple[str, ...]] = []
            for column, j, limit in lists:
                value = row[j] if j is not None else []
                if type(value) is not list or len(value) > MAX_ITEMS:
                    raise _bad_product(n, column, f"must be a list of at most {MAX_ITEMS} texts")
                for v in value:
                    if type(v) is not str or len(v) > limit:
                        raise _bad_product(n, column, f"must hold texts of at most {limit}")
                got.append(tuple(value))
            marks: list[bool] = []
            for column, k in flags:
                value = row[k] if k is not None else False
                if type(value) is not bool:
                    raise _bad_product(n, column, "must be true or false")
                marks.append(value)
            out.append(
                Product(
                    sku=row[texts[0][1]],
                    name=row[texts[1][1]],
                    category=row[texts[2][1]],
                    barcodes=got[0],
                    aliases=got[1],
                    tags=got[2],
                    no_loyalty=marks[0],
                    age_restricted=marks[1],
                )
            )
        return out


def _bad_product(n: int, column: str, why: str) -> HqBadReply:
    where = f"products.{n}" + (f" ({column})" if column else "")
    return HqBadReply(f"head office sent a bad product list page: {where} {why}")


class ChangePage(_Reply):
    cursor: NonNeg
    more: bool = False
    # The chain's phone look-up key (hex) the page's cards' phone hashes were made with.
    lookup_key: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32,256}$")] | None = None
    program: ProgramChange | None = None
    cards: Items[Annotated[CardChange, WrapValidator(_fast_card)]] = []
    coupons_revoked: Items[RevokedCoupon] = []
    coupons_used: Items[UsedCoupon] = []
    # points each budgeted promotion on the page gave at every other till
    budgets: Annotated[dict[PromotionId, NonNeg], Field(max_length=MAX_PROMOTIONS)] = {}
    coupon_keys: CouponKeySet | None = None  # only when they changed
    products: ProductListChange | None = None  # only when the product list changed
    # A compact page's plain cards, checked rows (never from the reply's own fields).
    _plain: list[tuple[Any, ...]] = PrivateAttr(default_factory=list)

    @property
    def plain(self) -> list[tuple[Any, ...]]:
        """The plain cards of a compact page (``card_rows``; :mod:`tillgate.sync.cardrows`):
        checked rows in its ``COLUMNS`` order, no lots and no other till's counts."""
        return self._plain

    def with_rows(self, plain: list[tuple[Any, ...]], cards: list[CardChange]) -> ChangePage:
        """This page with a compact page's cards: ``plain`` rows and the other ``cards``."""
        page = self.model_copy(update={"cards": [*self.cards, *cards]})
        page._plain = plain
        return page

    @property
    def size(self) -> int:
        """How many changes the page carries (for logs and progress)."""
        return (
            (1 if self.program else 0)
            + (1 if self.coupon_keys else 0)
            + (1 if self.products else 0)
            + len(self.cards)
            + len(self._plain)
            + len(self.coupons_revoked)
            + len(self.coupons_used)
            + len(self.budgets)
        )


class EnrollReply(_Reply):
    hq: Annotated[str, Field(min_length=1)]
    till: Annotated[str, Field(min_length=1)]
    store: Annotated[str, Field(min_length=1)]
    credential: Annotated[str, Field(min_length=1)]
    coupon_key: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32,256}$")]


class ErrorBody(_Reply):
    code: str
    message: str = ""


class ErrorReply(_Reply):
    error: ErrorBody


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any, *, what: str) -> M:
    """``data`` as ``model``; a mismatch is HqBadReply naming the first bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise HqBadReply(f"head office sent a bad {what}: {path}: {first['msg']}") from exc
