"""A parsed receipt as a picture (``tillgate decode --png``): text, barcodes and QR redrawn.

Text is set in a monospaced grid of ``columns`` cells across ``width_px`` dots, like font A on
the printer; barcodes are redrawn with python-barcode, QR codes with qrcode, rasters are
pasted as sent, cuts are dashed lines. Headless: only Pillow, no display. The font is the
first one found with Cyrillic glyphs: DejaVu Sans Mono from the system, else the copy that
python-barcode ships, else Pillow's built-in font.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO

from PIL import Image, ImageDraw, ImageFont

from tillgate.core.errors import ConfigError

from .model import Align, Barcode, Block, Cut, Document, Line, QRCode, Raster
from .placement import Piece, place
from .text import char_cells, infer_columns, render_block

logger = logging.getLogger(__name__)

DPI = 203  # 8 dots/mm thermal heads, the common case
_MARGIN = 8
_FONT_DIRS = (
    "/usr/share/fonts/truetype/dejavu",
    "/usr/share/fonts/dejavu",
    "/usr/share/fonts/TTF",
    "/Library/Fonts",
    "C:/Windows/Fonts",
)
# CJK text (Kanji mode) needs a font DejaVu is not: the usual Linux and Windows ones.
_CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "C:/Windows/Fonts/msgothic.ttc",
    "C:/Windows/Fonts/simsun.ttc",
)
_BARCODE_NAMES = {
    "EAN13": "ean13",
    "EAN8": "ean8",
    "UPC-A": "upca",
    "CODE39": "code39",
    "CODE128": "code128",
    "CODE128 AUTO": "code128",
    "GS1-128": "gs1_128",
    "ITF": "itf",
    "CODABAR": "codabar",
}

AnyFont = ImageFont.FreeTypeFont | ImageFont.ImageFont


def render_png(
    doc: Document,
    path_or_file: str | Path | IO[bytes],
    *,
    width_px: int = 576,
    columns: int | None = None,
) -> None:
    """Draw ``doc`` as a receipt ``width_px`` dots wide and save it as PNG."""
    image = render_image(doc, width_px=width_px, columns=columns)
    try:
        image.save(path_or_file, format="PNG")
    except OSError as exc:
        raise ConfigError(f"cannot write the PNG to {path_or_file}: {exc}") from exc


def render_image(doc: Document, *, width_px: int = 576, columns: int | None = None) -> Image.Image:
    """Draw ``doc`` as a greyscale ("L") image ``width_px`` dots wide."""
    width_px = max(64, width_px)
    columns = max(1, columns or infer_columns(doc))
    painter = _Painter(width_px=width_px, columns=columns)
    strips: list[Image.Image] = []
    for block in doc.blocks:
        strips.extend(painter.block(block))
    height = 2 * _MARGIN + sum(s.height for s in strips)
    page = Image.new("L", (width_px, height), 255)
    y = _MARGIN
    for strip in strips:
        page.paste(strip, (0, y))
        y += strip.height
    return page


@dataclass
class _Painter:
    """Draws blocks as full-width strips; keeps the fonts and a glyph cache."""

    width_px: int
    columns: int
    cell: int = 0
    line_h: int = 0
    font_path: str | None = None
    _fonts: dict[bool, AnyFont] = field(default_factory=dict)
    _wide_font: AnyFont | None = None
    _glyphs: dict[tuple[str, bool], Image.Image] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cell = max(4, self.width_px // self.columns)
        self.line_h = self.cell * 2  # font A is 12 x 24 dots
        self.font_path = _find_font(bold=False)
        self._fonts[False] = _load_font(self.font_path, self.cell)
        bold_path = _find_font(bold=True)
        if bold_path is not None:
            self._fonts[True] = _load_font(bold_path, self.cell)
        cjk_path = next((p for p in _CJK_FONTS if Path(p).is_file()), None)
        if cjk_path is not None:  # sized so a wide character fills its two cells
            self._wide_font = _load_font(cjk_path, self.cell * 2, probe="中")

    def block(self, block: Block) -> list[Image.Image]:
        if isinstance(block, Line):
            return self._line(block)
        if isinstance(block, Barcode):
            return [self._framed(_barcode_image(block, self.font_path), block.align, block)]
        if isinstance(block, QRCode):
            return [self._framed(_qr_image(block), block.align, block)]
        if isinstance(block, Raster):
            return [self._framed(_raster_image(block), block.align, block)]
        if isinstance(block, Cut):
            return [self._cut(block.partial)]
        return [self._note(text) for text in render_block(block, self.columns)]

    # -- text ------------------------------------------------------------------------------

    def _line(self, line: Line) -> list[Image.Image]:
        # Where each character prints, as the text rendering places it (ESC $, margins …).
        margin = min(line.margin, self.columns - 1)
        area = max(1, min(line.width or self.columns, self.columns - margin))
        rows: list[list[Piece]] = [[]]
        for piece in place(line, area):
            while len(rows) <= piece.row:
                rows.append([])
            rows[piece.row].append(piece)
        return [self._text_row(row, line.align, margin, area) for row in rows]

    def _text_row(self, row: list[Piece], align: Align, margin: int, area: int) -> Image.Image:
        tall = max((p.style.height for p in row), default=1)
        strip = Image.new("L", (self.width_px, self.line_h * tall), 255)
        chars = [(at, cells, ch, p.style) for p in row for at, cells, ch in p.chars(area)]
        used = max((at + cells for at, cells, ch, _ in chars if ch != " "), default=0)
        lead = margin + _lead(area - used, align)
        for column, cells, ch, style in chars:
            x = (lead + column) * self.cell
            box_w, box_h = cells * self.cell, self.line_h * style.height
            top = strip.height - box_h
            glyph = self._glyph(ch, style.bold)
            if glyph.size != (box_w, box_h):
                glyph = glyph.resize((box_w, box_h), Image.Resampling.NEAREST)
            ink = 0
            if style.invert:
                strip.paste(0, (x, top, x + box_w, top + box_h))
                ink = 255
            strip.paste(ink, (x, top, x + box_w, top + box_h), glyph)
            if style.underline:
                y = top + box_h - 2
                ImageDraw.Draw(strip).line(
                    [(x, y), (x + box_w - 1, y)], fill=ink, width=style.underline
                )
        return strip

    def _glyph(self, ch: str, bold: bool) -> Image.Image:
        """The character as a mask (255 = ink) filling its cells at normal size."""
        key = (ch, bold)
        glyph = self._glyphs.get(key)
        if glyph is None:
            glyph = Image.new("L", (char_cells(ch) * self.cell, self.line_h), 0)
            font = self._fonts.get(bold, self._fonts[False])
            if char_cells(ch) == 2 and self._wide_font is not None:
                font = self._wide_font
            draw = ImageDraw.Draw(glyph)
            top = max(0, (self.line_h - _font_height(font, self.cell)) // 2)
            draw.text((0, top), ch, fill=255, font=font)
            if bold and bold not in self._fonts:  # no bold face: overstrike one dot right
                draw.text((1, top), ch, fill=255, font=font)
            self._glyphs[key] = glyph
        return glyph

    # -- everything else -------------------------------------------------------------------

    def _framed(self, picture: Image.Image | None, align: Align, block: Block) -> Image.Image:
        """A picture on its own strip with a little space around; a note if it cannot be drawn."""
        if picture is None:
            return self._placeholder(render_block(block, self.columns)[0].strip())
        if picture.width > self.width_px:  # the printer prints only its print area
            picture = picture.crop((0, 0, self.width_px, picture.height))
        strip = Image.new("L", (self.width_px, picture.height + 8), 255)
        strip.paste(picture, (_lead(self.width_px - picture.width, align), 4))
        return strip

    def _placeholder(self, text: str) -> Image.Image:
        strip = self._note(text)
        ImageDraw.Draw(strip).rectangle(
            (0, 0, self.width_px - 1, strip.height - 1), outline=0, width=2
        )
        return strip

    def _note(self, text: str) -> Image.Image:
        strip = Image.new("L", (self.width_px, self.line_h), 255)
        font = self._fonts[False]
        ImageDraw.Draw(strip).text((self.cell // 2, self.line_h // 6), text, fill=110, font=font)
        return strip

    def _cut(self, partial: bool) -> Image.Image:
        strip = Image.new("L", (self.width_px, self.line_h), 255)
        draw = ImageDraw.Draw(strip)
        dash, gap = (4, 6) if partial else (12, 6)
        y = self.line_h // 2
        for x in range(0, self.width_px, dash + gap):
            draw.line([(x, y), (x + dash - 1, y)], fill=0, width=2)
        return strip


def _lead(free: int, align: Align) -> int:
    return {"left": 0, "center": max(0, free) // 2, "right": max(0, free)}[align]


def _find_font(*, bold: bool) -> str | None:
    """A monospaced TrueType font with Cyrillic: the system's DejaVu, else python-barcode's."""
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    for folder in _FONT_DIRS:
        path = Path(folder) / name
        if path.is_file():
            return str(path)
    if bold:
        return None
    shipped = resources.files("barcode") / "fonts" / "DejaVuSansMono.ttf"
    return str(shipped) if shipped.is_file() else None


def _load_font(path: str | None, cell: int, *, probe: str = "0") -> AnyFont:
    """The font sized so ``probe`` advances ``cell`` dots."""
    if path is not None:
        try:
            sample = ImageFont.truetype(path, 100)
            size = max(6, int(100 * cell / max(1.0, sample.getlength(probe))))
            return ImageFont.truetype(path, size)
        except OSError:
            logger.debug("font %s cannot be loaded; using Pillow's own", path)
    return ImageFont.load_default(size=cell * 1.6)


def _font_height(font: AnyFont, cell: int) -> int:
    if isinstance(font, ImageFont.FreeTypeFont):
        ascent, descent = font.getmetrics()
        return int(ascent + descent)
    return cell * 2


def _barcode_image(block: Barcode, font_path: str | None) -> Image.Image | None:
    name = _BARCODE_NAMES.get(block.symbology)
    if name is None or not block.data:
        return None
    # Imported here: python-barcode is only needed for pictures.
    import barcode  # type: ignore[import-untyped]
    from barcode.writer import ImageWriter  # type: ignore[import-untyped]

    mm_per_dot = 25.4 / DPI
    options: dict[str, object] = {
        "module_width": max(1, block.module) * mm_per_dot,
        "module_height": max(8, block.height) * mm_per_dot,
        "dpi": DPI,
        "quiet_zone": 1.0,
        "write_text": block.hri != "none",
        "font_size": 8,
        "text_distance": 3.0,
    }
    if font_path is not None:
        options["font_path"] = font_path
    try:
        code = barcode.get(name, block.data, writer=ImageWriter())
        picture = code.render(options)
    except Exception as exc:  # python-barcode refuses bad data with many exception types
        logger.debug("barcode %s %r not drawn: %s", block.symbology, block.data, exc)
        return None
    return picture.convert("L") if isinstance(picture, Image.Image) else None


def _qr_image(block: QRCode) -> Image.Image | None:
    import qrcode  # type: ignore[import-untyped]
    from qrcode.exceptions import DataOverflowError  # type: ignore[import-untyped]

    levels = {
        "L": qrcode.constants.ERROR_CORRECT_L,
        "M": qrcode.constants.ERROR_CORRECT_M,
        "Q": qrcode.constants.ERROR_CORRECT_Q,
        "H": qrcode.constants.ERROR_CORRECT_H,
    }
    qr = qrcode.QRCode(
        error_correction=levels.get(block.ec, qrcode.constants.ERROR_CORRECT_L),
        box_size=max(1, min(block.size, 16)),
        border=2,
    )
    try:
        qr.add_data(block.data)
        qr.make(fit=True)
    except (DataOverflowError, ValueError) as exc:
        logger.debug("QR %r not drawn: %s", block.data[:40], exc)
        return None
    picture = qr.make_image().get_image()
    return picture.convert("L") if isinstance(picture, Image.Image) else None


def _raster_image(block: Raster) -> Image.Image | None:
    if block.width == 0 or block.height == 0:
        return None
    # ESC/POS sends 1 = black; PIL's "1;I" raw mode reads exactly that.
    picture = Image.frombytes("1", (block.width, block.height), b"".join(block.rows), "raw", "1;I")
    return picture.convert("L")
