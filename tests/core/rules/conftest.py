"""Builders for rules-engine tests: programs, promotions, lines, customers, contexts.

One session-wide ``make`` fixture (a stateless builder) so hypothesis tests may use it too.
Money in assertions is whole kopecks, as inside the engine.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

from tillgate.core.rules.engine import Catalog, evaluate
from tillgate.core.rules.model import Context, Coupon, Customer, Line, Request, Result
from tillgate.core.rules.program import parse_program

# A Wednesday morning in the middle of a November campaign.
NOW = datetime(2026, 11, 4, 10, 30)


def base_program(**fields: Any) -> dict[str, Any]:
    """The program part of a file: three tiers, tobacco excluded, 50% redeemable."""
    program: dict[str, Any] = {
        "name": "Ромашка Бонус",
        "point_value": "1.00",
        "max_redeem_percent": 50,
        "min_redeem_points": 1,
        "birthday_window_days": 3,
        "no_discount_categories": ["tobacco"],
        "max_discount_percent": 100,
        "tiers": [
            {"name": "silver", "min_spend": "0", "accrue_percent": 3},
            {"name": "gold", "min_spend": "20000", "accrue_percent": 5},
            {"name": "platinum", "min_spend": "50000", "accrue_percent": 7},
        ],
    }
    program.update(fields)
    return program


class Maker:
    """Stateless builders with defaults that keep each test down to what it is about."""

    now = NOW

    def promo(self, id: str, reward: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """A promotion table; the card is not required unless the test says so."""
        data: dict[str, Any] = {"id": id, "name": fields.pop("name", id), "reward": reward}
        data["who"] = {"card": False, **fields.pop("who", {})}
        data.update(fields)
        return data

    def items(self, *categories: str, **fields: Any) -> dict[str, Any]:
        """A ``when`` table matching categories (and any other item fields given)."""
        return {"items": {"categories": list(categories), **fields}}

    def file(self, *promotions: dict[str, Any], **program: Any) -> dict[str, Any]:
        """A whole program file as decoded TOML/JSON."""
        return {"program": base_program(**program), "promotions": list(promotions)}

    def catalog(self, *promotions: dict[str, Any], **program: Any) -> Catalog:
        return Catalog.build(parse_program(self.file(*promotions, **program)))

    def line(
        self,
        sku: str,
        price: str,
        qty: str | int = 1,
        *,
        category: str | None = None,
        tags: tuple[str, ...] = (),
        no_discount: bool = False,
    ) -> Line:
        return Line(
            index=0,
            sku=sku,
            name=sku,
            qty=Decimal(qty),
            price=Decimal(price),
            category=category,
            tags=tags,
            no_discount=no_discount,
        )

    def customer(self, **fields: Any) -> Customer:
        data: dict[str, Any] = {"number": "2900000012345", "holder": "Анна", "tier": "silver"}
        data.update(fields)
        return Customer(**data)

    def coupon(self, promotion: str, code: str = "C1", valid_until: date | None = None) -> Coupon:
        return Coupon(
            code=code, promotion_id=promotion, valid_until=valid_until or date(2026, 12, 31)
        )

    def context(self, **fields: Any) -> Context:
        data: dict[str, Any] = {"now": NOW, "store": "store-01", "till": "till-1"}
        data.update(fields)
        return Context(**data)

    def request(self, *lines: Line, **fields: Any) -> Request:
        # Line indices as the POS numbers them: 0, 1, 2, …
        numbered = tuple(replace(line, index=k) for k, line in enumerate(lines))
        return Request(lines=numbered, **fields)

    def run(
        self,
        catalog: Catalog,
        *lines: Line,
        customer: Customer | None = None,
        coupons: tuple[Coupon, ...] = (),
        redeem: int | str = 0,
        money_off: bool = True,
        **context: Any,
    ) -> Result:
        request = self.request(
            *lines, customer=customer, coupons=coupons, redeem=redeem, money_off=money_off
        )
        return evaluate(catalog, request, self.context(**context))


@pytest.fixture(scope="session")
def make() -> Maker:
    return Maker()
