"""A parsed receipt as plain text, laid out the way the printer would lay it out.

Lines wrap at the paper's column count (or the print area that ``GS L`` / ``GS W`` set) and
are aligned within it; text placed with ``ESC $`` / ``ESC \\`` keeps its column; double- and
quadruple-size text shows as plain letters (``ИТОГО``), where it sits on paper (see
:mod:`.placement`); everything that is not text shows as a short bracketed note
(``[BARCODE EAN13 4601234567893]``, ``[QR …]``, ``[IMAGE 384x120]``, ``----- cut -----``).
"""

from __future__ import annotations

from .model import (
    Align,
    Barcode,
    Block,
    Cut,
    DisplayText,
    Document,
    DrawerKick,
    Line,
    QRCode,
    Raster,
    StatusQuery,
    StoredImage,
    Truncated,
    Unknown,
)
from .placement import char_cells, extent, text_rows

__all__ = ["COMMON_COLUMNS", "DEFAULT_COLUMNS", "char_cells", "infer_columns", "render_text"]

DEFAULT_COLUMNS = 42  # Epson font A on 80 mm paper at 512 dots
# 80 mm paper: font A at 512 and 576 dots, font B at 512 and 576 dots.
COMMON_COLUMNS = (DEFAULT_COLUMNS, 48, 56, 64)
_NAMES_SHOWN = 4


def render_text(doc: Document, *, columns: int | None = None) -> str:
    """The receipt as text, one printed line per text line, ending with a newline.

    ``columns`` defaults to 42, or more when the POS formatted wider (see :func:`infer_columns`).
    """
    if columns is None:
        columns = infer_columns(doc)
    columns = max(1, columns)
    out: list[str] = []
    for block in doc.blocks:
        out.extend(render_block(block, columns))
    return "\n".join(out) + "\n" if out else ""


def infer_columns(doc: Document) -> int:
    """The column count a receipt was formatted for: the narrowest common paper width (42, 48,
    56 or 64) that holds its widest line; lines wider than 64 are text the printer wraps and
    tell nothing."""
    widths = (line.margin + max(extent(line), line.width or 0) for line in doc.lines)
    widest = max((w for w in widths if w <= COMMON_COLUMNS[-1]), default=0)
    return next(c for c in COMMON_COLUMNS if c >= widest)


def render_block(block: Block, columns: int) -> list[str]:
    """One block as text lines (a wrapped text line, or the one-line note for anything else)."""
    if isinstance(block, Line):
        return _render_line(block, columns)
    if isinstance(block, Barcode):
        note = f"[BARCODE {block.symbology} {_printable(block.data)}]"
        return [_aligned(note, 0, block.align, columns)]
    if isinstance(block, QRCode):
        return [_aligned(f"[QR {_printable(block.data)}]", 0, block.align, columns)]
    if isinstance(block, Raster):
        return [_aligned(f"[IMAGE {block.width}x{block.height}]", 0, block.align, columns)]
    if isinstance(block, StoredImage):
        return [f"[STORED IMAGE {block.ref}]"]
    if isinstance(block, Cut):
        return ["----- partial cut -----" if block.partial else "----- cut -----"]
    if isinstance(block, DrawerKick):
        return ["[DRAWER]"]
    if isinstance(block, StatusQuery):
        return [f"[STATUS {block.command}: {block.what}]"]
    if isinstance(block, DisplayText):
        return [f"[DISPLAY {_printable(block.text)}]"]
    if isinstance(block, Unknown):
        names = ", ".join(block.names[:_NAMES_SHOWN])
        more = f" … {block.count} commands" if block.count > _NAMES_SHOWN else ""
        return [f"[UNKNOWN {names}{more}]"]
    assert isinstance(block, Truncated)
    return [f"[TRUNCATED {block.name}: {len(block.raw)} bytes]"]


def _render_line(line: Line, columns: int) -> list[str]:
    margin = min(line.margin, columns - 1)
    area = max(1, min(line.width or columns, columns - margin))
    pad = " " * margin
    return [(pad + _aligned(row, 0, line.align, area)).rstrip() for row in text_rows(line, area)]


def _aligned(text: str, cells: int, align: Align, columns: int) -> str:
    if cells == 0:
        cells = sum(char_cells(ch) for ch in text)
    pad = max(0, columns - cells)
    lead = {"left": 0, "center": pad // 2, "right": pad}[align]
    return (" " * lead + text).rstrip()


def _printable(text: str) -> str:
    """Control characters as ``\\xNN`` so a note stays on one line."""
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
