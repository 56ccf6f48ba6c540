"""The loyalty program and promotions file (``promotions.md``) as validated models.

Head office writes one TOML or JSON file; :func:`parse_program` turns it into a
:class:`ProgramFile` or raises :class:`~tillgate.core.errors.ProgramError` listing every
problem by path (``promotions[3].reward.value: must be > 0``). Nothing here does I/O
except :func:`load_program_file`, which only reads the named file.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ProgramError
from . import bounds
from .program_checks import cross_problems, named, refs_of_data, refs_of_file
from .program_texts import TEXT_FORMS, HintText, LongText, Title

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
Percent = Annotated[Decimal, Field(gt=0, le=100)]
Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _no_float(value: Any) -> Any:
    # Money never passes through a float: 0.1 + 0.2 must not become 0.30000000000000004.
    if isinstance(value, float):
        raise ValueError('write money as a string, e.g. "89.00"')
    return value


class Tier(_Model):
    name: Ident
    # What hints call the tier ("до уровня «Платина»"); None: the name, capitalised.
    title: Title | None = None
    min_spend: Money = Decimal(0)
    accrue_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)
    spend_window_days: Annotated[int, Field(gt=0, le=3660)] | None = None

    _money = field_validator("min_spend", mode="before")(_no_float)


class OfflinePolicy(_Model):
    max_hours: Annotated[int, Field(ge=0, le=24 * 365)] = 24
    redeem_per_card: Annotated[int, Field(ge=0)] = 500
    redeem_per_till: Annotated[int, Field(ge=0)] = 5000


class HoldPolicy(_Model):
    """Online holds (``[program.holds]``): head office keeps a till's hold at most this long."""

    max_seconds: Annotated[int, Field(ge=1, le=86_400)] = 600


class ProgramLimits(_Model):
    """What one basket may hold (``[program.limits]``); beyond it calculate is refused.

    Far above anything a grocery chain sells, and low enough that no sum of money or points
    comes near 2^63 (docs/promotions.md, "Limits of a receipt"). The ceilings are fixed.
    """

    max_qty: Annotated[
        Decimal, Field(gt=0, le=bounds.CEILING_QTY, max_digits=9, decimal_places=3)
    ] = Decimal(10_000)
    max_unit_price: Annotated[
        Decimal, Field(gt=0, le=bounds.CEILING_UNIT_PRICE, max_digits=14, decimal_places=2)
    ] = Decimal("10000000.00")
    max_receipt_total: Annotated[
        Decimal, Field(gt=0, le=bounds.CEILING_RECEIPT_TOTAL, max_digits=14, decimal_places=2)
    ] = Decimal("100000000.00")
    max_lines: Annotated[int, Field(ge=1, le=bounds.CEILING_LINES)] = 1000
    # How far a till's clock may be from head office's; head office uses it.
    max_clock_skew_seconds: Annotated[int, Field(ge=1, le=bounds.CEILING_CLOCK_SKEW_SECONDS)] = 300

    _money = field_validator("max_unit_price", "max_receipt_total", mode="before")(_no_float)


