"""Receipt templates read real-looking receipts, and refuse what they cannot read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tillgate.core.errors import ConfigError
from tillgate.core.templates import Template, load_template

RU_TWO_LINE = """\
        ООО "Ромашка"
   Магазин №1, ул. Ленина, 5
КАССОВЫЙ ЧЕК №  1043
Приход
Молоко 3,2% 1л
2 x 89.00                  =178.00
Хлеб бородинский
1 x 45.00                   =45.00
Скидка                      -4.50
Сыр Российский 0,35 кг
0.350 x 640.00             =224.00
------------------------------------------
ИТОГ                       =442.50
НАЛИЧНЫМИ                  =500.00
СДАЧА                       =57.50
ФН 9999078900001234  ФД 55012
"""

RU_ONE_LINE = """\
Чек № 77
Кефир 1%        1 x 65.90 = 65.90
Батон нарезной  2 * 38.00 = 76.00
ИТОГО К ОПЛАТЕ  141.90
"""

EN = """\
CORNER SHOP
Receipt #000123
Milk 2L            2 @ 1.99      3.98
Bread                            2.50
TOTAL                            6.48
CASH                            10.00
"""


def test_russian_two_line_layout_with_a_discount() -> None:
    read = Template.default().read(RU_TWO_LINE)
    assert read.ok, read.problems
    assert read.number == "1043"
    assert read.total == Decimal("442.50")
    assert [(ln.name, ln.qty, ln.price, ln.amount) for ln in read.lines] == [
        ("Молоко 3,2% 1л", Decimal(2), Decimal("89.00"), Decimal("178.00")),
        ("Хлеб бородинский", Decimal(1), Decimal("45.00"), Decimal("40.50")),
        ("Сыр Российский 0,35 кг", Decimal("0.350"), Decimal("640.00"), Decimal("224.00")),
    ]


def test_russian_one_line_layout() -> None:
    read = Template.default().read(RU_ONE_LINE)
    assert read.ok, read.problems
    assert read.number == "77"
    assert [ln.amount for ln in read.lines] == [Decimal("65.90"), Decimal("76.00")]
    assert read.lines[1].qty == 2


def test_english_layout() -> None:
    read = Template.default().read(EN)
    assert read.ok, read.problems
    assert read.number == "000123"
    assert [(ln.name, ln.qty, ln.amount) for ln in read.lines] == [
        ("Milk 2L", Decimal(2), Decimal("3.98")),
        ("Bread", Decimal(1), Decimal("2.50")),
    ]


def test_items_that_do_not_add_up_are_reported_not_guessed() -> None:
    read = Template.default().read(EN.replace("6.48", "7.48"))
    assert not read.ok
    assert read.problems == ("the items add up to 6.48, the receipt says 7.48",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no total line found"),
        ("Hello\nworld\n", "no total line found"),
        ("ИТОГ =10.00\n", "no item lines found"),
        ("Скидка -1.00\nИТОГ =0.00\n", "a discount before any item"),
    ],
)
def test_unreadable_receipts_say_why(text: str, problem: str) -> None:
    read = Template.default().read(text)
    assert not read.ok
    assert any(p.startswith(problem) for p in read.problems), read.problems


def test_a_custom_template_overrides_only_what_it_names() -> None:
    custom = {
        "shop": {
            "item": r"^(?P<sku>\d{13}) (?P<name>.+?) (?P<qty>\d+)x(?P<price>\d+\.\d\d)"
            r" (?P<amount>\d+\.\d\d)$"
        }
    }
    template = load_template("shop", custom)
    read = template.read("4601234567893 Молоко 2x89.00 178.00\nИТОГ =178.00\n")
    assert read.ok, read.problems
    assert read.lines[0].sku == "4601234567893"


def test_bad_templates_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        Template.build("x", {"total": "(unclosed"})
    with pytest.raises(ConfigError, match="unknown pattern"):
        Template.build("x", {"itme": "a"})
    with pytest.raises(ConfigError, match="no template named 'nope'; known: default"):
        load_template("nope", {})
