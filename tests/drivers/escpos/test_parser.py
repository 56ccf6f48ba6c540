"""The document model: code pages per run, styles, pictures, codes, bad arguments."""

from __future__ import annotations

import json

import pytest

from tillgate.core.errors import ConfigError
from tillgate.drivers.escpos import parse
from tillgate.drivers.escpos.model import (
    Barcode,
    Cut,
    DisplayText,
    DrawerKick,
    Line,
    QRCode,
    Raster,
    StatusQuery,
    Truncated,
    Unknown,
)

ESC, GS, FS = b"\x1b", b"\x1d", b"\x1c"


def test_each_run_is_decoded_with_its_own_code_page() -> None:
    data = (
        ESC + b"t\x11" + "Цена ".encode("cp866") + ESC + b"t\x10" + "café ".encode("cp1252")
        + ESC + b"t\x2e" + "рубль".encode("cp1251") + b"\n"
    )  # fmt: skip
    (line,) = parse(data).blocks
    assert isinstance(line, Line)
    assert [(r.text, r.codepage) for r in line.runs] == [
        ("Цена ", "cp866"),
        ("café ", "cp1252"),
        ("рубль", "cp1251"),
    ]


def test_caller_overrides_the_code_page_table_and_the_start_page() -> None:
    text = "Привет".encode("cp866")
    assert parse(ESC + b"t\x06" + text).lines[0].text != "Привет"  # 6 is not CP866 on Epson
    assert parse(ESC + b"t\x06" + text, codepages={6: "cp866"}).lines[0].text == "Привет"
    assert parse(text, codepage="cp866").lines[0].text == "Привет"
    # ESC @ goes back to the start page
    doc = parse(ESC + b"t\x2e" + b"\n" + ESC + b"@" + text, codepage="cp866")
    assert doc.lines[-1].text == "Привет"


@pytest.mark.parametrize(
    "kwargs",
    [{"codepage": "no-such"}, {"codepages": {17: "klingon"}}, {"kanji_codec": "x"}],
)
def test_unknown_codec_is_a_config_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="unknown text encoding"):
        parse(b"x", **kwargs)  # type: ignore[arg-type,unused-ignore]


def test_codepage_number_out_of_range_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"0\.\.255"):
        parse(b"x", codepages={300: "cp866"})


def test_styles_and_alignment() -> None:
    data = (
        ESC + b"a\x01" + ESC + b"!\x38" + b"BIG" + ESC + b"!\x00" + b" " + ESC + b"-\x02"
        + b"u" + ESC + b"-\x00" + GS + b"B\x01" + b"inv" + GS + b"B\x00" + ESC + b"M\x01"
        + b"b" + GS + b"!\x23" + b"w" + b"\n"
    )  # fmt: skip
    (line,) = parse(data).blocks
    assert isinstance(line, Line)
    assert line.align == "center"
    runs = {r.text: r.style for r in line.runs}
    assert runs["BIG"].bold and runs["BIG"].width == 2 and runs["BIG"].height == 2
    assert runs["u"].underline == 2
    assert runs["inv"].invert
    assert runs["b"].font == "B"
    assert (runs["w"].width, runs["w"].height) == (3, 4)


def test_alignment_counts_at_the_start_of_a_line_only() -> None:
    doc = parse(b"left" + ESC + b"a\x02" + b" still\nright\n")
    assert [(b.align, b.text) for b in doc.lines] == [("left", "left still"), ("right", "right")]


def test_kanji_mode_decodes_double_byte_text() -> None:
    data = b"A" + FS + b"&" + "中文".encode("gb18030") + FS + b"." + b"\x8e\n"
    assert parse(data).lines[0].text == "A中文Ä"  # back to CP437 after FS .
    assert parse(FS + b"&" + "日本".encode("shift_jis"), kanji_codec="shift_jis").lines[0].text == (
        "日本"
    )


