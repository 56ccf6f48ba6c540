"""ReceiptStream: bytes pass on at once, receipts end at cuts, nothing is lost or reordered."""

from __future__ import annotations

from pathlib import Path

from tillgate.drivers.escpos import Boundary, Cut, Forward, Piece, ReceiptStream, passthrough

GOLDEN = Path(__file__).resolve().parent / "golden"
ESC, GS = b"\x1b", b"\x1d"
# The raster's three pixel bytes spell GS V 0: skipped by length, never taken for a cut.
PICTURE = GS + b"v0\x00\x01\x00\x03\x00" + GS + b"V\x00"
RECEIPT_1 = ESC + b"@" + b"Milk 1.00\n" + PICTURE + GS + b"V\x00"
RECEIPT_2 = ESC + b"@" + b"Bread 2.00\n"


def feed_all(chunks: list[bytes]) -> list[Piece]:
    stream = ReceiptStream()
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += stream.feed(chunk)
    return pieces + stream.flush()


def joined(pieces: list[Piece]) -> bytes:
    return b"".join(
        p.data if isinstance(p, Forward) else p.cut for p in pieces if not isinstance(p, Boundary)
    )


def test_cut_ends_a_receipt_and_is_not_forwarded() -> None:
    cut = GS + b"VA\x10"
    pieces = ReceiptStream().feed(RECEIPT_1 + b"Total\n" + cut + b"next")
    assert pieces == [
        Forward(RECEIPT_1[:-3]),
        Cut(receipt=RECEIPT_1[:-3], cut=GS + b"V\x00"),
        Forward(b"Total\n"),
        Cut(receipt=b"Total\n", cut=cut),
        Forward(b"next"),
    ]


def test_every_chunking_gives_the_same_receipts() -> None:
    data = RECEIPT_1 + RECEIPT_2 + ESC + b"@" + b"x" + ESC + b"i"
    whole = [p for p in feed_all([data]) if not isinstance(p, Forward)]
    for size in (1, 2, 3, 5, 7):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        pieces = feed_all(chunks)
        assert [p for p in pieces if not isinstance(p, Forward)] == whole
        assert joined(pieces) == data
    assert whole == [
        Cut(receipt=RECEIPT_1[:-3], cut=GS + b"V\x00"),
        Boundary(receipt=RECEIPT_2),
        Cut(receipt=ESC + b"@" + b"x", cut=ESC + b"i"),
    ]


def test_init_after_printed_content_is_a_boundary_forwarded_after_it() -> None:
    stream = ReceiptStream()
    assert stream.feed(ESC + b"@" + b"one\n") == [Forward(ESC + b"@" + b"one\n")]
    assert stream.feed(ESC + b"@two") == [
        Boundary(receipt=ESC + b"@" + b"one\n"),
        Forward(ESC + b"@two"),
    ]
    # an ESC @ with nothing printed before it is no boundary
    assert ReceiptStream().feed(ESC + b"@\n \n" + ESC + b"@") == [
        Forward(ESC + b"@\n \n" + ESC + b"@")
    ]


def test_only_an_incomplete_command_is_held_back() -> None:
    stream = ReceiptStream()
    assert stream.feed(b"Total 5" + GS) == [Forward(b"Total 5")]
    assert stream.feed(b"V") == []
    assert stream.feed(b"\x01rest") == [
        Cut(receipt=b"Total 5", cut=GS + b"V\x01"),
        Forward(b"rest"),
    ]


def test_a_long_image_is_forwarded_as_it_arrives() -> None:
    stream = ReceiptStream()
    header = GS + b"v0\x00\x10\x00\x10\x00"  # 256 bytes of pixels follow
    assert stream.feed(header + GS + b"V\x00") == [Forward(header + GS + b"V\x00")]
    assert stream.feed(GS + b"V" * 126) == [Forward(GS + b"V" * 126)]
    assert stream.feed(b"\x00" * 127 + GS + b"V0") == [
        Forward(b"\x00" * 127),
        Cut(receipt=header + GS + b"V\x00" + GS + b"V" * 126 + b"\x00" * 127, cut=GS + b"V0"),
    ]


def test_flush_releases_held_bytes() -> None:
    stream = ReceiptStream()
    assert stream.feed(b"abc" + GS + b"(k\x05") == [Forward(b"abc")]
    assert stream.flush() == [Forward(GS + b"(k\x05")]
    assert stream.flush() == []
    assert stream.pending == b"abc" + GS + b"(k\x05"


def test_receipt_without_cut_keeps_only_its_end_past_the_limit() -> None:
    stream = ReceiptStream(max_receipt_bytes=100)
    for _ in range(50):
        stream.feed(b"0123456789")
    assert 100 <= len(stream.pending) <= 200
    assert stream.pending.endswith(b"0123456789")
    kept = stream.pending
    assert stream.feed(ESC + b"m") == [Cut(receipt=kept, cut=ESC + b"m")]
    assert stream.pending == b""


def test_passthrough_of_golden_streams_in_odd_chunks() -> None:
    for path in sorted(GOLDEN.glob("*.bin")):
        data = path.read_bytes()
        chunks = [data[i : i + 13] for i in range(0, len(data), 13)]
        assert passthrough(chunks) == data, path.name
