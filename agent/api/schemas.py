"""Request and response bodies of the POS API (``pos-api.md``), as pydantic models.

Money is a decimal string with two places and is refused as a JSON float; quantities are
decimal strings or numbers; points are integers. These models are also what
``/openapi.json`` publishes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ..usecases.request import (
    RECEIPT_ID_PATTERN,
    SaleLine,
    SaleRequest,
    parse_money,
    parse_qty,
    parse_redeem,
)

ReceiptId = Annotated[str, StringConstraints(pattern=RECEIPT_ID_PATTERN)]
MoneyStr = Annotated[str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["89.00"])]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _empty_list(**constraints: Any) -> Any:
    """A list field that defaults to []: ``default_factory``, not ``= []``, which pydantic
    deep-copies for every line of every request; the schema still says the default is []."""
    return Field(default_factory=list, json_schema_extra={"default": []}, **constraints)


def _money_in(v: Any, *, field: str) -> Decimal:
    return parse_money(v, field=field)


class LineIn(_In):
    sku: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    name: Annotated[str, StringConstraints(max_length=256)] = ""
    qty: Annotated[Decimal, Field(json_schema_extra={"examples": [2, "0.350"]})]
    price: Annotated[Decimal, Field(json_schema_extra={"type": "string", "examples": ["89.00"]})]
    category: Annotated[str, StringConstraints(max_length=64)] | None = None
    tags: Annotated[
        list[Annotated[str, StringConstraints(max_length=64)]], _empty_list(max_length=32)
    ]
    no_discount: bool = False
    weighed: Annotated[
        bool | None,
        Field(
            description="weighed goods count as one unit per line; default: a "
            "fractional qty means weighed"
        ),
    ] = None

    @field_validator("qty", mode="before")
    @classmethod
    def _qty(cls, v: Any) -> Decimal:
        return parse_qty(v)

    @field_validator("price", mode="before")
    @classmethod
    def _price(cls, v: Any) -> Decimal:
        return _money_in(v, field="price")


class CalculateIn(_In):
    receipt_id: ReceiptId
    cashier: Annotated[str, StringConstraints(max_length=100)] | None = None
    card: Annotated[str, StringConstraints(min_length=1, max_length=512)] | None = None
    coupons: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64)]],
        _empty_list(max_length=20),
    ]
    redeem: int | Literal["max"] = 0
    lines: Annotated[list[LineIn], _empty_list()]

    @field_validator("redeem", mode="before")
    @classmethod
    def _redeem(cls, v: Any) -> int | str:
        return parse_redeem(v)

    def to_request(self) -> SaleRequest:
        """The use cases' :class:`SaleRequest` for this body (already validated)."""
        return SaleRequest(
            receipt_id=self.receipt_id,
            lines=tuple(
                SaleLine(
                    sku=ln.sku,
                    name=ln.name,
                    qty=ln.qty,
                    price=ln.price,
                    category=ln.category,
                    tags=tuple(ln.tags),
                    no_discount=ln.no_discount,
                    weighed=ln.weighed,
                )
                for ln in self.lines
            ),
            card=self.card,
            coupons=tuple(self.coupons),
            redeem=self.redeem,
        )


class ConfirmIn(_In):
    paid: str | None = None
    fiscal_id: Annotated[str, StringConstraints(max_length=128)] | None = None

    @field_validator("paid", mode="before")
    @classmethod
    def _paid(cls, v: Any) -> str | None:
        return None if v is None else str(_money_in(v, field="paid"))


class RefundLineIn(_In):
    index: Annotated[int, Field(ge=0, le=100_000)]
    qty: Decimal

    _qty = field_validator("qty", mode="before")(LineIn._qty.__func__)  # type: ignore[attr-defined]


class RefundIn(_In):
    refund_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:#\-]{0,63}$")]
    lines: list[RefundLineIn] | None = None


class PresentIn(_In):
    card: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    source: Literal["api", "card_reader", "scanner"] = "api"


# ---------------------------------------------------------------- responses


class CardOut(BaseModel):
    number: str = Field(examples=["2900•••••2345"])
    holder: str
    tier: str | None
    # What the cashier calls the tier: its title in the till's language (added in 0.x:
    # clients that do not know it keep using ``tier``).
    tier_title: str | None = Field(default=None, examples=["Золото"])
    status: str
    balance: int
    pending: int
    redeemable: int
    held: int = 0
    source: str | None = None


class LineOut(BaseModel):
    index: int
    sku: str
    qty: str
    price: MoneyStr
    amount: MoneyStr
    discount: MoneyStr
    total: MoneyStr
    redeemed: MoneyStr
    paid: MoneyStr
    promotions: list[str]
    eligible: bool = Field(
        True,
        description="false: the program leaves the line out (no discount, no points)",
    )
    category: str | None = Field(
        None, description="the category the line was priced with (sent, or resolved)"
    )


class PointsMoney(BaseModel):
    points: int
    amount: MoneyStr


class Accrued(BaseModel):
    points: int
    available_from: str | None


class EffectOut(BaseModel):
    id: str
    name: str
    discount: MoneyStr
    points: int


class RejectedCoupon(BaseModel):
    code: str
    reason: str


class CouponsOut(BaseModel):
    applied: list[str]
    rejected: list[RejectedCoupon]


class HintOut(BaseModel):
    kind: str
    text: str
    promotion: str | None = None


class PrintOut(BaseModel):
    kind: str
    title: str | None = None
    text: str | None = None
    code: str | None = None
    valid_until: str | None = None
    promotion: str | None = None


class CalculateOut(BaseModel):
    receipt_id: str
    offline: bool
    card: CardOut | None
    lines: list[LineOut]
    subtotal: MoneyStr
    discount: MoneyStr
    redeemed: PointsMoney
    redeem_max: int = Field(
        0, description='the most points this basket could take now (what redeem "max" spends)'
    )
    total: MoneyStr
    accrued: Accrued
    promotions: list[EffectOut]
    coupons: CouponsOut
    hints: list[HintOut]
    print: list[PrintOut]


class ConfirmOut(BaseModel):
    receipt_id: str
    status: Literal["confirmed"]
    card: CardOut | None
    accrued: Accrued
    redeemed: PointsMoney
    printed: list[PrintOut]
    offline: bool


class CancelOut(BaseModel):
    receipt_id: str
    status: Literal["cancelled"]
    offline: bool


class RefundOut(BaseModel):
    receipt_id: str
    refund_id: str
    status: Literal["refunded"]
    points_reversed: int
    points_returned: int
    amount_returned: MoneyStr
    card: CardOut | None
    offline: bool


class HistoryOut(BaseModel):
    kind: str
    points: int
    receipt_id: str | None
    created_at: str


class CardLookupOut(CardOut):
    hints: list[HintOut]
    history: list[HistoryOut]
    offline: bool


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
