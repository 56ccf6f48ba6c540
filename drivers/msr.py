"""Magnetic-stripe reads (ISO/IEC 7813 tracks 1 and 2) → the card they carry, or why not.

A reader sends one *read* (a frame, see :mod:`.scanner`) per swipe, usually
``%B<PAN>^<NAME>^<YYMM><service code><discretionary>?`` for track 1 and
``;<PAN>=<YYMM><service code><discretionary>?`` for track 2, each optionally followed by
its LRC character. :func:`parse_swipes` finds the tracks in a read, checks their character
sets and LRCs, and groups them into swipes (a second track 2, or a track 1 after a track 2,
starts a new swipe, so two swipes in one read give two results). Track 2 wins when both
tracks are good; the card number itself is recognised by :func:`tillgate.core.cards.identify`
(the same code the POS API uses), so both agree on what a card is.

Loyalty cards sometimes carry their number in the discretionary data instead of the PAN
field; ``track_number_pattern`` (a regex whose first group, or whole match, is the number)
picks it out of the track's data. Every failure is a :class:`Rejected` read with a reason
that never shows a card number in full; nothing here raises on bad input.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from tillgate.core.cards import DEFAULT_NUMBER_PATTERN, CardForm, CardRef, identify, mask_in_text
from tillgate.core.errors import CardFormatError

START: dict[str, Literal[1, 2]] = {"%": 1, ";": 2}
END = "?"
# Character sets between the sentinels: track 1 is 6-bit ALPHA (0x20-0x5F), track 2 5-bit
# BCD (0x30-0x3F) — minus the sentinels, which only frame data.
_DATA = {
    1: re.compile(r"^[\x20-\x24\x26-\x3e\x40-\x5f]*$"),
    2: re.compile(r"^[\x30-\x3a\x3c-\x3e]*$"),
}
_BASE = {1: 0x20, 2: 0x30}  # ASCII of the character whose code is 0
_BITS = {1: 0x3F, 2: 0x0F}  # data bits per character (parity is the reader's business)


@dataclass(frozen=True, kw_only=True)
class Swipe:
    """A card read from a magnetic stripe."""

    card: CardRef
    track: Literal[1, 2]
    name: str = ""  # the holder's name on track 1 ("JOHN DOE"), if there was one

    def __repr__(self) -> str:
        return f"Swipe(card={self.card!r}, track={self.track})"  # no name in logs


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """A read that gave no card, and why (safe to log and show: no full numbers)."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class _Track:
    track: Literal[1, 2]
    data: str = ""  # between the sentinels, without the LRC
    error: str = ""  # why the track is unusable


def lrc(track: Literal[1, 2], framed: str) -> str:
    """The LRC character of ``framed`` (start sentinel … end sentinel) on ``track``."""
    value = 0
    for ch in framed:
        value ^= (ord(ch) - _BASE[track]) & _BITS[track]
    return chr(_BASE[track] + value)


def parse_swipes(
    text: str,
    *,
    number_pattern: str = DEFAULT_NUMBER_PATTERN,
    track_number_pattern: str = "",
) -> list[Swipe | Rejected] | None:
    """The swipes in one read, in order; None if ``text`` holds no track at all.

    ``number_pattern`` is the program's card number pattern; ``track_number_pattern``
    optionally picks the number out of the track data (see the module docstring).
    """
    tracks = _tracks(text)
    if not tracks:
        return None
    swipes: list[list[_Track]] = []
    for t in tracks:
        # Readers send track 1 before track 2: a repeat or a step back is the next swipe.
        if not swipes or t.track <= swipes[-1][-1].track:
            swipes.append([])
        swipes[-1].append(t)
    picker = re.compile(track_number_pattern) if track_number_pattern else None
    return [_swipe(group, number_pattern, picker) for group in swipes]


