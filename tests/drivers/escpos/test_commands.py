"""The tokenizer: each command's declared length, unknown and truncated commands."""

from __future__ import annotations

import pytest

from tillgate.drivers.escpos import tokenize
from tillgate.drivers.escpos.commands import Token


def kinds(data: bytes) -> list[tuple[str, str, bytes]]:
    tokens = tokenize(data)
    assert b"".join(t.raw for t in tokens) == data
    return [(t.kind, t.name, t.raw) for t in tokens]


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (b"\x1b@", "ESC @"),
        (b"\x1bt\x11", "ESC t"),
        (b"\x1b!\x38", "ESC !"),
        (b"\x1bp\x00\x19\xfa", "ESC p"),
        (b"\x1b$\x10\x00", "ESC $"),
        (b"\x1bc5\x00", "ESC c"),
        (b"\x1bD\x08\x10\x00", "ESC D"),
        (b"\x1b=\x02", "ESC ="),
        (b"\x1c&", "FS &"),
        (b"\x1c.", "FS ."),
        (b"\x1cC\x01", "FS C"),
        (b"\x1dV\x00", "GS V"),
        (b"\x1dV\x31", "GS V"),
        (b"\x1dVA\x10", "GS V"),
        (b"\x1dVh\x10", "GS V"),
        (b"\x1dk\x024601234567893\x00", "GS k"),
        (b"\x1dkI\x04{B12", "GS k"),
        (b"\x1d(k\x03\x001C\x05", "GS ( k"),
        (b"\x1d(L\x02\x0002", "GS ( L"),
        (b"\x1d8L\x02\x00\x00\x0002", "GS 8 L"),
        (b"\x1dv0\x00\x02\x00\x02\x00\x1dV\x00\x1d", "GS v 0"),  # cut bytes as pixels
        (b"\x1b*\x00\x02\x00\xff\x1d", "ESC *"),
        (b"\x1b*\x21\x01\x00\x1dV\x00", "ESC *"),  # 24-dot: 3 bytes a column
        (b"\x1b&\x03\x41\x42\x01abc\x02abcdef", "ESC &"),
        (b"\x1cq\x01\x01\x00\x01\x00" + b"\x00" * 8, "FS q"),
        (b"\x1dI\x43", "GS I"),
        (b"\x1dr\x01", "GS r"),
        (b"\x10\x04\x01", "DLE EOT"),
        (b"\x10\x04\x07\x01", "DLE EOT"),
        (b"\x10\x14\x01\x00\x05", "DLE DC4"),
        (b"\x1b(A\x04\x000a\x02\x01", "ESC ( A"),
    ],
)
def test_each_command_takes_its_declared_length(raw: bytes, name: str) -> None:
    assert kinds(raw + b"z") == [("command", name, raw), ("text", "", b"z")]


def test_text_and_controls() -> None:
    assert kinds(b"ab\r\nc\td") == [
        ("text", "", b"ab"),
        ("control", "CR", b"\r"),
        ("control", "LF", b"\n"),
        ("text", "", b"c"),
        ("control", "HT", b"\t"),
        ("text", "", b"d"),
    ]


def test_unknown_command_is_prefix_and_one_byte() -> None:
    assert kinds(b"\x1b\x7fx\x1d\x99\x1c~\x10\x01") == [
        ("unknown", "ESC 0x7F", b"\x1b\x7f"),
        ("text", "", b"x"),
        ("unknown", "GS 0x99", b"\x1d\x99"),
        ("unknown", "FS ~", b"\x1c~"),
        ("unknown", "DLE 0x01", b"\x10\x01"),
    ]


def test_invalid_arguments_make_an_unknown_token() -> None:
    # GS k 32 is no symbology, GS V 7 no cut: two bytes unknown, the rest read as data
    assert kinds(b"\x1dk\x20A")[0] == ("unknown", "GS k", b"\x1dk")
    assert kinds(b"\x1dV\x07")[0] == ("unknown", "GS V", b"\x1dV")
    assert kinds(b"\x1dvX")[0] == ("unknown", "GS v", b"\x1dv")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"\x1b", "ESC"),
        (b"\x1dV", "GS V"),
        (b"\x1dVA", "GS V"),
        (b"\x1d(k\x05", "GS ( k"),
        (b"\x1dv0\x00\x10\x00\x10\x00\xff", "GS v 0"),
        (b"\x1dk\x02123", "GS k"),
        (b"\x10\x04", "DLE EOT"),
    ],
)
def test_command_cut_short_by_the_end_is_one_truncated_token(data: bytes, name: str) -> None:
    assert tokenize(b"ok" + data) == [
        Token("text", "", b"ok", 0),
        Token("truncated", name, data, 2),
    ]


def test_nul_terminated_barcode_without_nul_stops_after_255_bytes() -> None:
    data = b"\x1dk\x04" + b"A" * 300
    tokens = tokenize(data)
    assert tokens[0].raw == data[:258]
    assert tokens[1] == Token("text", "", b"A" * 45, 258)
