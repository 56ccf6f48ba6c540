"""The product list CSV: what back-office exports look like is read; every bad file is
refused whole, each problem with its row and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from tillgate.core.errors import ConfigError, ProductsError
from tillgate.core.productfile import (
    MAX_ERRORS,
    MAX_ITEMS,
    digest,
    load_products,
    load_products_file,
    parse_products_csv,
    read_products_csv,
)
from tillgate.core.products import Product

ROOT = Path(__file__).resolve().parents[2]


def problems(data: bytes | str) -> list[str]:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(ProductsError) as caught:
        read_products_csv(raw, source="goods.csv")
    assert isinstance(caught.value, ConfigError)  # the CLI's exit 2
    assert all(line.startswith("goods.csv: ") for line in str(caught.value).splitlines())
    return caught.value.errors


def test_a_semicolon_export_with_a_bom_and_every_column() -> None:
    text = (
        "\ufeffSKU;Name;Category;Barcodes;Aliases;Tags;No_Loyalty;Age_Restricted\r\n"
        'A-1;"Торт ""Наполеон""";bakery;"4600000000011; 4600000000012;4600000000011";'
        "Наполеон;fresh;;\r\n"
        "A-2;Сигареты Ява;tobacco;4600000000029;;;TRUE;1\r\n"
        "\r\n"
    )
    got = read_products_csv(text.encode(), source="x")
    assert got == [
        Product(
            sku="A-1",
            name='Торт "Наполеон"',
            category="bakery",
            barcodes=("4600000000011", "4600000000012"),  # duplicates kept once
            aliases=("Наполеон",),
            tags=("fresh",),
        ),
        Product(
            sku="A-2",
            name="Сигареты Ява",
            category="tobacco",
            barcodes=("4600000000029",),
            no_loyalty=True,
            age_restricted=True,
        ),
    ]


def test_a_comma_export_with_columns_in_any_order_and_missing_trailing_fields() -> None:
    text = "category,name,sku,age_restricted\ndairy, Молоко ,A-1\nbakery,Хлеб,A-2,no\n"
    got = read_products_csv(text.encode(), source="x")
    assert [(p.sku, p.name, p.category, p.age_restricted) for p in got] == [
        ("A-1", "Молоко", "dairy", False),
        ("A-2", "Хлеб", "bakery", False),
    ]


def test_the_shipped_example_reads() -> None:
    loaded = load_products(ROOT / "products.example.csv")
    assert len(loaded.products) >= 10 and loaded.warnings == []
    assert load_products_file(ROOT / "products.example.csv") == loaded.products


def test_unknown_columns_are_ignored_with_a_warning() -> None:
    parsed = parse_products_csv(b"sku,name,category,price,\nA-1,a,b,9.90,\n", source="x")
    assert [p.sku for p in parsed.products] == ["A-1"]
    assert parsed.warnings == ["header: unknown column 'price' ignored"]


def test_the_digest_is_the_content_not_the_bytes() -> None:
    a = read_products_csv(b"sku,name,category\nA-1,a,b\nA-2,c,d\n", source="x")
    b = read_products_csv(b"\xef\xbb\xbfcategory;sku;name\nd;A-2;c\nb;A-1;a\n", source="x")
    c = read_products_csv(b"sku,name,category\nA-1,a,b\nA-2,c,e\n", source="x")
    assert digest(a) == digest(b) != digest(c)


def test_not_utf8_names_the_row_and_byte() -> None:
    assert problems(b"sku,name,category\nA-1,ok,b\nA-2,\xcf\xf0\xe8,b\n") == [
        "row 3: byte 31 is not UTF-8; export the file as UTF-8"
    ]


def test_an_empty_file_and_a_header_without_rows() -> None:
    assert problems(b"") == [
        "the file is empty: a header row (sku, name, category, ...) is required"
    ]
    assert problems("  \n\n") == problems(b"")
    assert problems("sku,name,category\n\n") == ["the file has a header but no products"]


def test_no_header_or_a_missing_required_column() -> None:
    (only,) = problems("A-1,Молоко,dairy\nA-2,Хлеб,bakery\n")
    assert only.startswith("row 1: missing required column(s) sku, name, category;")
    assert "the first row must be the header" in only
    (only,) = problems("sku,name\nA-1,Молоко\n")
    assert only.startswith("row 1: missing required column(s) category;")


def test_a_column_named_twice() -> None:
    assert problems("sku,name,category,Name\nA-1,a,b,c\n") == ["row 1: column 'name' appears twice"]


def test_every_row_problem_is_listed_with_row_and_column() -> None:
    text = (
        "sku,name,category,barcodes,aliases,tags,no_loyalty,age_restricted\n"
        "A-1,Молоко,dairy,,,,,\n"  # good
        ",Кефир,,,,,,\n"  # two empty required fields
        "A-1,Молоко снова,dairy,,,,,\n"  # duplicate sku
        "A-3,Хлеб,bakery,,,,да,2\n"  # two bad booleans
        f"A-4,{'Я' * 257},bakery,,,,,\n"  # name too long
        f"A-5,Соль,grocery,{'4' * 65},,,,\n"  # a barcode too long
        f"A-6,Сахар,grocery,,,{';'.join(f't{i}' for i in range(MAX_ITEMS + 1))},,\n"
        "A-7,Мука,grocery,,,,,,extra\n"  # a field too many
    )
    assert problems(text) == [
        "row 3, sku: empty (required)",
        "row 3, category: empty (required)",
        "row 4, sku: 'A-1' appears twice (first on row 2)",
        "row 5, no_loyalty: 'да' is not 1/true or 0/false/empty",
        "row 5, age_restricted: '2' is not 1/true or 0/false/empty",
        f"row 6, name: 257 characters, at most 256 ({'Я' * 20!r}...)",
        f"row 7, barcodes: 65 characters, at most 64 ({'4' * 20!r}...)",
        f"row 8, tags: {MAX_ITEMS + 1} items, at most {MAX_ITEMS}",
        "row 9: 9 fields, the header has 8 (a ',' or ';' inside a field must be quoted)",
    ]


def test_a_broken_quote_or_a_control_character_is_a_problem_not_a_crash() -> None:
    errors = problems('sku,name,category\nA-1,"Молоко,dairy\nA-2,Хлеб,bakery\n')
    assert len(errors) == 1 and errors[0].startswith("row 2: not valid CSV")
    assert problems('sku,name,category\nA-1,"a\nb",c\nA-2,d\x00,e\n') == [
        "row 2, name: a control character (U+000A) in 'a\\nb'",
        "row 3, name: a control character (U+0000) in 'd\\x00'",
    ]


def test_thousands_of_problems_are_listed_up_to_a_bound() -> None:
    rows = "".join(f"A-{i},,dairy\n" for i in range(MAX_ERRORS + 50))
    errors = problems("sku,name,category\n" + rows)
    assert len(errors) == MAX_ERRORS + 1 and errors[-1] == "... and 50 more problems"


def test_a_file_that_is_not_there_or_not_readable(tmp_path: Path) -> None:
    with pytest.raises(ProductsError, match="file not found"):
        load_products_file(tmp_path / "nope.csv")
    with pytest.raises(ProductsError, match="cannot read"):
        load_products_file(tmp_path)  # a directory
