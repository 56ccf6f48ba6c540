"""The ESC/POS command table and the tokenizer that cuts a byte stream into commands and text.

The table is data: each command is its two-byte start (``ESC t``, ``GS V`` …) and a *length
rule* that reads the arguments the command itself declares (a fixed count, ``pL pH``, the
raster size of ``GS v 0``, the NUL end of ``GS k`` form 1 …). Nothing here interprets a
command; :mod:`.parser` does that. The tokenizer is total: every input becomes tokens whose
raw bytes, joined, are the input again — unknown commands become ``unknown`` tokens of two
bytes (the prefix and the byte after it) and a command cut off by the end of the data
becomes one ``truncated`` token holding the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

ESC = 0x1B
GS = 0x1D
FS = 0x1C
DLE = 0x10

PREFIX_NAMES: dict[int, str] = {ESC: "ESC", GS: "GS", FS: "FS", DLE: "DLE"}
CONTROL_NAMES: dict[int, str] = {
    0x00: "NUL",
    0x07: "BEL",
    0x09: "HT",
    0x0A: "LF",
    0x0C: "FF",
    0x0D: "CR",
    0x18: "CAN",
}

# What a length rule may answer besides the end offset of the command.
NEED_MORE = -1  # the bytes that declare the length have not all arrived yet
INVALID = -2  # the arguments make no sense: the command becomes an "unknown" token

LengthRule = Callable[[bytes, int], int]
"""Given the data and the offset just after the two-byte start, the command's end offset.

