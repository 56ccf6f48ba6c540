"""JSON read a piece at a time: a reply's top-level lists item by item.

``json.loads`` of a change page is one C call: it holds the GIL until the last card is
parsed, 5 ms for 500 cards and 20 ms for 2,000, and the till's POS API waits that long for
its turn (a calculate was seen waiting 40–55 ms while the syncer took in a page). Here each
item of a top-level list is its own call, and between two of them Python may hand the GIL
to the thread answering the POS: the longest wait is one card's parse, a few microseconds.

A compact change page's ``card_rows`` (:mod:`tillgate.sync.cardrows`) is the exception:
its rows are arrays of plain values, parsed whole in one call (a millisecond for a page of
a thousand, under the interpreter's 5 ms switch interval that any Python thread may hold
it for anyway), where one call a row cost as much again as the parse itself.

The result is what ``json.loads`` gives for the same bytes, and so are the errors
(:class:`json.JSONDecodeError`, a ValueError; ``RecursionError`` for nesting too deep).
"""

from __future__ import annotations

import json
import re
from typing import Any

_WS = re.compile(r"[ \t\n\r]*")
_BLANK = frozenset(" \t\n\r")
_DECODER = json.JSONDecoder()
WHOLE = frozenset(("card_rows",))  # top-level lists parsed in one call (see above)


def loads(body: bytes) -> Any:
    """``body``'s JSON value, its top-level object's lists parsed item by item."""
    text = body.decode(json.detect_encoding(body), "surrogatepass")
    i = _skip(text, 0)
    if not text.startswith("{", i):
        return json.loads(text)  # not a page: whatever it is, parsed (or refused) whole
    out: dict[str, Any] = {}
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return _end(text, i + 1, out)
    while True:
        if not text.startswith('"', i):
            raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
        key, i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if not text.startswith(":", i):
            raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
        i = _skip(text, i + 1)
        if text.startswith("[", i) and key not in WHOLE:
            out[key], i = _items(text, i)
        else:
            out[key], i = _DECODER.raw_decode(text, i)
        i = _skip(text, i)
        if text.startswith(",", i):
            i = _skip(text, i + 1)
        elif text.startswith("}", i):
            return _end(text, i + 1, out)
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _items(text: str, i: int) -> tuple[list[Any], int]:
    """The list starting at ``text[i]`` (a ``[``), one item per decoder call."""
    out: list[Any] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return out, i + 1
    while True:
        item, i = _DECODER.raw_decode(text, i)
        out.append(item)
        # Head office's JSON is compact: the regex only where there is white space.
        if text[i : i + 1] in _BLANK:
            i = _skip(text, i)
        if text.startswith(",", i):
            i += 1
            if text[i : i + 1] in _BLANK:
                i = _skip(text, i)
        elif text.startswith("]", i):
            return out, i + 1
        else:
            raise json.JSONDecodeError("Expecting ',' delimiter", text, i)


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    assert match is not None  # the pattern matches the empty string
    return match.end()


def _end(text: str, i: int, out: dict[str, Any]) -> dict[str, Any]:
    i = _skip(text, i)
    if i != len(text):
        raise json.JSONDecodeError("Extra data", text, i)
    return out
