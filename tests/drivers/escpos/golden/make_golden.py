"""Writes the golden ESC/POS streams (``*.bin``) beside this file.

Run ``python tests/drivers/escpos/golden/make_golden.py``, then
``UPDATE_GOLDEN=1 python -m pytest tests/drivers/escpos/test_golden.py`` to write the
expected text, and read the ``.txt`` diff before committing it. Most streams are written
byte by byte (each command spelled out, as a POS would send it); the one built with
python-escpos's ``Dummy`` printer checks that we read what that library writes.
"""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

ESC, GS, FS, DLE = b"\x1b", b"\x1d", b"\x1c", b"\x10"
INIT = ESC + b"@"
LF = b"\n"


def cp(n: int) -> bytes:
    """ESC t n: select a character code table."""
    return ESC + b"t" + bytes([n])


def align(n: int) -> bytes:
    return ESC + b"a" + bytes([n])


def raster(width_bytes: int, rows: list[bytes]) -> bytes:
    """GS v 0 0 xL xH yL yH d1..dk."""
    header = GS + b"v0\x00" + width_bytes.to_bytes(2, "little") + len(rows).to_bytes(2, "little")
    return header + b"".join(rows)


def paren_k(body: bytes) -> bytes:
    """GS ( k pL pH body: a 2D-code function with its length."""
    return GS + b"(k" + len(body).to_bytes(2, "little") + body