The end may lie beyond the data (the length is known, the rest has not arrived)."""

# Text is every byte from 0x20 up: it is what code pages decode. Bytes below 0x20 are either
# a command prefix or a one-byte control.
_TEXT_RUN = re.compile(rb"[^\x00-\x1f]+")


class Token(NamedTuple):
    """One piece of the stream with its exact bytes.

    ``kind``: ``text`` | ``control`` (one byte below 0x20: LF, CR, HT …) | ``command`` |
    ``unknown`` (a prefix plus one byte the table does not know) | ``truncated`` (a command the
    data ends inside of; ``raw`` holds all that is left). ``name`` is the command as a manual
    writes it (``GS v 0``, ``GS ( k``, ``ESC t``), the control's name, or ``""`` for text.
    A named tuple rather than a dataclass: a megabyte of stream can be a million tokens.
    """

    kind: str
    name: str
    raw: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """A command's name and how long it is; ``family`` commands are named by one more byte."""

    name: str
    rule: LengthRule
    family: bool = False


def fixed(n: int) -> LengthRule:
    """A command with exactly ``n`` argument bytes."""

    def rule(data: bytes, p: int) -> int:
        return p + n

    return rule


def nul_terminated(max_data: int, *, skip: int = 0) -> LengthRule:
    """Arguments that end with NUL, at most ``max_data`` bytes before it (after ``skip`` bytes).

    Without a NUL in reach the command ends after ``max_data`` bytes, as printers go back to
    plain data there; either way the length never depends on how the data was chunked.
    """

    def rule(data: bytes, p: int) -> int:
        start = p + skip
        nul = data.find(b"\x00", start, start + max_data + 1)
        if nul >= 0:
            return nul + 1
        if len(data) >= start + max_data + 1:
            return start + max_data
        return NEED_MORE

    return rule


def _paren(data: bytes, p: int) -> int:
    # ESC ( / GS ( / FS ( fn pL pH d1..dk: the classic "function with length" form.
    if p + 3 > len(data):
        return NEED_MORE
    return p + 3 + data[p + 1] + 256 * data[p + 2]


def _gs_8(data: bytes, p: int) -> int:
    # GS 8 L p1 p2 p3 p4 …: the graphics form with a 32-bit length.
    if p + 5 > len(data):
        return NEED_MORE
    if data[p] not in b"LA":
        return INVALID
    return p + 5 + int.from_bytes(data[p + 1 : p + 5], "little")


def _gs_v(data: bytes, p: int) -> int:
    # GS v 0 m xL xH yL yH d1..dk, k = (xL + xH*256) * (yL + yH*256)
    if p >= len(data):
        return NEED_MORE
    if data[p] != 0x30:
        return INVALID
    if p + 6 > len(data):
        return NEED_MORE
    x = data[p + 2] + 256 * data[p + 3]
    y = data[p + 4] + 256 * data[p + 5]
    return p + 6 + x * y


def _esc_star(data: bytes, p: int) -> int:
    # ESC * m nL nH d1..dk: k = n for 8-dot modes (0, 1), 3n for 24-dot modes (32, 33)
    if p + 3 > len(data):
        return NEED_MORE
    n = data[p + 1] + 256 * data[p + 2]
    return p + 3 + (3 * n if data[p] & 0x20 else n)


def _gs_star(data: bytes, p: int) -> int:
    # GS * x y d1..d(x*y*8): define a downloaded bit image
    if p + 2 > len(data):
        return NEED_MORE
    return p + 2 + data[p] * data[p + 1] * 8


def _gs_cut(data: bytes, p: int) -> int:
    # GS V m (m = 0, 1, 48, 49) or GS V m n (m = 65, 66, 97, 98, 103, 104)
    if p >= len(data):
        return NEED_MORE
    m = data[p]
    if m in (0, 1, 48, 49):
        return p + 1
    if m in (65, 66, 97, 98, 103, 104):
        return p + 2
    return INVALID


def _gs_k(data: bytes, p: int) -> int:
    # GS k m d1..dk NUL (m = 0..6) or GS k m n d1..dn (m = 65..79)
    if p >= len(data):
        return NEED_MORE
    m = data[p]
    if m <= 6:
        return _BARCODE_FORM_A(data, p)
    if 65 <= m <= 79:
        if p + 2 > len(data):
            return NEED_MORE
        return p + 2 + data[p + 1]
    return INVALID


_BARCODE_FORM_A = nul_terminated(255, skip=1)


def _esc_c(data: bytes, p: int) -> int:
    # ESC c 0..5 n: paper sensors, panel buttons, paper type
    if p >= len(data):
        return NEED_MORE
    return p + 2 if data[p] in b"012345" else INVALID


def _esc_amp(data: bytes, p: int) -> int:
    # ESC & y c1 c2 [x d1..d(y*x)] for each character c1..c2: user-defined characters
    if p + 3 > len(data):
        return NEED_MORE
    y, c1, c2 = data[p], data[p + 1], data[p + 2]
    q = p + 3
    for _ in range(c1, c2 + 1):
        if q >= len(data):
            return NEED_MORE
        q += 1 + y * data[q]
    return q


def _fs_q(data: bytes, p: int) -> int:
    # FS q n [xL xH yL yH d1..dk] * n, k = (xL + xH*256) * (yL + yH*256) * 8: NV bit images
    if p >= len(data):
        return NEED_MORE
    q = p + 1
    for _ in range(data[p]):
        if q + 4 > len(data):
            return NEED_MORE
        x = data[q] + 256 * data[q + 1]
        y = data[q + 2] + 256 * data[q + 3]
        q += 4 + x * y * 8
    return q


def _fs_g(data: bytes, p: int) -> int:
    # FS g 1 m a1 a2 a3 a4 nL nH d1..dk (write user NV memory) / FS g 2 m a1..a4 nL nH (read)
    if p >= len(data):
        return NEED_MORE
    if data[p] not in b"12":
        return INVALID
    if p + 8 > len(data):
        return NEED_MORE
    if data[p] == 0x32:
        return p + 8
    return p + 8 + data[p + 6] + 256 * data[p + 7]


def _dle_eot(data: bytes, p: int) -> int:
    # DLE EOT n, and DLE EOT n a for n = 7, 8 (ink / peeler status on some models)
    if p >= len(data):
        return NEED_MORE
    return p + 2 if data[p] in (7, 8) else p + 1


def _dle_dc4(data: bytes, p: int) -> int:
    # DLE DC4 fn …: 1 m t (drawer pulse), 2 1 8 (power off), 7 m, 8 d1..d7 (clear buffer)
    if p >= len(data):
        return NEED_MORE
    extra = {1: 2, 2: 2, 3: 2, 7: 1, 8: 7}.get(data[p])
    return INVALID if extra is None else p + 1 + extra


def _specs() -> dict[int, CommandSpec]:
    """The table: (prefix, second byte) → spec. Epson TM first; other printers' extras marked."""
    f0, f1, f2, f3 = fixed(0), fixed(1), fixed(2), fixed(3)
    rows: list[tuple[int, bytes, LengthRule, bool]] = [
        # ESC: print modes, layout, code pages, status, drawer, old cuts
        (ESC, b" ", f1, False),  # right-side character spacing
        (ESC, b"!", f1, False),  # print mode (font, bold, double, underline)
        (ESC, b"$", f2, False),  # absolute position
        (ESC, b"%", f1, False),  # user-defined character set on/off
        (ESC, b"&", _esc_amp, False),  # define user-defined characters
        (ESC, b"(", _paren, True),  # ESC ( A beeper, ESC ( Y …
        (ESC, b"*", _esc_star, False),  # bit image (column format)
        (ESC, b"-", f1, False),  # underline
        (ESC, b"2", f0, False),  # default line spacing
        (ESC, b"3", f1, False),  # line spacing
        (ESC, b"7", f3, False),  # heating parameters (Xprinter and other thermal clones)
        (ESC, b"<", f0, False),  # return home
        (ESC, b"=", f1, False),  # select peripheral device (printer / customer display)
        (ESC, b"?", f1, False),  # cancel user-defined character
        (ESC, b"@", f0, False),  # initialize
        (ESC, b"B", f2, False),  # beeper n t (Xprinter, Atol, Shtrih models)
        (ESC, b"D", nul_terminated(32), False),  # horizontal tab positions
        (ESC, b"E", f1, False),  # emphasized (bold)
        (ESC, b"G", f1, False),  # double-strike
        (ESC, b"J", f1, False),  # print and feed n dots
        (ESC, b"L", f0, False),  # page mode
        (ESC, b"M", f1, False),  # character font
        (ESC, b"R", f1, False),  # international character set
        (ESC, b"S", f0, False),  # standard mode
        (ESC, b"T", f1, False),  # print direction in page mode
        (ESC, b"U", f1, False),  # unidirectional printing
        (ESC, b"V", f1, False),  # 90° rotation
        (ESC, b"W", fixed(8), False),  # print area in page mode
        (ESC, b"\\", f2, False),  # relative position
        (ESC, b"a", f1, False),  # justification
        (ESC, b"c", _esc_c, False),  # ESC c 3/4/5 n: sensors, panel buttons
        (ESC, b"d", f1, False),  # print and feed n lines
        (ESC, b"e", f1, False),  # print and reverse feed n lines
        (ESC, b"i", f0, False),  # partial cut (one point left)
        (ESC, b"m", f0, False),  # partial cut (three points left)
        (ESC, b"p", f3, False),  # drawer kick-out pulse m t1 t2
        (ESC, b"r", f1, False),  # print colour
        (ESC, b"t", f1, False),  # character code table
        (ESC, b"u", f1, False),  # transmit peripheral device status
        (ESC, b"v", f0, False),  # transmit paper sensor status
        (ESC, b"{", f1, False),  # upside-down printing
        (ESC, b"\x0c", f0, False),  # print data in page mode
        # GS: sizes, barcodes, images, cuts, status
        (GS, b"!", f1, False),  # character size
        (GS, b"$", f2, False),  # absolute vertical position in page mode
        (GS, b"(", _paren, True),  # GS ( k 2D codes, GS ( L graphics, GS ( A/C/D/E/H/K/M/N …
        (GS, b"*", _gs_star, False),  # define downloaded bit image
        (GS, b"/", f1, False),  # print downloaded bit image
        (GS, b"8", _gs_8, True),  # GS 8 L graphics with a 32-bit length
        (GS, b":", f0, False),  # start/end macro definition
        (GS, b"B", f1, False),  # white/black reverse
        (GS, b"H", f1, False),  # HRI position
        (GS, b"I", f1, False),  # transmit printer ID
        (GS, b"L", f2, False),  # left margin
        (GS, b"P", f2, False),  # motion units
        (GS, b"T", f1, False),  # print position to line start
        (GS, b"V", _gs_cut, False),  # cut
        (GS, b"W", f2, False),  # print area width
        (GS, b"\\", f2, False),  # relative vertical position in page mode
        (GS, b"^", f3, False),  # execute macro
        (GS, b"a", f1, False),  # automatic status back
        (GS, b"b", f1, False),  # smoothing
        (GS, b"c", f0, False),  # print counter
        (GS, b"f", f1, False),  # HRI font
        (GS, b"g", fixed(4), False),  # maintenance counter g 0 m nL nH / g 2 m nL nH
        (GS, b"h", f1, False),  # barcode height
        (GS, b"j", f1, False),  # automatic status back for ink
        (GS, b"k", _gs_k, False),  # print barcode
        (GS, b"r", f1, False),  # transmit status
        (GS, b"v", _gs_v, True),  # GS v 0 raster bit image
        (GS, b"w", f1, False),  # barcode module width
        (GS, b"z", f3, False),  # online recovery wait time
        # FS: Kanji / double-byte mode, NV images and memory
        (FS, b"!", f1, False),  # Kanji print mode
        (FS, b"&", f0, False),  # Kanji mode on
        (FS, b"(", _paren, True),  # FS ( A/C/E/L …
        (FS, b"-", f1, False),  # Kanji underline
        (FS, b".", f0, False),  # Kanji mode off
        (FS, b"2", fixed(74), False),  # define user Kanji character (24x24)
        (FS, b"?", f2, False),  # cancel user Kanji character
        (FS, b"C", f1, False),  # Kanji code system
        (FS, b"S", f2, False),  # Kanji spacing
        (FS, b"W", f1, False),  # Kanji quadruple size
        (FS, b"g", _fs_g, False),  # user NV memory
        (FS, b"p", f2, False),  # print NV bit image n m
        (FS, b"q", _fs_q, False),  # define NV bit images
        # DLE: real-time commands
        (DLE, b"\x04", _dle_eot, False),  # DLE EOT n: real-time status
        (DLE, b"\x05", f1, False),  # DLE ENQ n: real-time request
        (DLE, b"\x14", _dle_dc4, False),  # DLE DC4 fn …: real-time drawer pulse, power off
    ]
    table: dict[int, CommandSpec] = {}
    for prefix, second, rule, family in rows:
        name = f"{PREFIX_NAMES[prefix]} {byte_label(second[0])}"
        table[prefix << 8 | second[0]] = CommandSpec(name=name, rule=rule, family=family)
    return table


def byte_label(b: int) -> str:
    """How a manual writes an argument byte: the character when printable ASCII, else its name."""
    if 0x21 <= b <= 0x7E:
        return chr(b)
    return CONTROL_NAMES.get(b) or {0x04: "EOT", 0x05: "ENQ", 0x14: "DC4"}.get(b) or f"0x{b:02X}"


COMMANDS: dict[int, CommandSpec] = _specs()
_CONTROL_LABELS = [CONTROL_NAMES.get(b) or f"0x{b:02X}" for b in range(0x20)]


def scan(data: bytes, pos: int) -> tuple[str, str, int]:
    """Classify the token starting at ``pos``: ``(kind, name, end)``.

    ``end`` is :data:`NEED_MORE` when the bytes declaring the command's length have not all
    arrived, and may exceed ``len(data)`` when the length is known but the data is not all
    there; both mean the token is not complete. ``kind`` is never ``truncated`` here.
    """
    b = data[pos]
    if b >= 0x20:
        match = _TEXT_RUN.match(data, pos)
        assert match is not None  # data[pos] itself matches
        return "text", "", match.end()
    prefix = PREFIX_NAMES.get(b)
    if prefix is None:
        return "control", CONTROL_NAMES.get(b) or f"0x{b:02X}", pos + 1
    if pos + 1 >= len(data):
        return "command", prefix, NEED_MORE
    second = data[pos + 1]
    spec = COMMANDS.get(b << 8 | second)
    if spec is None:
        return "unknown", f"{prefix} {byte_label(second)}", pos + 2
    end = spec.rule(data, pos + 2)
    if end == INVALID:
        return "unknown", spec.name, pos + 2
    if spec.family and pos + 2 < len(data):
        return "command", f"{spec.name} {byte_label(data[pos + 2])}", end
    return "command", spec.name, end


def iter_tokens(data: bytes | bytearray | memoryview) -> Iterator[Token]:
    """The tokens of ``data`` in order; their raw bytes joined are ``data`` exactly."""
    buf = bytes(data)
    pos, size = 0, len(buf)
    while pos < size:
        b = buf[pos]
        if b < 0x20 and b not in PREFIX_NAMES:  # the common one-byte controls, inline for speed
            yield Token("control", _CONTROL_LABELS[b], buf[pos : pos + 1], pos)
            pos += 1
            continue
        kind, name, end = scan(buf, pos)
        if end == NEED_MORE or end > size:
            yield Token("truncated", name, buf[pos:], pos)
            return
        yield Token(kind, name, buf[pos:end], pos)
        pos = end


def tokenize(data: bytes | bytearray | memoryview) -> list[Token]:
    """All tokens of ``data`` (see :func:`iter_tokens`)."""
    return list(iter_tokens(data))
