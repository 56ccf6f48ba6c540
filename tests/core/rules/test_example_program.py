"""The example program's ``[[categories.match]]`` rules against real goods names."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import ROOT
from tillgate.agent.demo.pos import CATALOGUE
from tillgate.core.productmatch import rule_category
from tillgate.core.rules.program import load_program_file

RULES = load_program_file(ROOT / "program.example.toml").categories.match


@pytest.mark.parametrize("product", CATALOGUE.values(), ids=lambda p: p.sku)
def test_the_demos_goods_resolve_as_the_demo_files_them(product: Any) -> None:
    name, category = product.name, product.category
    expected = category if category in ("tobacco", "alcohol") else None
    assert rule_category(name, RULES) == expected, name


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("СИГАРЕТЫ ЯВА ЗОЛОТАЯ", "tobacco"),
        ("Табак для кальяна 50 г", "tobacco"),
        ("Папиросы Беломорканал", "tobacco"),
        ("Стики HEETS Amber", "tobacco"),
        ("IQOS Iluma", "tobacco"),
        ("ВИНО ИГРИСТОЕ 0,75", "alcohol"),
        ("Вино «Шато», 0,75л", "alcohol"),
        ("Пиво светлое 0,5", "alcohol"),
        ("Водка Пшеничная 0,5", "alcohol"),
        ("Коньяк 5 лет", "alcohol"),
        ("Виски купажированный", "alcohol"),
        ("Шампанское полусладкое", "alcohol"),
        ("Ром Бакарди", "alcohol"),
        ("Джин London Dry", "alcohol"),
        ("Ликёр сливочный", "alcohol"),
        ("Сидр яблочный", "alcohol"),
        # food whose names come near a pattern
        ("Ромашковый чай", None),
        ("Ромовая баба", None),
        ("Винегрет 300 г", None),
        ("Джем абрикосовый", None),
        ("Вискас корм для кошек", None),
        ("Пивные дрожжи", None),
        ("Соус Табаско", None),
        ("Стейк из говядины", None),
        ("Квас хлебный", None),
        ("Кекс столичный", None),
    ],
)
def test_names_a_till_sees(name: str, expected: str | None) -> None:
    assert rule_category(name, RULES) == expected
