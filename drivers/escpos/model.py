"""The receipt as a document: what a parsed ESC/POS stream would print, block by block.

Every block is a frozen value; :meth:`Document.to_json` gives a stable, JSON-serialisable
dict (``tillgate decode --json``). Rasters keep their pixels as packed 1-bit rows (MSB
first, 1 = black dot), the way ``GS v 0`` sends them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

Align = Literal["left", "center", "right"]

JSON_FORMAT = "tillgate.escpos.document/1"
_HEX_SHOWN = 64  # bytes of an unknown/truncated command kept as hex in JSON


@dataclass(frozen=True, kw_only=True)
class Style:
    """How a run of text is printed."""

    bold: bool = False
    underline: int = 0  # 0 off, 1 thin, 2 thick
    width: int = 1  # 1..8 (double width = 2)
    height: int = 1
    font: str = "A"  # A, B, C
    invert: bool = False  # white on black (GS B)


@dataclass(frozen=True, kw_only=True)
class Run:
    """Text printed in one style, decoded with one code page."""

    text: str
    style: Style = field(default_factory=Style)
    codepage: str = "cp437"  # the codec it was decoded with
    # Where ESC $ / ESC \ put the run: character columns from the start of the print area
    # (dots ÷ the font's character width); None = straight after the run before it.
    column: int | None = None

    def to_json(self) -> dict[str, Any]:
        s = self.style
        return {
            "text": self.text,
            "column": self.column,
            "bold": s.bold,
            "underline": s.underline,
            "width": s.width,
            "height": s.height,
            "font": s.font,
            "invert": s.invert,
            "codepage": self.codepage,
        }


@dataclass(frozen=True, kw_only=True)
class Line:
    """One printed line of text (ended by LF, ``ESC d`` or the next block)."""

    align: Align = "left"
    runs: tuple[Run, ...] = ()
    margin: int = 0  # left margin (GS L), in character columns
    width: int | None = None  # print area width (GS W), in character columns; None = the paper

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "line",
            "align": self.align,
            "margin": self.margin,
            "width": self.width,
            "runs": [r.to_json() for r in self.runs],
        }


@dataclass(frozen=True, kw_only=True)
class Barcode:
    """A 1D barcode (``GS k``) or a 2D code other than QR (``GS ( k``: PDF417, DataMatrix …)."""

    symbology: str  # EAN13, UPC-A, CODE128, PDF417 …
    data: str  # the encoded text (CODE128 code-set switches removed)
    hri: str = "none"  # human-readable text: none | above | below | both
    height: int = 162  # dots (GS h)
    module: int = 3  # module width in dots (GS w)
    align: Align = "left"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "barcode",
            "symbology": self.symbology,
            "data": self.data,
            "hri": self.hri,
            "height": self.height,
            "module": self.module,
            "align": self.align,
        }


@dataclass(frozen=True, kw_only=True)
class QRCode:
    """A QR code printed with ``GS ( k`` (store data, then print)."""

    data: str
    size: int = 3  # module size in dots
    ec: str = "L"  # L, M, Q, H
    model: int = 2
    align: Align = "left"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "qr",
            "data": self.data,
            "size": self.size,
            "ec": self.ec,
            "model": self.model,
            "align": self.align,
        }


@dataclass(frozen=True, kw_only=True)
class Raster:
    """A bit image: ``GS v 0``, ``ESC *`` bands (joined), or ``GS ( L`` / ``GS 8 L`` graphics."""

    width: int
    height: int
    rows: tuple[bytes, ...]  # ``height`` rows of ceil(width / 8) bytes, MSB first, 1 = black
    source: str = "GS v 0"
    align: Align = "left"

    def pixel(self, x: int, y: int) -> bool:
        """Whether the dot at (x, y) is black."""
        return bool(self.rows[y][x >> 3] & (0x80 >> (x & 7)))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "raster",
            "width": self.width,
            "height": self.height,
            "source": self.source,
            "align": self.align,
            "data": base64.b64encode(b"".join(self.rows)).decode("ascii"),
        }


@dataclass(frozen=True, kw_only=True)
class StoredImage:
    """An image kept in the printer's memory and printed by reference (``FS p``, ``GS ( L``)."""

    ref: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "stored_image", "ref": self.ref}


@dataclass(frozen=True, kw_only=True)
class Cut:
    """A paper cut: ``GS V``, ``ESC i``, ``ESC m``."""

    partial: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"type": "cut", "partial": self.partial}


@dataclass(frozen=True, kw_only=True)
class DrawerKick:
    """A cash drawer pulse (``ESC p`` or ``DLE DC4 1``)."""

    pin: int = 2  # connector pin 2 or 5
    on_ms: int = 0
    off_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"type": "drawer", "pin": self.pin, "on_ms": self.on_ms, "off_ms": self.off_ms}


@dataclass(frozen=True, kw_only=True)
class StatusQuery:
    """A request for the printer to answer: ``DLE EOT``, ``DLE ENQ``, ``GS I``, ``GS r`` …"""

    command: str  # "DLE EOT 1"
    what: str  # "printer status"

    def to_json(self) -> dict[str, Any]:
        return {"type": "status_query", "command": self.command, "what": self.what}


@dataclass(frozen=True, kw_only=True)
class DisplayText:
    """Text sent to a customer display through the printer while ``ESC =`` deselected it."""

    text: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "display", "text": self.text}


@dataclass(frozen=True, kw_only=True)
class Unknown:
    """Commands the parser does not know (consecutive ones folded together)."""

    raw: bytes
    count: int = 1
    names: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "unknown",
            "count": self.count,
            "names": list(self.names),
            "length": len(self.raw),
            "hex": _hex(self.raw),
        }


@dataclass(frozen=True, kw_only=True)
class Truncated:
    """A command the data ended inside of; ``raw`` is everything from its start."""

    name: str
    raw: bytes

    def to_json(self) -> dict[str, Any]:
        raw = self.raw
        return {"type": "truncated", "name": self.name, "length": len(raw), "hex": _hex(raw)}


Block = (
    Line
    | Barcode
    | QRCode
    | Raster
    | StoredImage
    | Cut
    | DrawerKick
    | StatusQuery
    | DisplayText
    | Unknown
    | Truncated
)


@dataclass(frozen=True, kw_only=True)
class Document:
    """A parsed ESC/POS stream: its blocks in print order."""

    blocks: tuple[Block, ...] = ()

    @property
    def lines(self) -> list[Line]:
        return [b for b in self.blocks if isinstance(b, Line)]

    def to_json(self) -> dict[str, Any]:
        """A stable JSON-serialisable dict: ``{"format", "blocks": [{"type", …}]}``."""
        return {"format": JSON_FORMAT, "blocks": [b.to_json() for b in self.blocks]}


def _hex(raw: bytes) -> str:
    shown = raw[:_HEX_SHOWN].hex(" ")
    return shown + (" …" if len(raw) > _HEX_SHOWN else "")
