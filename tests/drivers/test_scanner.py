"""Scanner reads: framing by terminators, prefix/suffix and pauses; decoding; classifying."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tillgate.drivers.inputs import interpret
from tillgate.drivers.msr import Rejected
from tillgate.drivers.scanner import Barcode, CardScan, Framer, classify, decode

ANNA = "2900000000011"
CARDS = r"^29\d{11}$"  # in-store EAN-13 prefix 29: cards; everything else is a product


def test_terminators_cr_lf_crlf_tab() -> None:
    framer = Framer()
    assert framer.feed(b"111\r222\n333\r\n444\t", 0.0) == [b"111", b"222", b"333", b"444"]


def test_a_read_split_over_several_chunks() -> None:
    framer = Framer()
    assert framer.feed(b"46000", 0.0) == []
    assert framer.feed(b"00000008", 0.01) == []
    assert framer.feed(b"\r", 0.02) == [b"4600000000008"]


def test_a_pause_ends_a_read_without_terminator() -> None:
    framer = Framer(idle_timeout=0.1)
    assert framer.feed(b"4600000000008", 0.0) == []
    assert framer.poll(0.05) == []
    assert framer.poll(0.11) == [b"4600000000008"]
    assert framer.poll(0.5) == []
    # The pause before new bytes ends the read before them.
    framer.feed(b"111", 1.0)
    assert framer.feed(b"222\r", 1.5) == [b"111", b"222"]


def test_prefix_and_suffix() -> None:
    framer = Framer(prefix=b"\x02", suffix=b"\x03")
    assert framer.feed(b"\x02111\x03\r\n\x02222\x03", 0.0) == [b"111", b"222"]
    # Noise before the prefix is dropped; a new prefix starts a new read.
    assert framer.feed(b"zz\x02333\x02444\x03", 1.0) == [b"333", b"444"]
    # A reader id as prefix, and a read without it still counts.
    framer = Framer(prefix=b"R1:")
    assert framer.feed(b"R1:111\r222\r", 0.0) == [b"111", b"222"]


def test_an_overlong_read_is_rejected_and_the_next_one_still_read() -> None:
    framer = Framer(max_length=16)
    out = framer.feed(b"x" * 40, 0.0)
    assert len(out) == 1 and isinstance(out[0], Rejected) and "longer" in out[0].reason
    assert framer.feed(b"y" * 40 + b"\r", 0.0) == []  # the rest of it, up to its end
    assert framer.feed(b"4600000000008\r", 0.0) == [b"4600000000008"]


def test_decode_utf8_and_cp1251() -> None:
    assert decode("Привет".encode()) == "Привет"
    assert decode("Привет".encode("cp1251")) == "Привет"
    assert decode(b"  4600000000008 ") == "4600000000008"
    assert decode("Привет".encode("cp1251"), ("utf-8",)) == Rejected(
        reason="unreadable: not text in utf-8"
    )


def test_control_garbage_is_rejected_but_gs1_separators_are_not() -> None:
    garbage = decode(b"\x00\x13\xff~\x01")
    assert isinstance(garbage, Rejected) and "control characters" in garbage.reason
    assert decode(b"0104600000000008\x1d21abc") == "0104600000000008\x1d21abc"


def test_classify_scans() -> None:
    scan = classify(ANNA, role="scanner", number_pattern=CARDS)
    assert isinstance(scan, CardScan) and (scan.card.value, scan.card.form) == (ANNA, "barcode")
    qr = classify(f"TGC:{ANNA}", role="scanner", number_pattern=CARDS)
    assert isinstance(qr, CardScan) and (qr.card.value, qr.card.form) == (ANNA, "qr")
    phone = classify("+7 (916) 123-45-67", role="scanner", number_pattern=CARDS)
    assert isinstance(phone, CardScan)
    assert (phone.card.kind, phone.card.value) == ("phone", "+79161234567")
    assert classify("4600000000008", role="scanner", number_pattern=CARDS) == Barcode(
        code="4600000000008"
    )
    assert classify("COUPON-ABC", role="scanner") == Barcode(code="COUPON-ABC")


def test_a_card_reader_rejects_what_is_not_a_card() -> None:
    typed = classify(ANNA, role="card_reader", number_pattern=CARDS)
    assert isinstance(typed, CardScan) and typed.card.form == "number"
    product = classify("4600000000008", role="card_reader", number_pattern=CARDS)
    assert isinstance(product, Rejected) and "card_number_pattern" in product.reason
    assert "4600000000008" not in product.reason


def test_interpret_by_role() -> None:
    swipe = interpret(f";{ANNA}=2812?", role="card_reader")
    assert [type(r).__name__ for r in swipe] == ["Swipe"]
    # A scanner does not read stripes, but a code holding track data is still a card.
    scanned = interpret(f";{ANNA}=2812?", role="scanner")
    assert isinstance(scanned[0], CardScan) and scanned[0].card.value == ANNA
    assert isinstance(interpret("hello", role="card_reader")[0], Rejected)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(["scanner", "card_reader"]))
def test_any_bytes_give_reads_never_an_exception(data: bytes, role: str) -> None:
    framer = Framer()
    frames = framer.feed(data, 0.0) + framer.poll(10.0)
    for frame in frames:
        text = frame if isinstance(frame, Rejected) else decode(frame)
        if isinstance(text, str):
            assert role in ("scanner", "card_reader")
            interpret(text, role="scanner" if role == "scanner" else "card_reader")
