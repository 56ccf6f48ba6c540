"""Where the text of a line lands: on paper, and in the plain-text rendering.

On paper (:func:`place`) a line is a row of character columns across the print area. Text
flows from where the last text ended; ``ESC $`` / ``ESC \\`` (already turned into a
:attr:`~.model.Run.column` by the parser) move the print position, backwards too (receiptline
draws a table's vertical rules first, then goes back to fill the cells); text that would run
past the print area wraps. Two rules differ from the printer on purpose, so that no text is
lost and the receipt templates can still tell fields apart:

- text never overprints text: a run placed over ink already on the row moves to just after it;
- a field placed one blank column after the text before it gets a second blank column (the
  templates split a name from its amount at two or more spaces).

In the text rendering (:func:`text_rows`) double- and quadruple-size letters are plain
letters, one column each. A piece of text that continues the one before it on paper follows
it directly; a piece the POS positioned keeps its paper column, and a scaled one sits in its
paper span the way it sits between its neighbours: flush right when it ends at the area's
right edge, centred when its gaps on both sides are equal, else at its start.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from .model import Line, Style

# Characters below U+1100 are never East Asian wide: text without any skips the lookups.
_MAYBE_WIDE = re.compile("[\u1100-\U0010ffff]")


def char_cells(ch: str) -> int:
    """How many columns a character takes at normal size (2 for CJK wide characters)."""
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


@dataclass(frozen=True, slots=True)
class Piece:
    """Text printed in one go on one row: from ``column`` to ``end`` (paper columns)."""

    row: int
    column: int
    end: int
    text: str
    style: Style

    def chars(self, area: int) -> Iterator[tuple[int, int, str]]:
        """Each character as (first column, columns taken, character)."""
        at = self.column
        for ch in self.text:
            cells = min(area, char_cells(ch) * self.style.width)
            yield at, cells, ch
            at += cells

    @property
    def inked(self) -> bool:
        return bool(self.text.strip(" "))


def place(line: Line, area: int) -> list[Piece]:
    """The text of ``line`` on paper, in an ``area`` columns wide print area, in the order
    it was sent."""
    return _Placer(max(1, area), positioned=any(r.column is not None for r in line.runs)).run(line)


class _Placer:
    """The print position while a line is laid out, and the ink already on each row."""

    def __init__(self, area: int, *, positioned: bool) -> None:
        self.area = area
        self.positioned = positioned  # without ESC $ / ESC \ text only moves forward
        self.row = self.cursor = self.shift = 0
        self.ink: list[bytearray] = [bytearray(area)] if positioned else []
        self.out: list[Piece] = []

    def run(self, line: Line) -> list[Piece]:
        for run in line.runs:
            if run.column is not None and run.column + self.shift < self.area:
                # ESC $ beyond the print area is ignored, as the printer ignores it
                self._move_to(run.column + self.shift, run.text, run.style.width)
            self._flow(run.text, run.style)
        return self.out

    def _move_to(self, wanted: int, text: str, width: int) -> None:
        ink = self.ink[self.row]
        start, end = wanted, _ink_end(ink)
        if end > 0 and start == end + 1 and text[:1] not in ("", " "):
            start += 1  # one blank column would read as one field: make it two
        if _collides(ink, start, text, width):
            start = max(start, end + 2)
        if start >= self.area:  # nothing fits after the ink: the next row, as text would go
            self._new_row()
            return
        self.shift += start - wanted  # later fields move along, keeping their gaps
        self.cursor = start

    def _new_row(self) -> None:
        self.row += 1
        self.cursor = 0
        if self.positioned:
            self.ink.append(bytearray(self.area))

    def _flow(self, text: str, style: Style) -> None:
        width, area = style.width, self.area
        simple = not _MAYBE_WIDE.search(text)
        i, n = 0, len(text)
        while i < n:
            start = self.cursor
            if simple and not self.positioned:
                cells = min(area, width)
                j = i + max(0, min(n - i, (area - start) // cells))
                self.cursor += (j - i) * cells
                clash = False
            else:
                j, clash = self._fit(text, i, width)
            if j > i:
                self.out.append(Piece(self.row, start, self.cursor, text[i:j], style))
            if j < n:
                if clash:  # text running into ink placed earlier: go past it
                    self.cursor = _ink_end(self.ink[self.row]) + 1
                if not clash or self.cursor >= area:
                    if self.cursor == 0 and j == i:  # a character wider than the area
                        j += 1
                        self.out.append(Piece(self.row, 0, area, text[i], style))
                    self._new_row()
            i = j

    def _fit(self, text: str, i: int, width: int) -> tuple[int, bool]:
        """How far ``text`` from ``i`` fits on the row (marking its ink); and whether it
        stopped at ink rather than at the edge."""
        ink = self.ink[self.row] if self.positioned else None
        j = i
        while j < len(text):
            ch = text[j]
            cells = min(self.area, char_cells(ch) * width)
            at = self.cursor
            if at + cells > self.area:
                return j, False
            if ink is not None and ch != " ":
                if any(ink[at : at + cells]):
                    return j, True
                ink[at : at + cells] = b"\x01" * cells
            self.cursor += cells
            j += 1
        return j, False


def extent(line: Line) -> int:
    """How many columns the line's widest row takes on paper, ignoring wrapping."""
    return max((p.end - _trailing(p) for p in place(line, 1 << 12) if p.inked), default=0)


