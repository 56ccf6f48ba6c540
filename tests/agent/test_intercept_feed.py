"""The POS's feed before its cut: our block goes right under its last line, the feed after.

A POS feeds paper (``ESC d n``, blank lines) so that its last line clears the cutter. The
interceptor holds that feed back until it knows what follows: at a cut it prints the
loyalty block first and the POS's feed after it, so no blank gap opens above the block.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.agent.test_intercept import BONUS, make
from tests.conftest import ANNA, program
from tillgate.agent.intercept import FEED_BEFORE_CUT, feed_tail
from tillgate.drivers.escpos.parser import parse
from tillgate.drivers.escpos.text import render_text

BODY = (
    "ЧЕК № 21\n"
    "Молоко 3,2% 1л     2 x 89.00   =178.00\n"
    "ИТОГ                           =178.00\n"
    "Спасибо за покупку!\n"
).encode("cp866")
FEED = b"\x1bd\x06\n\n"
CUT = b"\x1dV\x00"


@pytest.mark.parametrize(
    ("data", "tail"),
    [
        (b"Hi\n\x1bd\x06", 3),  # the LF prints "Hi"; ESC d 6 only feeds
        (b"Hi\x1bd\x06", 0),  # ESC d 6 prints "Hi": it stays with it
        (b"Hi\n\n\n", 2),
        (b"Hi\n", 0),
        (b"\n\n", 2),  # nothing printed: all feed
        (b"Hi\n\x1ba\x01\n", 0),  # a command after the feed: not a feed tail
        (b"Hi\n\x1bd", 0),  # ends inside a command
    ],
)
def test_feed_tail_counts_only_the_paper_moved_after_the_last_line(data: bytes, tail: int) -> None:
    assert feed_tail(data) == tail


def test_the_block_follows_the_last_line_and_the_pos_feed_follows_the_block(
    make_till: Any,
) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, _, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    raw = b"\x1b@\x1bt\x11" + BODY + FEED + CUT
    for k in range(0, len(raw), 7):  # the feed arrives in pieces, before the cut
        interceptor.feed(raw[k : k + 7])
    out = bytes(printer.data)
    head = raw[: raw.index(FEED)]
    assert out.startswith(head)
    # The POS's own feed moves the block past the cutter: ours is not added.
    assert out.endswith(FEED + CUT) and FEED_BEFORE_CUT not in out[len(head) :]
    text = render_text(parse(out))
    lines = text.splitlines()
    thanks = lines.index("Спасибо за покупку!")
    assert lines[thanks + 1].startswith("-----")  # the block's rule, no blank line between
    assert "ПРОГРАММА ЛОЯЛЬНОСТИ" in lines[thanks + 2]


def test_without_a_block_the_receipt_passes_byte_for_byte(make_till: Any) -> None:
    till = make_till(program())
    interceptor, printer, events, _ = make(till)
    # No total: the template cannot read it, so nothing is added.
    raw = b"\x1b@\x1bt\x11" + "Сдача 0.00\n".encode("cp866") + FEED + CUT
    for k in range(0, len(raw), 3):
        interceptor.feed(raw[k : k + 3])
    assert bytes(printer.data) == raw
    assert events[-1].data["ok"] is False


def test_a_receipt_without_a_feed_still_gets_ours_before_the_cut(make_till: Any) -> None:
    till = make_till(program(BONUS))
    interceptor, printer, _, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    raw = b"\x1b@\x1bt\x11" + BODY + CUT
    interceptor.feed(raw)
    out = bytes(printer.data)
    assert out.startswith(raw[: -len(CUT)]) and out.endswith(FEED_BEFORE_CUT + CUT)


def test_a_quiet_pos_gets_its_feed_printed(make_till: Any) -> None:
    """A POS that stops after blank lines (no cut yet, nothing readable) is not kept from
    feeding its paper: the held feed goes out once it has been quiet."""
    till = make_till(program())
    interceptor, printer, _, clock = make(till)
    interceptor.feed(b"\x1b@\x1bt\x11" + "Молоко\n".encode("cp866") + b"\n\n")
    assert bytes(printer.data).endswith("Молоко\n".encode("cp866"))
    clock.now += 5
    interceptor.idle()
    assert bytes(printer.data).endswith("Молоко\n".encode("cp866") + b"\n\n")


def test_a_feed_that_prints_the_last_line_stays_before_the_block(make_till: Any) -> None:
    """``ESC d`` after a line with no LF is what prints that line: held on its own (it came
    in a chunk of its own), it must still go before our block, or the block's first line
    would join the POS's last one; our own feed then takes the block past the cutter."""
    till = make_till(program(BONUS))
    interceptor, printer, _, _ = make(till)
    till.service.present(ANNA, source="card_reader")
    head = b"\x1b@\x1bt\x11" + BODY.removesuffix(b"\n")  # "Спасибо за покупку!" without LF
    interceptor.feed(head)
    interceptor.feed(b"\x1bd\x06" + CUT)
    out = bytes(printer.data)
    assert out.startswith(head + b"\x1bd\x06")
    assert out.endswith(FEED_BEFORE_CUT + CUT)
    lines = render_text(parse(out)).splitlines()
    assert "Спасибо за покупку!" in lines
    assert any("ПРОГРАММА ЛОЯЛЬНОСТИ" in line for line in lines)
