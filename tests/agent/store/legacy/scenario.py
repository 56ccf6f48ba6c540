"""The program, cards and basket of the legacy data file (shared by its maker and its test)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

KEY = b"k" * 32
START = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
ANNA = "2900000000011"
CARDS: list[dict[str, Any]] = [
    {"number": ANNA, "holder": "Анна", "tier": "silver", "opening_balance": 1000}
]
PROGRAM: dict[str, Any] = {
    "program": {
        "name": "Тест Бонус",
        "point_value": "1.00",
        "max_redeem_percent": 50,
        "accrual_delay_days": 0,
        "expiry_days": 365,
        "tiers": [{"name": "silver", "min_spend": "0", "accrue_percent": 5}],
    },
    "promotions": [
        {
            "id": "dairy-10",
            "name": "Молочное −10%",
            "when": {"items": {"categories": ["dairy"]}},
            "reward": {"kind": "percent", "value": 10, "on": "matching"},
        },
        {
            "id": "stamp-coffee",
            "name": "Кофе: каждый 3-й",
            "when": {"items": {"categories": ["coffee"]}},
            "reward": {
                "kind": "stamp",
                "every": 3,
                "reward": {"kind": "percent", "value": 100, "on": "matching"},
            },
        },
    ],
}


def basket() -> list[dict[str, Any]]:
    return [
        {"sku": "milk", "name": "Молоко", "qty": 2, "price": "89.90", "category": "dairy"},
        {"sku": "coffee", "name": "Кофе", "qty": 1, "price": "499.00", "category": "coffee"},
        {"sku": "bread", "name": "Хлеб", "qty": "0.750", "price": "120.00"},
    ]
