"""Inputs and outputs of the rules engine: plain frozen values, no I/O.

Amounts inside the engine are whole kopecks (``int``); see :mod:`tillgate.core.money`.
The service layer builds these from the API request and the SQLite cache, calls
:func:`tillgate.core.rules.engine.evaluate`, and turns the :class:`Result` into the API
response and ledger entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from ..frozen import quick_init


@quick_init
@dataclass(frozen=True, kw_only=True)
class Line:
    """One basket line as the POS sent it (already validated)."""

    index: int
    sku: str
    name: str = ""
    qty: Decimal
    price: Decimal  # money per unit, two places
    category: str | None = None
    tags: tuple[str, ...] = ()
    no_discount: bool = False
    is_weighed: bool | None = None  # as the POS says; None: fractional qty means weighed
    # Other codes of the same goods: the POS's barcode when the product list knows the goods
    # under their own sku (then ``sku`` is that one). A promotion's ``skus`` match either.
    codes: tuple[str, ...] = ()

    @property
    def weighed(self) -> bool:
        """Weighed goods count as one unit per line (``min_qty``, ``free_item``)."""
        if self.is_weighed is not None:
            return self.is_weighed
        return self.qty != self.qty.to_integral_value()


@dataclass(frozen=True, kw_only=True)
class Customer:
    """What the cache knows about the presented card, as of now."""

    number: str
    holder: str = ""
    status: str = "active"  # active | new | blocked
    tier: str | None = None  # the tier assigned by HQ (the engine may raise it by spend)
    segments: frozenset[str] = frozenset()
    clubs: frozenset[str] = frozenset()
    birthday: date | None = None  # only its month and day count (rules.tiers.MONTH_DAY_YEAR)
    visits: int = 0  # confirmed purchases before this receipt
    rolling_spend: Decimal = Decimal(0)  # paid in the program's spend window, before this receipt
    balance: int = 0  # spendable points (excludes pending lots)
    pending: int = 0  # accrued, not yet spendable
    redeemable: int = 0  # spendable points not held by other receipts
    last_birthday_bonus: int | None = None  # the year a birthday bonus was last given
    uses_today: Mapping[str, int] = field(default_factory=dict)  # promotion id → uses today
    uses_total: Mapping[str, int] = field(default_factory=dict)  # promotion id → uses ever
    stamps: Mapping[str, int] = field(default_factory=dict)  # promotion id → stamps so far


@dataclass(frozen=True, kw_only=True)
class Coupon:
    """A coupon code whose signature and expiry the service has already checked."""

    code: str
    promotion_id: str
    valid_until: date


@dataclass(frozen=True, kw_only=True)
class Context:
    """Where and when the receipt is evaluated."""

    now: datetime  # till-local wall time, naive
    store: str
    till: str
    language: Literal["ru", "en"] = "ru"
    budget_used: Mapping[str, int] = field(default_factory=dict)  # promotion id → points given
    redeem_cap: int | None = None  # extra cap on points (offline limits); None: no extra cap


@dataclass(frozen=True, kw_only=True)
class Request:
    lines: tuple[Line, ...]
    customer: Customer | None = None
    coupons: tuple[Coupon, ...] = ()
    redeem: int | Literal["max"] = 0
    # False for a receipt the POS has already priced and printed (interception): money-off
    # promotions cannot change it any more, so only points, stamps, coupons and prompts apply.
    money_off: bool = True


# ---------------------------------------------------------------- outputs


@quick_init
@dataclass(frozen=True, kw_only=True)
class LineResult:
    index: int
    amount: int  # price × qty, kopecks
    discount: int  # money off from promotions
    total: int  # amount - discount (what the line costs before points)
    redeemed: int  # money paid with points on this line
    paid: int  # total - redeemed
    promotions: tuple[str, ...]  # ids of promotions with a money-off effect on the line
    eligible: bool  # may be discounted, paid with points and earn points

    @property
    def floor(self) -> int:  # pragma: no cover - documented helper
        return self.amount - self.discount


@quick_init
@dataclass(frozen=True, kw_only=True)
class Effect:
    """One promotion's part in the result: the result explains itself."""

    id: str
    name: str
    discount: int  # kopecks off
    points: int  # whole points this promotion adds (its exact share, rounded down)


@dataclass(frozen=True, kw_only=True)
class Hint:
    kind: str  # greeting | balance | upsell | birthday | tier | coupon | ask_card | warning | ...
    text: str
    promotion: str | None = None


@dataclass(frozen=True, kw_only=True)
class PrintItem:
    """Something the agent prints on the receipt after confirm."""

    kind: Literal["coupon", "message"]
    promotion: str
    title: str = ""
    text: str = ""
    valid_until: date | None = None  # coupons


@dataclass(frozen=True, kw_only=True)
class Result:
    lines: tuple[LineResult, ...]
    subtotal: int
    discount: int
    redeem_max: int  # most points this receipt could take (all caps applied)
    redeemed_points: int
    redeemed_amount: int  # kopecks
    total: int  # subtotal - discount - redeemed_amount
    accrued_points: int  # whole points earned, bonuses included
    effects: tuple[Effect, ...]
    coupons_applied: tuple[str, ...]
    coupons_rejected: tuple[tuple[str, str], ...]  # (code, reason)
    hints: tuple[Hint, ...]
    print: tuple[PrintItem, ...]
    tier: str | None  # the customer's effective tier for this receipt
    uses: tuple[str, ...]  # ids of promotions applied (limits count these at confirm)
    stamps: Mapping[str, int]  # promotion id → new stamp count after this receipt
    budget_points: Mapping[str, int]  # promotion id → points given from its budget
    welcome_points: int
    birthday_points: int
    # The year of the birthday the bonus was given for (None: no bonus). Store it as
    # Customer.last_birthday_bonus: near New Year it differs from the receipt's year.
    birthday_year: int | None = None
