"""ESC/POS bytes → :class:`~.model.Document`: what the printer would print, block by block.

The parser walks the tokens of :mod:`.commands` with the printer's state (style, alignment,
code page, Kanji mode, barcode settings, stored 2D-code data) and never raises on any input:
unknown commands and a command cut short by the end of the data become blocks of their own.
Where the real printer would drop something (``ESC @`` clears an unprinted line) the parser
keeps it, since the point of decoding is to see everything the POS sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .codepages import checked_codec, codepage_table, decode
from .commands import Token, iter_tokens
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
    Run,
    StatusQuery,
    StoredImage,
    Style,
    Truncated,
    Unknown,
)

logger = logging.getLogger(__name__)

# Argument bytes count both as numbers and as ASCII digits ("0" = 48), as Epson allows.
_ALIGN: dict[int, Align] = {0: "left", 1: "center", 2: "right"}
_ALIGN.update({n + 48: a for n, a in list(_ALIGN.items())})
_HRI = {0: "none", 1: "above", 2: "below", 3: "both"}
_HRI.update({n + 48: h for n, h in list(_HRI.items())})
_FONTS = {0: "A", 48: "A", 1: "B", 49: "B", 2: "C", 50: "C"}
_UNDERLINE = {0: 0, 48: 0, 1: 1, 49: 1, 2: 2, 50: 2}
_SYMBOLOGY = {
    0: "UPC-A",
    1: "UPC-E",
    2: "EAN13",
    3: "EAN8",
    4: "CODE39",
    5: "ITF",
    6: "CODABAR",
    72: "CODE93",
    73: "CODE128",
    74: "GS1-128",
    75: "GS1 DATABAR OMNI",
    76: "GS1 DATABAR TRUNCATED",
    77: "GS1 DATABAR LIMITED",
    78: "GS1 DATABAR EXPANDED",
    79: "CODE128 AUTO",
}
_SYMBOLOGY.update({65 + m: _SYMBOLOGY[m] for m in range(7)})
_2D_CODES = {48: "PDF417", 50: "MAXICODE", 51: "GS1 DATABAR", 52: "COMPOSITE", 53: "AZTEC"}
_2D_CODES[54] = "DATAMATRIX"
_QR_EC = {48: "L", 49: "M", 50: "Q", 51: "H"}
_STATUS = {
    "DLE EOT": {1: "printer status", 2: "offline cause", 3: "error cause", 4: "paper sensor"},
    "GS I": {1: "model ID", 2: "type ID", 3: "firmware version", 65: "firmware version"},
    "GS r": {1: "paper sensor status", 2: "drawer status", 4: "ink status"},
}
_STATUS["DLE EOT"].update({7: "ink status", 8: "peeler status"})
_STATUS["GS I"].update({66: "maker name", 67: "model name", 68: "serial number", 69: "fonts"})
_MAX_BAND_MERGE = 8192  # rows: ESC * bands beyond this start a new picture
_MAX_UNKNOWN_NAMES = 16  # names kept in a folded Unknown block (its raw bytes are all kept)
# Character widths in dots (Epson TM at 180 dpi, where a motion unit is a dot): ESC $, ESC \,
# GS L and GS W give dots, the text rendering wants character columns.
_FONT_DOTS = {"A": 12, "B": 9, "C": 9}


def parse(
    data: bytes | bytearray | memoryview,
    *,
    codepage: str = "cp437",
    codepages: Mapping[int, str] | None = None,
    kanji_codec: str = "gb18030",
) -> Document:
    """Parse an ESC/POS stream; never raises on any ``data``.

    ``codepage`` decodes text until the first ``ESC t`` (and again after ``ESC @``);
    ``codepages`` overrides entries of the Epson ``ESC t n`` table (printers differ);
    ``kanji_codec`` decodes text between ``FS &`` and ``FS .``. A codec Python does not
    know raises :class:`~tillgate.core.errors.ConfigError`.
    """
    parser = _Parser(
        codepage=checked_codec(codepage, what="codepage"),
        table=codepage_table(codepages),
        kanji_codec=checked_codec(kanji_codec, what="kanji_codec"),
    )
    for token in iter_tokens(data):
        parser.feed(token)
    return parser.finish()


class _Parser:
    """The printer's state while walking the tokens."""

    def __init__(self, *, codepage: str, table: dict[int, str], kanji_codec: str) -> None:
        self._initial_codepage = codepage
        self._table = table
        self._kanji_codec = kanji_codec
        self.blocks: list[Block] = []
        self._runs: list[_RunBuilder] = []
        self._unknowns: _UnknownBuilder | None = None  # unknown commands being folded together
        self._line_align: Align = "left"
        self._deferred: list[Block] = []  # non-printing blocks met mid-line, placed after it
        self._display = bytearray()  # bytes sent while ESC = deselected the printer
        # The last block is an ESC * picture that more bands may extend; its rows are kept
        # here and written into the block when it closes (linear time for many bands).
        self._band: _BandBuilder | None = None
        self._handlers: dict[str, Callable[[bytes], None]] = self._make_handlers()
        self._reset()

    def _reset(self) -> None:
        self._style = Style()
        self._align: Align = "left"
        self._codepage = self._initial_codepage
        self._kanji = False
        self._printer_enabled = True
        self._tabs: list[int] = list(range(8, 256, 8))
        self._column = 0  # where the next character prints, in columns from the area's start
        self._position: int | None = None  # a column ESC $ / ESC \ set for the next text
        self._position_dots: int | None = None  # the same, in dots (ESC \ adds to it)
        self._spacing = 0  # right-side character spacing (ESC SP), dots
        self._margin_dots = 0  # GS L
        self._area_dots: int | None = None  # GS W
        self._line_margin = 0
        self._line_width: int | None = None
        self._hri = "none"
        self._bar_height = 162
        self._bar_module = 3
        self._qr_size = 3
        self._qr_ec = "L"
        self._qr_model = 2
        self._stored_2d: dict[int, bytes] = {}
        self._graphics: Raster | None = None

    # -- walking ---------------------------------------------------------------------------

    def feed(self, token: Token) -> None:
        if token.kind != "unknown" and self._unknowns is not None:
            self._close_unknowns()
        if not self._printer_enabled and token.name != "ESC =" and not token.name.startswith("DLE"):
            self._display += token.raw
            return
        if token.kind == "text":
            self._text(token.raw)
        elif token.kind == "unknown":
            self._unknown(token)
        elif token.kind == "truncated":
            self._place(Truncated(name=token.name, raw=token.raw))
        else:
            handler = self._handlers.get(token.name)
            if handler is not None:
                handler(token.raw)

    def finish(self) -> Document:
        self._close_unknowns()
        self._close_band()
        self._end_display()
        if self._runs:
            self._end_line()
        self.blocks.extend(self._deferred)
        self._deferred.clear()
        return Document(blocks=tuple(self.blocks))

    # -- lines and blocks ------------------------------------------------------------------

    def _text(self, raw: bytes) -> None:
        codec = self._kanji_codec if self._kanji else self._codepage
        self._add_text(decode(raw, codec), codec)

    def _add_text(self, text: str, codec: str) -> None:
        if not self._runs:
            # ESC a, GS L and GS W count only at the start of a line
            self._line_align = self._align
            self._line_margin = self._margin_dots // self._char_dots()
            self._line_width = None
            if self._area_dots:  # GS W 0 (the printer's one-character minimum) reads as unset
                self._line_width = max(1, self._area_dots // self._char_dots())
        self._close_band()
        position, self._position, self._position_dots = self._position, None, None
        if position is not None:
            self._column = position
        self._column += len(text) * self._style.width
        last = self._runs[-1] if self._runs else None
        if (
            position is None
            and last is not None
            and last.style == self._style
            and last.codepage == codec
        ):
            last.parts.append(text)  # joined once at the end of the line: linear time
        else:
            builder = _RunBuilder(style=self._style, codepage=codec, parts=[text], column=position)
            self._runs.append(builder)

    def _char_dots(self) -> int:
        """The width of one character of the current font at normal size, in dots."""
        return _FONT_DOTS.get(self._style.font, 12) + self._spacing

    def _move(self, dots: int, *, relative: bool) -> None:
        """ESC $ (absolute) or ESC \\ (relative, signed) print position, as a column."""
        width = self._char_dots()
        if relative:
            dots = dots - 65536 if dots >= 32768 else dots
            base = self._position_dots
            if base is None:
                base = self._column * width
            dots = max(0, base + dots)
        self._position_dots = dots
        # A field that starts mid-column (receiptline centres in half characters) shows
        # in the column its first dot falls in.
        self._position = dots // width

    def _end_line(self) -> None:
        if not self._runs and self._band is not None:
            return  # this LF prints the ESC * band before it, not a blank line
        align = self._line_align if self._runs else self._align
        runs = tuple(
            Run(text="".join(r.parts), style=r.style, codepage=r.codepage, column=r.column)
            for r in self._runs
        )
        margin, width = (self._line_margin, self._line_width) if self._runs else (0, None)
        self.blocks.append(Line(align=align, runs=runs, margin=margin, width=width))
        self._runs.clear()
        self._column = 0
        self._position = self._position_dots = None
        self._close_band()
        self.blocks.extend(self._deferred)
        self._deferred.clear()

    def _end_line_if_any(self) -> None:
        if self._runs:
            self._end_line()

    def _print_block(self, block: Block) -> None:
        """A barcode, picture or cut: printed on a line of its own."""
        self._end_line_if_any()
        self.blocks.append(block)
        self._close_band()

    def _place(self, block: Block) -> None:
        """A block that prints nothing: after the current line if one is open."""
        target = self._deferred if self._runs else self.blocks
        target.append(block)
        if target is self.blocks:
            self._close_band()

    def _unknown(self, token: Token) -> None:
        if self._unknowns is None:
            target = self._deferred if self._runs else self.blocks
            self._unknowns = _UnknownBuilder(target=target, index=len(target))
            self._place(Unknown(raw=b""))  # a placeholder, filled in by _close_unknowns
        self._unknowns.add(token)

    def _close_unknowns(self) -> None:
        builder, self._unknowns = self._unknowns, None
        if builder is not None:
            builder.target[builder.index] = builder.build()

    def _end_display(self) -> None:
        if self._display:
            text = decode(bytes(self._display), self._codepage)
            self._display.clear()
            self._place(DisplayText(text=text))

    # -- handlers --------------------------------------------------------------------------

    def _make_handlers(self) -> dict[str, Callable[[bytes], None]]:
        def arg(fn: Callable[[int], None]) -> Callable[[bytes], None]:
            return lambda raw: fn(raw[2])

        def style(**fields: Callable[[int], Any]) -> Callable[[bytes], None]:
            def handler(raw: bytes) -> None:
                n = raw[2]
                self._style = replace(self._style, **{k: f(n) for k, f in fields.items()})

            return handler

        return {
            "LF": lambda raw: self._end_line(),
            "FF": lambda raw: self._end_line_if_any(),
            "HT": lambda raw: self._tab(),
            "ESC @": lambda raw: self._init(),
            "ESC !": style(
                bold=lambda n: bool(n & 0x08),
                underline=lambda n: 1 if n & 0x80 else 0,
                width=lambda n: 2 if n & 0x20 else 1,
                height=lambda n: 2 if n & 0x10 else 1,
                font=lambda n: "B" if n & 0x01 else "A",
            ),
            "GS !": style(width=lambda n: (n >> 4 & 7) + 1, height=lambda n: (n & 7) + 1),
            "ESC E": style(bold=lambda n: bool(n & 1)),
            "ESC -": style(underline=lambda n: _UNDERLINE.get(n, self._style.underline)),
            "ESC M": style(font=lambda n: _FONTS.get(n, self._style.font)),
            "GS B": style(invert=lambda n: bool(n & 1)),
            "ESC a": arg(lambda n: setattr(self, "_align", _ALIGN.get(n, self._align))),
            "ESC $": lambda raw: self._move(raw[2] + 256 * raw[3], relative=False),
            "ESC \\": lambda raw: self._move(raw[2] + 256 * raw[3], relative=True),
            "ESC 0x20": arg(lambda n: setattr(self, "_spacing", n)),
            "GS L": lambda raw: setattr(self, "_margin_dots", raw[2] + 256 * raw[3]),
            "GS W": lambda raw: setattr(self, "_area_dots", raw[2] + 256 * raw[3]),
            "ESC t": arg(self._select_codepage),
            "FS &": lambda raw: setattr(self, "_kanji", True),
            "FS .": lambda raw: setattr(self, "_kanji", False),
            "ESC =": arg(self._select_device),
            "ESC D": lambda raw: self._set_tabs(raw[2:]),
            "ESC d": arg(self._feed_lines),
            "ESC J": lambda raw: self._end_line_if_any(),
            "ESC e": lambda raw: self._end_line_if_any(),
            "ESC \x0c": lambda raw: self._end_line_if_any(),
            "GS H": arg(lambda n: setattr(self, "_hri", _HRI.get(n, self._hri))),
            "GS h": arg(lambda n: setattr(self, "_bar_height", n)),
            "GS w": arg(lambda n: setattr(self, "_bar_module", n)),
            "GS k": self._barcode,
            "GS ( k": self._code_2d,
            "GS v 0": self._raster,
            "ESC *": self._bit_image,
            "GS ( L": lambda raw: self._graphics_cmd(raw, 5),
            "GS 8 L": lambda raw: self._graphics_cmd(raw, 7),
            "FS p": lambda raw: self._print_block(StoredImage(ref=f"FS p {raw[2]}")),
            "GS /": lambda raw: self._print_block(StoredImage(ref="GS * downloaded")),
            "GS V": lambda raw: self._print_block(Cut(partial=raw[2] in (1, 49, 66, 98, 104))),
            "ESC i": lambda raw: self._print_block(Cut(partial=True)),
            "ESC m": lambda raw: self._print_block(Cut(partial=True)),
            "ESC p": self._drawer,
            "DLE DC4": self._realtime_dc4,
            "DLE EOT": lambda raw: self._status("DLE EOT", raw[2]),
            "DLE ENQ": lambda raw: self._status("DLE ENQ", raw[2], what="real-time request"),
            "GS I": lambda raw: self._status("GS I", raw[2]),
            "GS r": lambda raw: self._status("GS r", raw[2]),
            "ESC u": lambda raw: self._status("ESC u", raw[2], what="drawer status"),
            "ESC v": lambda raw: self._place(
                StatusQuery(command="ESC v", what="paper sensor status")
            ),
        }

    def _init(self) -> None:
        self._end_line_if_any()
        self._reset()

    def _select_codepage(self, n: int) -> None:
        codec = self._table.get(n)
        if codec is None:
            logger.debug("ESC t %s: no codec known, keeping %s", n, self._codepage)
            return
        self._codepage = codec

    def _select_device(self, n: int) -> None:
        enabled = bool(n & 1)
        if enabled and not self._printer_enabled:
            self._end_display()
        self._printer_enabled = enabled

    def _set_tabs(self, args: bytes) -> None:
        stops = [b for b in args if b]
        self._tabs = [b for i, b in enumerate(stops) if i == 0 or b > stops[i - 1]]

    def _tab(self) -> None:
        stop = next((t for t in self._tabs if t > self._column), None)
        if stop is None:
            return
        codec = self._kanji_codec if self._kanji else self._codepage
        self._add_text(" " * max(1, (stop - self._column) // self._style.width), codec)
        self._column = stop

    def _feed_lines(self, n: int) -> None:
        if n == 0:
            self._end_line_if_any()
        for _ in range(n):
            self._end_line()

    def _barcode(self, raw: bytes) -> None:
        m = raw[2]
        body = (raw[3:-1] if raw.endswith(b"\x00") else raw[3:]) if m <= 6 else raw[4:]
        symbology = _SYMBOLOGY.get(m, f"m={m}")
        text = body.decode("latin-1")
        if symbology.startswith("CODE128") or symbology == "GS1-128":
            text = _code128_text(body)
        self._print_block(
            Barcode(
                symbology=symbology,
                data=text,
                hri=self._hri,
                height=self._bar_height,
                module=self._bar_module,
                align=self._align,
            )
        )

    def _code_2d(self, raw: bytes) -> None:
        # GS ( k pL pH cn fn [parameters]
        if len(raw) < 7:
            return
        cn, fn, params = raw[5], raw[6], raw[7:]
        if fn == 80 and params:  # store the data (after m = 48)
            self._stored_2d[cn] = params[1:]
        elif fn == 81:
            data = self._stored_2d.get(cn, b"").decode("utf-8", errors="replace")
            if cn == 49:
                qr = QRCode(
                    data=data,
                    size=self._qr_size,
                    ec=self._qr_ec,
                    model=self._qr_model,
                    align=self._align,
                )
                self._print_block(qr)
            else:
                name = _2D_CODES.get(cn, f"2D cn={cn}")
                self._print_block(Barcode(symbology=name, data=data, align=self._align))
        elif cn == 49 and params:
            if fn == 65:
                self._qr_model = {49: 1, 50: 2, 51: 3}.get(params[0], self._qr_model)
            elif fn == 67:
                self._qr_size = params[0]
            elif fn == 69:
                self._qr_ec = _QR_EC.get(params[0], self._qr_ec)

    def _raster(self, raw: bytes) -> None:
        # GS v 0 m xL xH yL yH d1..dk
        stride = raw[4] + 256 * raw[5]
        height = raw[6] + 256 * raw[7]
        self._print_block(_raster(raw[8:], stride * 8, height, stride, "GS v 0", self._align))

    def _bit_image(self, raw: bytes) -> None:
        # ESC * m nL nH: n columns of 1 (8-dot) or 3 (24-dot) bytes, top bit first
        depth = 3 if raw[2] & 0x20 else 1
        width = raw[3] + 256 * raw[4]
        data = raw[5:]
        stride = (width + 7) // 8
        rows = [bytearray(stride) for _ in range(depth * 8)]
        for x in range(width):
            mask = 0x80 >> (x & 7)
            for k in range(depth):
                byte = data[x * depth + k]
                if byte:
                    for bit in range(8):
                        if byte & (0x80 >> bit):
                            rows[k * 8 + bit][x >> 3] |= mask
        band = self._band
        if band is None or self._runs or band.width != width or len(band.rows) >= _MAX_BAND_MERGE:
            self._print_block(Raster(width=width, height=0, rows=(), source="ESC *"))
            band = _BandBuilder(width=width, align=self._align, index=len(self.blocks) - 1)
            self._band = band
        band.rows.extend(bytes(r) for r in rows)

    def _close_band(self) -> None:
        band, self._band = self._band, None
        if band is not None:
            rows = tuple(band.rows)
            self.blocks[band.index] = Raster(
                width=band.width, height=len(rows), rows=rows, source="ESC *", align=band.align
            )

    def _graphics_cmd(self, raw: bytes, header: int) -> None:
        # GS ( L / GS 8 L: m fn …; fn 112 stores a raster, fn 50 prints it, fn 69/85 print stored
        params = raw[header:]
        if len(params) < 2:
            return
        fn = params[1]
        if fn in (112, 113) and len(params) >= 10:
            width = params[6] + 256 * params[7]
            height = params[8] + 256 * params[9]
            stride = (width + 7) // 8
            if fn == 112:  # raster format; 113 (column format) is kept but not decoded
                self._graphics = _raster(params[10:], width, height, stride, "GS ( L", "left")
        elif fn in (2, 50) and self._graphics is not None:
            self._print_block(replace(self._graphics, align=self._align))
        elif fn in (69, 85) and len(params) >= 4:
            key = params[2:4].decode("latin-1")
            self._print_block(StoredImage(ref=f"GS ( L key {key!r}"))

    def _drawer(self, raw: bytes) -> None:
        pin = 2 if raw[2] in (0, 48) else 5
        self._place(DrawerKick(pin=pin, on_ms=raw[3] * 2, off_ms=raw[4] * 2))

    def _realtime_dc4(self, raw: bytes) -> None:
        if raw[2] == 1:  # DLE DC4 1 m t: pulse t x 100 ms on pin m
            pin = 2 if raw[3] == 0 else 5
            self._place(DrawerKick(pin=pin, on_ms=raw[4] * 100, off_ms=raw[4] * 100))

    def _status(self, command: str, n: int, *, what: str | None = None) -> None:
        if what is None:
            what = _STATUS.get(command, {}).get(n if n < 48 or n > 52 else n - 48, "status")
        self._place(StatusQuery(command=f"{command} {n}", what=what))


def _raster(data: bytes, width: int, height: int, stride: int, source: str, align: Align) -> Raster:
    # GS ( L may declare more pixels than its length carries: keep the rows that came
    # (the last one padded) rather than invent blank ones.
    if stride == 0:
        return Raster(width=0, height=0, rows=(), source=source, align=align)
    height = min(height, -(-len(data) // stride))
    rows = tuple(data[y * stride : (y + 1) * stride].ljust(stride, b"\0") for y in range(height))
    return Raster(width=width, height=height, rows=rows, source=source, align=align)


def _code128_text(body: bytes) -> str:
    """The text a CODE128 barcode shows: ``{A``/``{B``/``{C`` switch sets, ``{{`` is ``{``."""
    out: list[str] = []
    code_c = False
    i = 0
    while i < len(body):
        b = body[i]
        if b == 0x7B and i + 1 < len(body):  # "{"
            nxt = body[i + 1]
            i += 2
            if nxt == 0x7B:
                out.append("{")
            elif nxt in b"ABC":
                code_c = nxt == 0x43
            continue  # FNC1..4 and SHIFT show nothing
        out.append(f"{b:02d}" if code_c and b < 100 else chr(b))
        i += 1
    return "".join(out)


@dataclass
class _RunBuilder:
    """A run of the open line; its text is kept in parts and joined once."""

    style: Style
    codepage: str
    parts: list[str]
    column: int | None = None


@dataclass
class _UnknownBuilder:
    """Consecutive unknown commands, folded into one :class:`Unknown` block."""

    target: list[Block]
    index: int
    raws: list[bytes] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, token: Token) -> None:
        self.raws.append(token.raw)
        if len(self.names) < _MAX_UNKNOWN_NAMES:
            self.names.append(token.name)
        self.count += 1

    def build(self) -> Unknown:
        return Unknown(raw=b"".join(self.raws), count=self.count, names=tuple(self.names))


@dataclass
class _BandBuilder:
    """The ESC * picture being printed band by band, at ``blocks[index]``."""

    width: int
    align: Align
    index: int
    rows: list[bytes] = field(default_factory=list)