def text_rows(line: Line, area: int) -> list[str]:
    """The line as plain-text rows (scaled letters plain), each ``area`` columns at most,
    before justification and margin."""
    rows: list[list[Piece]] = []
    for piece in place(line, area):
        while len(rows) <= piece.row:
            rows.append([])
        rows[piece.row].append(piece)
    return [_text_row(pieces, area) for pieces in rows] or [""]


def _text_row(pieces: list[Piece], area: int) -> str:
    cells: list[str] = []
    inked = [(p.column, p.end) for p in pieces if p.inked]
    prev_end = prev_text_end = -1
    prev_ink = False
    for p in pieces:
        wide = bool(_MAYBE_WIDE.search(p.text))
        size = sum(char_cells(ch) for ch in p.text) if wide else len(p.text)
        scaled = size < p.end - p.column
        if p.column == prev_end and (prev_ink or not scaled):
            at = prev_text_end  # continues the text before it: follow it
        else:  # placed, or scaled after blanks (centred or right-aligned with spaces)
            at = p.column + _offset(p.column, p.end, p.end - p.column - size, inked, area)
        prev_text_end = _write(cells, at, p.text, wide)
        prev_end, prev_ink = p.end, p.inked
    return "".join(cells).rstrip()


def _offset(start: int, end: int, extra: int, inked: list[tuple[int, int]], area: int) -> int:
    """Where in its paper span a scaled piece's plain letters go (see the module doc)."""
    if extra <= 0:
        return 0
    left = start - max((b for a, b in inked if b <= start), default=0)
    right = min((a for a, b in inked if a >= end), default=area) - end
    if right <= 0 < left:
        return extra
    if left > 0 and abs(left - right) <= 1:
        return extra // 2
    return 0


def _write(cells: list[str], at: int, text: str, wide: bool) -> int:
    """Put ``text`` in the row from ``at`` (after the row's letters if it would cover them);
    where it ends."""
    if at >= len(cells) and not wide:  # the usual case: past everything so far
        cells.extend(" " * (at - len(cells)))
        cells.extend(text)
        return at + len(text)
    for k, ch in enumerate(text):
        if ch != " " and at + k < len(cells) and cells[at + k] not in (" ", ""):
            at = len("".join(cells).rstrip()) + 1
            break
    for ch in text:
        size = char_cells(ch)
        while len(cells) < at + size:
            cells.append(" ")
        if ch != " " or cells[at] in (" ", ""):  # a space never wipes out a letter
            cells[at] = ch
            if size == 2:
                cells[at + 1] = ""  # the wide character's second column
        at += size
    return at


def _trailing(piece: Piece) -> int:
    """The paper columns the piece's trailing spaces take."""
    spaces = len(piece.text) - len(piece.text.rstrip(" "))
    return spaces * piece.style.width


def _ink_end(ink: bytearray) -> int:
    """One past the last inked column of a row (0 when the row is blank)."""
    return ink.rfind(1) + 1


def _collides(ink: bytearray, start: int, text: str, width: int) -> bool:
    at = start
    for ch in text:
        cells = char_cells(ch) * width
        if at >= len(ink):
            return False
        if ch != " " and any(ink[at : at + cells]):
            return True
        at += cells
    return False
