"""What a template tells product matching: a captured sku (or none: a name is never taken for
one) and whether a printed name may have been cut at the paper's edge."""

from __future__ import annotations

from tillgate.core.templates import Template

WIDTH = 42
RECEIPT = "\n".join(
    [
        "КАССОВЫЙ ЧЕК № 7",
        "-" * WIDTH,
        "Сигареты Ява Золотая классические мягкая п",  # 42 columns: cut by the POS
        "  1 x 210.00                       =210.00",
        "Молоко 3,2% 1л",
        "  2 x 89.00                        =178.00",
        "Хлеб        1 x 45.00    =45.00",  # one line, short of the edge
        "-" * WIDTH,
        "ИТОГ                               =433.00",
    ]
)


def test_names_that_fill_the_paper_may_be_cut_and_no_sku_is_made_up() -> None:
    read = Template.default().read(RECEIPT)
    assert read.ok and read.width == WIDTH
    cigarettes, milk, bread = read.lines
    assert [ln.sku for ln in read.lines] == [None, None, None]
    assert cigarettes.may_be_cut(read.width) is True
    assert milk.may_be_cut(read.width) is False
    assert bread.may_be_cut(read.width) is False
    assert bread.may_be_cut(0) is False  # a receipt of no width says nothing


def test_a_captured_sku_is_kept() -> None:
    template = Template.build(
        "with-sku",
        {
            "item": r"^(?P<sku>\d{13}) (?P<name>.+?) (?P<qty>\d+)x(?P<price>\d+\.\d\d)"
            r" (?P<amount>\d+\.\d\d)$"
        },
    )
    read = template.read("4600000000196 Сигареты 1x210.00 210.00\nИТОГ =210.00\n")
    assert read.ok
    assert (read.lines[0].sku, read.lines[0].name) == ("4600000000196", "Сигареты")
