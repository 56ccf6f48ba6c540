"""Positions, margins, sizes and the Katakana page: bytes in, the text rendering out."""

from __future__ import annotations

import pytest

from tillgate.drivers.escpos import parse, render_text
from tillgate.drivers.escpos.codepages import EPSON_KATAKANA, decode
from tillgate.drivers.escpos.model import Line, Truncated, Unknown

ESC, GS, FS = b"\x1b", b"\x1d", b"\x1c"


def at(dots: int) -> bytes:
    """ESC $: absolute print position in dots (font A: 12 dots a column)."""
    return ESC + b"$" + dots.to_bytes(2, "little")


def by(dots: int) -> bytes:
    """ESC \\: relative print position in dots, negative allowed."""
    return ESC + b"\\" + (dots & 0xFFFF).to_bytes(2, "little")


def text(data: bytes, columns: int = 42) -> list[str]:
    return render_text(parse(data), columns=columns).splitlines()


def test_absolute_and_relative_positions_become_columns() -> None:
    data = b"Bread" + at(30 * 12) + b"54.90" + b"\n" + b"Milk" + by(10 * 12) + b"89.90\n"
    assert text(data) == ["Bread" + " " * 25 + "54.90", "Milk" + " " * 10 + "89.90"]
    assert parse(data).lines[0].runs[1].column == 30


def test_going_back_fills_blank_columns_and_never_overprints() -> None:
    # rules first, then the cell text between them (as receiptline draws tables) ...
    rules = b"|" + at(10 * 12) + b"|" + at(12) + b"cell\n"
    assert text(rules) == ["|cell     |"]
    # ... but text placed over text moves after it, two columns on
    clash = b"Long product name" + at(5 * 12) + b"9.99\n"
    assert text(clash) == ["Long product name  9.99"]


def test_a_one_column_gap_reads_as_two() -> None:
    # templates split name and amount at two spaces; the printed gap is one column
    assert text(b"Name" + at(5 * 12) + b"1.00\n") == ["Name  1.00"]
    assert text(b"Name " + b"1.00\n") == ["Name 1.00"]  # a typed space stays one


def test_relative_position_can_go_back_and_adds_to_a_pending_one() -> None:
    data = b"abc" + at(20 * 12) + by(-5 * 12) + b"x\n"
    assert text(data) == ["abc" + " " * 12 + "x"]


def test_position_outside_the_print_area_is_ignored() -> None:
    assert text(b"abc" + at(100 * 12) + b"def\n") == ["abcdef"]


def test_font_b_columns_are_nine_dots() -> None:
    data = ESC + b"M\x01" + b"x" + at(10 * 9) + b"y\n"
    assert text(data, columns=56) == ["x" + " " * 9 + "y"]


def test_right_side_spacing_widens_a_column() -> None:
    data = ESC + b" \x02" + b"x" + at(10 * 14) + b"y\n"  # 12 + 2 dots a column
    assert text(data) == ["x" + " " * 9 + "y"]


def test_left_margin_and_print_area_width() -> None:
    data = GS + b"L" + (4 * 12).to_bytes(2, "little") + GS + b"W" + (20 * 12).to_bytes(2, "little")
    data += ESC + b"a\x01" + b"centred\n" + ESC + b"a\x02" + b"right\n"
    for line in parse(data).lines:
        assert (line.margin, line.width) == (4, 20)
    assert text(data) == [" " * 4 + " " * 6 + "centred", " " * 4 + " " * 15 + "right"]


def test_justification_moves_a_positioned_line_as_a_whole() -> None:
    data = ESC + b"a\x02" + b"a" + at(5 * 12) + b"b\n"
    assert text(data, columns=10) == ["    a    b"]


@pytest.mark.parametrize(
    ("size", "cells"),
    [
        (GS + b"!\x11", 2),  # double width and height
        (GS + b"!\x33", 4),  # quadruple
        (ESC + b"!\x30", 2),  # ESC ! double width + double height ("quad area")
        (ESC + b"!\x20", 2),  # ESC ! double width
    ],
)
def test_scaled_text_reads_as_plain_letters(size: bytes, cells: int) -> None:
    data = size + b"TOTAL 9.99\n"
    assert text(data) == ["TOTAL 9.99"]
    (run,) = parse(data).lines[0].runs
    assert run.style.width == cells


def test_scaled_text_sits_where_it_prints() -> None:
    width2 = GS + b"!\x10"
    normal = GS + b"!\x00"
    # centred on paper by position: centred in the text
    centred = at(17 * 12) + width2 + b"SHOP" + normal + b"\n"
    # a field ending at the right edge stays flush right
    right = b"TOTAL" + at(30 * 12) + width2 + b"831.55" + normal + b"\n"
    # centred with ESC a, and wrapped where the paper wraps (8 letters of 2 columns)
    wrapped = ESC + b"a\x01" + width2 + b"ABCDEFGHIJ" + normal + b"\n"
    assert text(centred + right) == [" " * 19 + "SHOP", "TOTAL" + " " * 31 + "831.55"]
    assert text(wrapped, columns=16) == ["    ABCDEFGH", "       IJ"]


def test_text_after_scaled_text_follows_it() -> None:
    data = ESC + b"!\x20" + b"TOTAL" + ESC + b"!\x00" + b"   9.99\n"
    assert text(data) == ["TOTAL   9.99"]


def test_katakana_page_draws_boxes() -> None:
    data = ESC + b"t\x01" + b"\x9c\x95\x95\x91\x95\x9d\n" + b"\x96ab\x96c\x96\n" + b"\xb1\xb2\n"
    assert text(data) == ["╭──┬─╮", "│ab│c│", "ｱｲ"]
    assert len(EPSON_KATAKANA) == 256
    assert decode(bytes(range(0x80)), "epson-katakana") == "".join(map(chr, range(0x80)))


def test_katakana_can_be_chosen_for_another_number() -> None:
    data = ESC + b"t\x07" + b"\x95\x95\n"
    assert parse(data, codepages={7: "epson-katakana"}).lines[0].text == "──"


@pytest.mark.parametrize(
    "data",
    [
        b"abc" + ESC + b"$\x05",  # ESC $ cut short
        b"abc" + ESC + b"\\",  # ESC \ cut short
        b"abc" + GS + b"L",  # GS L cut short
        b"x" + at(0xFFFF) + by(-0x7FFF) + b"y\n" + GS + b"W\x00\x00" + b"z\n",  # extremes
    ],
)
def test_bad_position_commands_never_crash(data: bytes) -> None:
    doc = parse(data)
    rendered = render_text(doc)
    assert rendered.startswith(("abc", "x"))
    if not data.endswith(b"\n"):
        assert isinstance(doc.blocks[-1], Truncated | Unknown)
    assert all(isinstance(b, Line | Truncated | Unknown) for b in doc.blocks)


def test_positioned_text_wraps_where_the_paper_does() -> None:
    data = b"abc" + at(6 * 12) + b"defghij\n"
    assert text(data, columns=10) == ["abc   defg", "hij"]


def test_wide_characters_keep_their_two_columns_when_placed() -> None:
    data = ESC + b"t\x11" + FS + b"&" + "价格".encode("gb18030") + FS + b"." + at(8 * 12) + b"9\n"
    assert text(data) == ["价格    9"]