def test_barcodes_and_qr() -> None:
    code128 = b"{A" + b"AB" + b"{C" + bytes([1, 99]) + b"{{"
    data = (
        GS + b"H\x02" + GS + b"h\x50" + GS + b"w\x02" + GS + b"k\x03" + b"46012345\x00"
        + GS + b"kI" + bytes([len(code128)]) + code128
        + GS + b"(k\x03\x001C\x06" + GS + b"(k\x03\x001E3"
        + GS + b"(k\x08\x001P0hello" + GS + b"(k\x03\x001Q0"
        + GS + b"(k\x06\x000P0pdf" + GS + b"(k\x03\x000Q0"
    )  # fmt: skip
    ean, c128, qr, pdf = parse(data).blocks
    assert ean == Barcode(symbology="EAN8", data="46012345", hri="below", height=80, module=2)
    assert isinstance(c128, Barcode) and c128.data == "AB0199{"
    assert qr == QRCode(data="hello", size=6, ec="H")
    assert isinstance(pdf, Barcode) and (pdf.symbology, pdf.data) == ("PDF417", "pdf")


def test_pictures() -> None:
    gs_v0 = GS + b"v0\x00\x01\x00\x02\x00" + b"\x80\x01"
    esc_star = ESC + b"*\x00\x02\x00" + b"\x80\x01"  # two 8-dot columns
    (a, b) = parse(gs_v0 + esc_star + b"\n" + esc_star + b"\n").blocks
    assert isinstance(a, Raster) and (a.width, a.height) == (8, 2)
    assert a.pixel(0, 0) and a.pixel(7, 1) and not a.pixel(1, 0)
    # two bands of the same width become one picture; the LFs that print them add no lines
    assert isinstance(b, Raster) and (b.width, b.height, b.source) == (2, 16, "ESC *")
    assert b.pixel(0, 0) and b.pixel(1, 7) and b.pixel(0, 8) and not b.pixel(1, 0)


def test_cut_drawer_status_display() -> None:
    data = (
        b"Sale" + ESC + b"p\x01\x32\x64" + b"\n" + GS + b"I\x01" + ESC + b"=\x02"
        + b"On pole" + ESC + b"=\x01" + GS + b"VB\x05" + ESC + b"i"
    )  # fmt: skip
    assert parse(data).blocks == (
        Line(runs=parse(b"Sale").lines[0].runs),
        DrawerKick(pin=5, on_ms=100, off_ms=200),
        StatusQuery(command="GS I 1", what="model ID"),
        DisplayText(text="On pole"),
        Cut(partial=True),
        Cut(partial=True),
    )


def test_unknown_and_truncated_commands_lose_nothing() -> None:
    data = b"a" + ESC + b"\x7f" + GS + b"\x99" + b"b\n" + GS + b"v0\x00\xff\xff"
    doc = parse(data)
    line, unknown, truncated = doc.blocks
    assert isinstance(line, Line) and line.text == "ab"
    assert unknown == Unknown(raw=b"\x1b\x7f\x1d\x99", count=2, names=("ESC 0x7F", "GS 0x99"))
    assert truncated == Truncated(name="GS v 0", raw=GS + b"v0\x00\xff\xff")


def test_to_json_is_stable_and_serialisable() -> None:
    data = (
        b"Hi\n" + GS + b"k\x02" + b"4601234567893\x00" + GS + b"v0\x00\x01\x00\x01\x00\xff"
        + ESC + b"\x7f" + GS + b"V\x00" + b"\x1d(k"
    )  # fmt: skip
    doc = parse(data)
    first = json.dumps(doc.to_json(), sort_keys=True)
    assert first == json.dumps(parse(data).to_json(), sort_keys=True)
    blob = json.loads(first)
    assert blob["format"] == "tillgate.escpos.document/1"
    assert [b["type"] for b in blob["blocks"]] == [
        "line",
        "barcode",
        "raster",
        "unknown",
        "cut",
        "truncated",
    ]
    assert blob["blocks"][2]["data"] == "/w=="