def _tracks(text: str) -> list[_Track]:
    """Every track in ``text`` (half and broken ones included); stray characters skipped."""
    out: list[_Track] = []
    i, n = 0, len(text)
    while i < n:
        track = START.get(text[i])
        if track is None:
            i += 1  # noise between swipes (a reader id, a stray key): not a track
            continue
        end = text.find(END, i + 1)
        restart = min((j for s in START if (j := text.find(s, i + 1)) != -1), default=-1)
        if end == -1 or (restart != -1 and restart < end):
            out.append(_Track(track=track, error="half swipe (the stripe was not read to its end)"))
            i = restart if restart != -1 else n
            continue
        data = text[i + 1 : end]
        i = end + 1
        lrc_error = ""
        if i < n:
            # A character right after the end sentinel is the LRC, unless it starts the
            # next track or cannot be an LRC at all. Some LRCs are a start sentinel
            # (';' or '%'): then it is the LRC only if no whole track starts there.
            expected = lrc(track, text[end - len(data) - 1 : end + 1])
            following = text[i]
            if following == expected and not _starts_track(text, i):
                i += 1
            elif following not in START and 0 <= ord(following) - _BASE[track] <= _BITS[track]:
                i += 1
                lrc_error = "LRC check failed (a bad swipe or a damaged stripe)"
        if data.upper() == "E":
            out.append(_Track(track=track, error="the reader could not read the stripe"))
        elif lrc_error:
            out.append(_Track(track=track, error=lrc_error))
        elif not _DATA[track].match(data):
            out.append(_Track(track=track, error="characters that a stripe cannot hold"))
        else:
            out.append(_Track(track=track, data=data))
    return out


def _starts_track(text: str, i: int) -> bool:
    """Whether a whole track begins at ``text[i]`` (an LRC may look like a start sentinel)."""
    track = START.get(text[i])
    if track is None:
        return False
    end = text.find(END, i + 1)
    return end != -1 and bool(_DATA[track].match(text[i + 1 : end]) or text[i + 1 : end] == "E")


def _swipe(
    tracks: list[_Track], number_pattern: str, picker: re.Pattern[str] | None
) -> Swipe | Rejected:
    found: list[Swipe] = []
    problems: list[str] = []
    # Track 2 first: its character set is smaller and every reader writes it the same way.
    for t in sorted(tracks, key=lambda t: -t.track):
        if t.error:
            problems.append(f"track {t.track}: {t.error}")
            continue
        try:
            found.append(_card(t, number_pattern, picker))
        except CardFormatError as exc:
            problems.append(f"track {t.track}: {mask_in_text(str(exc))}")
    if not found:
        return Rejected(reason="card not read: " + "; ".join(problems))
    if len({s.card.value for s in found}) > 1:
        return Rejected(reason="card not read: tracks 1 and 2 hold different numbers")
    best = found[0]
    name = next((s.name for s in found if s.name), "")
    return dataclasses.replace(best, name=name)


def _card(t: _Track, number_pattern: str, picker: re.Pattern[str] | None) -> Swipe:
    name = _name(t.data) if t.track == 1 else ""
    if picker is not None:
        m = picker.search(t.data)
        if m is None:
            raise CardFormatError("no card number where track_number_pattern looks for it")
        number = m.group(1) if picker.groups else m.group(0)
        ref = identify(number, number_pattern=number_pattern)
        if ref.kind != "number":
            raise CardFormatError("track_number_pattern picked something that is not a number")
    else:
        framed = ("%" if t.track == 1 else ";") + t.data + END
        ref = identify(framed, number_pattern=number_pattern)
    form: CardForm = "track1" if t.track == 1 else "track2"
    return Swipe(card=dataclasses.replace(ref, form=form), track=t.track, name=name)


def _name(data: str) -> str:
    """The holder's name from track 1 data (``B<PAN>^DOE/JOHN^…`` → ``JOHN DOE``)."""
    parts = data.split("^")
    if len(parts) < 3:
        return ""
    surname, _, given = parts[1].partition("/")
    return " ".join(p.strip() for p in (given, surname) if p.strip())