def hand_written() -> dict[str, bytes]:
    """The streams spelled out here byte by byte (checked against the files by the tests)."""
    cases: dict[str, bytes] = {}
    cases["cp866"] = (
        INIT
        + cp(17)
        + align(1)
        + 'ООО "Ромашка"'.encode("cp866")
        + LF
        + align(0)
        + "Молоко 3,2%      1 x 89.90".encode("cp866")
        + LF
        + "Хлеб бородинский 2 x 45.00".encode("cp866")
        + LF
        + ESC
        + b"E\x01"
        + "ИТОГО                179.90".encode("cp866")
        + ESC
        + b"E\x00"
        + LF
        + GS
        + b"V\x01"
    )
    cases["cp1251"] = (
        INIT
        + cp(46)
        + align(1)
        + GS
        + b"!\x11"
        + "ЧЕК".encode("cp1251")
        + GS
        + b"!\x00"
        + LF
        + align(2)
        + "Сдача: 10.00 руб.".encode("cp1251")
        + LF
        + GS
        + b"VA\x03"
    )
    # One line, three code pages: each run must be decoded with its own.
    cases["codepage_switch"] = (
        INIT
        + cp(17)
        + "Цена ".encode("cp866")
        + cp(16)
        + "café ".encode("cp1252")
        + cp(46)
        + "рубль".encode("cp1251")
        + LF
        + cp(99)  # a table we know no codec for: the current one stays
        + "ещё".encode("cp1251")
        + LF
    )
    checker = [b"\xaa\x55" if y % 2 else b"\x55\xaa" for y in range(8)]
    band = bytes([0xFF, 0x81, 0x81, 0xFF] * 2)  # ESC * 0: 8 columns of 8 dots
    graphics = b"0p0\x01\x011" + (16).to_bytes(2, "little") + (2).to_bytes(2, "little")
    graphics += b"\xf0\x0f\x0f\xf0"
    cases["raster"] = (
        INIT
        + b"Logo:"
        + LF
        + align(1)
        + raster(2, checker)
        + ESC
        + b"*\x00\x08\x00"
        + band
        + LF
        + ESC
        + b"*\x00\x08\x00"
        + band
        + LF
        + GS
        + b"(L"
        + len(graphics).to_bytes(2, "little")
        + graphics
        + GS
        + b"(L\x02\x0002"
        + align(0)
        + b"after images"
        + LF
    )
    cases["truncated"] = (
        INIT
        + b"Total 12.00"
        + LF
        + b"Thank you"
        + LF
        + GS
        + b"v0\x00\x10\x00\x40\x00"
        + b"\xff" * 7
    )
    cases["truncated_header"] = INIT + b"Short" + LF + GS + b"(k\x20"
    cases["unknown"] = (
        INIT
        + b"before "
        + ESC
        + b"\x7f"
        + GS
        + b"\x99"
        + b"mid-line"
        + LF
        + FS
        + b"~"
        + GS
        + b"k\x20"  # GS k with a symbology that does not exist
        + b"after"
        + LF
    )
    cases["kanji"] = (
        INIT
        + b"Chinese: "
        + FS
        + b"&"
        + "中文收据".encode("gb18030")
        + FS
        + b"."
        + b" ok"
        + LF
        + FS
        + b"&"
        + b"\xff\xfe"  # not GB18030: replaced, never an error
        + FS
        + b"."
        + LF
    )
    cases["drawer_status"] = (
        DLE
        + b"\x04\x01"  # real-time printer status
        + GS
        + b"I\x43"  # model name
        + GS
        + b"r\x01"  # paper sensor
        + INIT
        + b"Sale"
        + ESC
        + b"p\x00\x19\xfa"  # drawer kick mid-line: noted after the line
        + LF
        + DLE
        + b"\x14\x01\x00\x01"
        + GS
        + b"V\x00"
    )
    cases["styles"] = (
        INIT
        + ESC
        + b"!\x38"  # bold, double width and height
        + b"BIG"
        + ESC
        + b"!\x00"
        + LF
        + ESC
        + b"-\x01"
        + b"underlined"
        + ESC
        + b"-\x00"
        + b" "
        + GS
        + b"B\x01"
        + b"inverted"
        + GS
        + b"B\x00"
        + LF
        + b"Item"
        + b"\t"
        + b"1.00"
        + LF
        + ESC
        + b"D\x0a\x14\x00"  # tab stops at 10 and 20
        + b"a\tb\tc"
        + LF
        + align(2)
        + b"right"
        + LF
        + align(1)
        + b"x" * 70  # wraps at the paper width
        + LF
        + ESC
        + b"d\x02"
        + ESC
        + b"="
        + b"\x02"
        + b"On display"
        + ESC
        + b"=\x01"
        + b"printed"
        + LF
    )
    code128 = b"{B" + b"No." + b"{C" + bytes([12, 34, 56])
    cases["barcodes"] = (
        INIT
        + GS
        + b"H\x02"
        + GS
        + b"h\x50"
        + GS
        + b"k\x02"
        + b"4601234567893\x00"
        + GS
        + b"kI"
        + bytes([len(code128)])
        + code128
        + GS
        + b"(k\x04\x001A2\x00"
        + GS
        + b"(k\x03\x001C\x05"
        + GS
        + b"(k\x03\x001E1"
        + paren_k(b"1P0https://t.example/r/1")
        + GS
        + b"(k\x03\x001Q0"
        + FS
        + b"p\x01\x00"
        + GS
        + b"V\x42\x00"
    )
    return cases


def with_python_escpos() -> dict[str, bytes]:
    """A receipt as python-escpos writes it (raster image, native QR, EAN13, cut)."""
    from escpos.printer import Dummy
    from PIL import Image, ImageDraw

    printer = Dummy(profile="TM-T88V")
    logo = Image.new("1", (96, 32), 1)
    ImageDraw.Draw(logo).rectangle((2, 2, 93, 29), outline=0, width=3)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Using hardware barcode …"
        printer.hw("INIT")
        printer.image(logo, center=True)
        printer.charcode("CP866")
        printer.set(align="center", bold=True, double_width=True, double_height=True)
        printer.text("Привет\n")
        printer.set_with_default()
        printer.text("Кефир 1%              1 x 75.00\n")
        printer.set(bold=True)
        printer.text("ИТОГО                      75.00\n")
        printer.set_with_default(align="center")
        printer.barcode("4601234567893", "EAN13")
        printer.qr("https://example.com/check?id=42", native=True, size=4)
        printer.cut()
    return {"python_escpos": printer.output}


def all_cases() -> dict[str, bytes]:
    return {**hand_written(), **with_python_escpos()}


def main() -> int:
    for name, data in all_cases().items():
        (HERE / f"{name}.bin").write_bytes(data)
        print(f"{name}.bin: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
