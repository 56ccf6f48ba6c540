"""The receipt picture: right size, not blank, and its codes read back with zxing-cpp."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from tillgate.core.errors import ConfigError
from tillgate.drivers.escpos import parse
from tillgate.drivers.escpos.png import render_image, render_png

GOLDEN = Path(__file__).resolve().parent / "golden"


def golden(name: str) -> bytes:
    return (GOLDEN / f"{name}.bin").read_bytes()


def dark_fraction(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    region = image.crop(box).convert("L")
    histogram = region.histogram()
    return sum(histogram[:128]) / (region.width * region.height)


def test_png_file_has_the_paper_width_and_ink(tmp_path: Path) -> None:
    out = tmp_path / "receipt.png"
    render_png(parse(golden("python_escpos")), out)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.width == 576
        assert image.height > 400
        assert 0.01 < dark_fraction(image, (0, 0, image.width, image.height)) < 0.5


def test_codes_in_the_picture_read_back() -> None:
    image = render_image(parse(golden("barcodes")))
    found = {(r.format.name, r.text) for r in zxingcpp.read_barcodes(image)}
    assert ("EAN13", "4601234567893") in found
    assert ("Code128", "No.123456") in found
    assert ("QRCode", "https://t.example/r/1") in found


def test_python_escpos_receipt_reads_back() -> None:
    image = render_image(parse(golden("python_escpos")), width_px=512)
    assert image.width == 512
    texts = {r.text for r in zxingcpp.read_barcodes(image)}
    assert texts == {"4601234567893", "https://example.com/check?id=42"}


def test_raster_is_pasted_dot_for_dot() -> None:
    # an 8x2 picture: left half of row 0 black, right half of row 1 black
    data = b"\x1dv0\x00\x01\x00\x02\x00" + b"\xf0\x0f"
    image = render_image(parse(data), width_px=64)
    ys = [y for y in range(image.height) if any(image.getpixel((x, y)) == 0 for x in range(8))]
    top = ys[0]
    assert [image.getpixel((x, top)) for x in range(8)] == [0] * 4 + [255] * 4
    assert [image.getpixel((x, top + 1)) for x in range(8)] == [255] * 4 + [0] * 4


def test_cyrillic_text_is_drawn_as_real_glyphs() -> None:
    # A font without Cyrillic draws the same empty box for every letter: two different words
    # must give two different pictures, both with ink.
    def word(text: str) -> Image.Image:
        return render_image(parse(b"\x1bt\x11" + text.encode("cp866") + b"\n"), width_px=576)

    first, second = word("Привет"), word("Жёлудь")
    assert dark_fraction(first, (0, 0, 200, first.height)) > 0.02
    assert dark_fraction(second, (0, 0, 200, second.height)) > 0.02
    assert first.tobytes() != second.tobytes()


def test_codes_it_cannot_draw_become_framed_notes() -> None:
    data = b"\x1dk\x02" + b"not digits\x00" + b"\x1d(k\x05\x000P0x" + b"\x1d(k\x03\x000Q0"
    image = render_image(parse(data))
    assert dark_fraction(image, (0, 0, image.width, image.height)) > 0.01


def test_unwritable_target_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write the PNG"):
        render_png(parse(b"x"), tmp_path / "no-such-dir" / "r.png")


def test_renders_into_a_file_object() -> None:
    buffer = io.BytesIO()
    render_png(parse(golden("styles")), buffer, width_px=384)
    buffer.seek(0)
    with Image.open(buffer) as image:
        assert image.width == 384


def test_picture_puts_positioned_fields_at_their_columns() -> None:
    # "Bread" at column 0, "54.90" at column 30 (ESC $ 360 dots): ink there, none between
    data = b"Bread" + b"\x1b$" + (30 * 12).to_bytes(2, "little") + b"54.90\n"
    image = render_image(parse(data), width_px=42 * 12, columns=42)
    cell, height = 12, image.height
    assert dark_fraction(image, (0, 0, 5 * cell, height)) > 0.02
    assert dark_fraction(image, (6 * cell, 0, 29 * cell, height)) == 0
    assert dark_fraction(image, (30 * cell, 0, 35 * cell, height)) > 0.02