class Program(_Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "RUB"
    point_value: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=2)] = Decimal("1.00")
    max_redeem_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(50)
    min_redeem_points: Annotated[int, Field(ge=1)] = 1
    accrual_delay_days: Annotated[int, Field(ge=0, le=3650)] = 0
    expiry_days: Annotated[int, Field(ge=0, le=36500)] = 0  # 0: points never expire
    welcome_points: Annotated[int, Field(ge=0)] = 0
    birthday_points: Annotated[int, Field(ge=0)] = 0
    birthday_window_days: Annotated[int, Field(ge=0, le=31)] = 0
    no_discount_categories: tuple[str, ...] = ()
    # A line whose category nothing could tell (core/productmatch.py): earns like any other
    # line, or is left out of the program as no_discount_categories are.
    unmatched_items: Literal["earn", "exclude"] = "earn"
    # Goods the product list marks age_restricted (tobacco, alcohol) are no_loyalty by law
    # in most of the chain's markets; a market that allows otherwise sets this false.
    age_restricted_no_loyalty: bool = True
    max_discount_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(100)
    spend_window_days: Annotated[int, Field(gt=0, le=3660)] = 365
    register_unknown_cards: bool = False
    card_number_pattern: str = r"^\d{6,19}$"
    tiers: tuple[Tier, ...] = ()
    offline: OfflinePolicy = OfflinePolicy()
    holds: HoldPolicy = HoldPolicy()
    limits: ProgramLimits = ProgramLimits()

    _money = field_validator("point_value", mode="before")(_no_float)

    @field_validator("card_number_pattern")
    @classmethod
    def _pattern_compiles(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return v

    @model_validator(mode="after")
    def _tiers_ordered(self) -> Program:
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        spends = [t.min_spend for t in self.tiers]
        if spends != sorted(spends) or len(set(spends)) != len(spends):
            raise ValueError("tiers must be listed by strictly increasing min_spend")
        if self.tiers and self.tiers[0].min_spend != 0:
            raise ValueError("the first tier must have min_spend = 0 (every card has a tier)")
        return self

    @property
    def window_days(self) -> int:
        """Rolling window for tier spend: the last tier's setting wins over the program's."""
        for tier in reversed(self.tiers):
            if tier.spend_window_days:
                return tier.spend_window_days
        return self.spend_window_days

    def tier(self, name: str | None) -> Tier | None:
        return next((t for t in self.tiers if t.name == name), None)


# ---------------------------------------------------------------- promotion parts


class Valid(_Model):
    from_: datetime | None = Field(default=None, alias="from")
    to: datetime | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _naive(cls, v: Any) -> Any:
        if isinstance(v, date) and not isinstance(v, datetime):
            return datetime.combine(v, time())
        return v

    @model_validator(mode="after")
    def _order(self) -> Valid:
        if self.from_ and self.from_.tzinfo is not None:
            raise ValueError("write till-local time without a zone, e.g. 2026-11-01T00:00")
        if self.to and self.to.tzinfo is not None:
            raise ValueError("write till-local time without a zone, e.g. 2026-11-30T23:59")
        if self.from_ and self.to and self.to < self.from_:
            raise ValueError("'to' is before 'from'")
        return self


class Schedule(_Model):
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ()
    hours: tuple[str, ...] = ()

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for h in v:
            m = _HOURS.match(h)
            if not m:
                raise ValueError(f"{h!r} is not a range like '08:00-12:00'")
            if (m.group(3), m.group(4)) != ("24", "00") and m.group(3) == "24":
                raise ValueError(f"{h!r}: only 24:00 may end a range")
        return v

    def ranges(self) -> list[tuple[time, time | None]]:
        """Hour ranges as (start, end); end None means midnight at the end of the day."""
        out: list[tuple[time, time | None]] = []
        for h in self.hours:
            a, b = h.split("-")
            start = time.fromisoformat(a)
            end = None if b == "24:00" else time.fromisoformat(b)
            out.append((start, end))
        return out


class Where(_Model):
    stores: tuple[str, ...] = ("*",)
    tills: tuple[str, ...] = ()


class Who(_Model):
    card: bool = True
    tiers: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    clubs: tuple[str, ...] = ()
    birthday: bool = False
    first_purchase: bool = False
    min_visits: Annotated[int, Field(ge=0)] = 0


class Items(_Model):
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    min_qty: Annotated[Decimal, Field(ge=0)] = Decimal(1)

    @property
    def any(self) -> bool:
        return bool(self.skus or self.categories or self.tags)


class When(_Model):
    min_total: Money = Decimal(0)
    items: Items | None = None
    coupon: bool = False

    _money = field_validator("min_total", mode="before")(_no_float)


class Limits(_Model):
    per_card_per_day: Annotated[int, Field(ge=0)] = 0
    per_card_total: Annotated[int, Field(ge=0)] = 0
    per_receipt: Annotated[int, Field(ge=0)] = 0
    budget_points: Annotated[int, Field(ge=0)] = 0


class Hint(_Model):
    near: Money = Decimal(0)
    text: HintText = ""

    _money = field_validator("near", mode="before")(_no_float)


class PrintText(_Model):
    text: LongText


# ---------------------------------------------------------------- rewards


class PercentReward(_Model):
    kind: Literal["percent"]
    value: Percent
    on: Literal["order", "matching", "cheapest"] = "matching"
    max: Money | None = None

    _money = field_validator("max", mode="before")(_no_float)


class AmountReward(_Model):
    kind: Literal["amount"]
    value: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
    on: Literal["order", "matching"] = "order"

    _money = field_validator("value", mode="before")(_no_float)


class PriceReward(_Model):
    kind: Literal["price"]
    value: Money

    _money = field_validator("value", mode="before")(_no_float)


class FreeItemReward(_Model):
    kind: Literal["free_item"]
    buy: Annotated[int, Field(ge=1, le=1000)]
    get: Annotated[int, Field(ge=1, le=1000)]


class PointsReward(_Model):
    kind: Literal["points"]
    value: Annotated[int, Field(gt=0)]


class PointsPercentReward(_Model):
    kind: Literal["points_percent"]
    value: Percent


class MultiplierReward(_Model):
    kind: Literal["multiplier"]
    value: Annotated[Decimal, Field(gt=1, le=100)]


class MessageReward(_Model):
    kind: Literal["message"]
    text: LongText


CouponDiscount = Annotated[PercentReward | AmountReward, Field(discriminator="kind")]


class CouponReward(_Model):
    kind: Literal["coupon"]
    discount: CouponDiscount
    valid_days: Annotated[int, Field(ge=1, le=3650)] = 30
    title: Title
    # The lines the discount applies to when the coupon is honoured (on = "matching");
    # default: the promotion's when.items. Lets "buy pastries, get coffee off" be written.
    items: Items | None = None


StampInner = Annotated[
    PercentReward
    | AmountReward
    | PriceReward
    | FreeItemReward
    | PointsReward
    | PointsPercentReward
    | MultiplierReward
    | MessageReward,
    Field(discriminator="kind"),
]


class StampReward(_Model):
    kind: Literal["stamp"]
    every: Annotated[int, Field(ge=2, le=1000)]
    reward: StampInner


Reward = Annotated[
    PercentReward
    | AmountReward
    | PriceReward
    | FreeItemReward
    | PointsReward
    | PointsPercentReward
    | MultiplierReward
    | CouponReward
    | StampReward
    | MessageReward,
    Field(discriminator="kind"),
]

MONEY_KINDS = frozenset({"percent", "amount", "price", "free_item"})
POINT_KINDS = frozenset({"points", "points_percent", "multiplier"})
REWARD_KINDS = MONEY_KINDS | POINT_KINDS | {"coupon", "stamp", "message"}


class Promotion(_Model):
    id: Ident
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    priority: Annotated[int, Field(ge=-1_000_000, le=1_000_000)] = 0
    stacking: Literal["stackable", "exclusive", "best"] = "stackable"
    valid: Valid = Valid()
    schedule: Schedule | None = None
    where: Where = Where()
    who: Who = Who()
    when: When = When()
    reward: Reward
    limits: Limits = Limits()
    hint: Hint | None = None
    print: PrintText | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> Promotion:
        r = self.reward
        # points_percent and multiplier without items work on every eligible line (a
        # whole-basket ×2 for a tier); a discount "on matching" must say what matches.
        needs_items = (getattr(r, "on", None) in ("matching", "cheapest")) or r.kind in (
            "price",
            "free_item",
        )
        if needs_items and not (self.when.items and self.when.items.any):
            raise ValueError(
                f"reward kind {r.kind!r} works on matching items: set when.items "
                "(skus, categories or tags)"
            )
        if (
            r.kind == "coupon"
            and r.discount.on == "matching"
            and not (r.items and r.items.any)
            and not (self.when.items and self.when.items.any)
        ):
            raise ValueError(
                "a coupon whose discount is on matching items needs reward.items or when.items"
            )
        if (
            r.kind == "stamp"
            and r.reward.kind in ("price", "free_item")
            and not (self.when.items and self.when.items.any)
        ):
            raise ValueError("a stamp reward on matching items needs when.items")
        return self


class CategoryMatch(_Model):
    """A rule that gives a line a category from its name, when no product matched it."""

    pattern: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


class Categories(_Model):
    # Searched in order in the line's name as words (core/products.name_words);
    # the first that matches gives the category.
    match: tuple[CategoryMatch, ...] = ()


class ProgramFile(_Model):
    """A whole program/promotions file as head office writes it."""

    program: Program
    categories: Categories = Categories()
    promotions: tuple[Promotion, ...] = ()

    @model_validator(mode="after")
    def _unique_and_known(self) -> ProgramFile:
        # Duplicate ids, unknown tiers, colliding coupon tags (program_checks.py).
        problems = cross_problems(*refs_of_file(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self


# ---------------------------------------------------------------- parsing


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in REWARD_KINDS and out.endswith(("reward", "discount")):
            continue  # the discriminator tag is noise in a path a person reads
        elif part in TEXT_FORMS and out.endswith(("text", "title")):
            continue  # so is a text's form (one string, or a table of languages)
        else:
            out += ("." if out else "") + (part if part != "from_" else "from")
    return out


def _message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    ctx = err.get("ctx") or {}
    kind = err.get("type", "")
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "is required"
    if kind == "string_pattern_mismatch" and ctx.get("pattern", "").startswith("^[A-Za-z0-9]"):
        return "use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
    if kind == "union_tag_invalid":
        return f"unknown kind {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
    return msg.removeprefix("Value error, ")


def validation_errors(exc: ValidationError, *, only: Sequence[Any] | None = None) -> list[str]:
    """Every error of a pydantic ValidationError (or ``only`` these) as ``path: message``."""
    lines: list[str] = []
    for err in exc.errors() if only is None else only:
        path = _path(tuple(err.get("loc", ())))
        msg = _message(dict(err))
        for part in msg.split("\n"):
            lines.append(
                part
                if (": " in part and part.startswith("promotions[")) or not path
                else f"{path}: {part}"
            )
    return lines


def parse_program(data: Any, *, source: str = "program") -> ProgramFile:
    """Validate a decoded program file; raise ProgramError listing every problem by path."""
    if not isinstance(data, dict):
        raise ProgramError(
            ["the file must be a table/object with [program] and [[promotions]]"], source=source
        )
    ids = {ref.index: ref.id for ref in refs_of_data(data)[0] if ref.id is not None}
    try:
        parsed = ProgramFile.model_validate(data)
    except ValidationError as exc:
        raise ProgramError(named(_all_problems(exc, data), ids), source=source) from exc
    # Checked on the file as written, not on a program a till or head office stored
    # before this check existed (that one is read back with model_validate_json).
    problems = bounds.program_problems(parsed)
    if problems:
        raise ProgramError(problems, source=source)
    return parsed


def _all_problems(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    """Field errors and cross-check problems together, so one pass reports them all.

    The file-wide cross-checks run in ProgramFile's validator only once every field is
    valid; here they are run on the decoded file as well (and stand for the validator's).
    """
    fields = [e for e in exc.errors() if tuple(e.get("loc", ()))]
    whole = [e for e in exc.errors() if not tuple(e.get("loc", ()))]
    cross = cross_problems(*refs_of_data(data))
    problems = validation_errors(exc, only=fields) if fields else []
    if cross or not whole:
        return problems + cross
    return problems + validation_errors(exc, only=whole)


def decode_program(text: str, *, fmt: Literal["toml", "json"], source: str) -> ProgramFile:
    """Decode TOML or JSON text and validate it.

    Numbers with a fraction are read as exact decimals in both formats, so
    ``point_value = 0.5`` means exactly 0.50; no float ever holds money.
    """
    try:
        if fmt == "toml":
            data = tomllib.loads(text, parse_float=Decimal)
        else:
            data = json.loads(text, parse_float=Decimal)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ProgramError([f"not valid {fmt.upper()}: {exc}"], source=source) from exc
    except RecursionError as exc:  # arrays or tables nested thousands deep
        raise ProgramError([f"not valid {fmt.upper()}: nested too deeply"], source=source) from exc
    try:
        return parse_program(data, source=source)
    except RecursionError as exc:
        raise ProgramError(["nested too deeply to be a program"], source=source) from exc


def load_program_file(path: str | Path) -> ProgramFile:
    """Read and validate a program file (``.toml`` or ``.json``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProgramError([f"file not found: {p}"], source=str(p)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError([f"cannot read {p}: {exc}"], source=str(p)) from exc
    fmt: Literal["toml", "json"] = "json" if p.suffix.lower() == ".json" else "toml"
    return decode_program(text, fmt=fmt, source=str(p))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the program/promotions file (``tillgate schema promotions``)."""
    schema = ProgramFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tillgate program and promotions"
    return schema
