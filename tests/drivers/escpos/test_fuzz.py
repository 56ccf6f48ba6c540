"""Fuzzing: for any bytes the parser never raises, the tokens give back the input byte for
byte, and a ReceiptStream passes the input on unchanged however it is chunked.

Four properties at 2 500 examples each: 10 000 streams a run (random bytes, mutated golden
files, random sequences of command fragments, and those in chunks of 1..9 bytes). Mutations,
fragment sequences and chunkings come from a drawn seed and ``random.Random``: one draw per
example keeps hypothesis's own cost low enough for 10 000 examples, and a failure still
prints the seed that reproduces it.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tillgate.drivers.escpos import parse, passthrough, render_text, tokenize

GOLDEN = Path(__file__).resolve().parent / "golden"
SEEDS = [p.read_bytes() for p in sorted(GOLDEN.glob("*.bin"))]

FUZZ = settings(
    max_examples=2500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Pieces of real commands, cut at odd places, so random sequences hit the length rules.
FRAGMENTS = [
    b"\x1b", b"\x1d", b"\x1c", b"\x10", b"\n", b"\t", b"\x00", b"\xff", b"A", b"\x8f\xe0",
    b"\x1b@", b"\x1bt\x11", b"\x1bt", b"\x1b!\x38", b"\x1ba\x01", b"\x1bE\x01", b"\x1bd\x03",
    b"\x1bp\x00\x19\xfa", b"\x1bD\x08\x10\x00", b"\x1b=\x02", b"\x1b=\x01", b"\x1bi", b"\x1bm",
    b"\x1b*\x21\x02\x00", b"\x1b*\x00\x01\x00", b"\x1b&\x03\x41\x42", b"\x1bc5",
    b"\x1dV\x00", b"\x1dVA\x03", b"\x1dV", b"\x1d!\x11", b"\x1dB\x01", b"\x1dH\x02",
    b"\x1dk\x02460123", b"\x1dkI\x05{B12", b"\x1dk", b"\x1d(k\x03\x001Q0", b"\x1d(k\x08\x001P0",
    b"\x1d(k", b"\x1d(L\x02\x0002", b"\x1d(L\x0c\x000p0\x01\x011\x08\x00\x02\x00",
    b"\x1d8L\x02\x00\x00\x0002", b"\x1dv0\x00\x01\x00\x02\x00", b"\x1dv0", b"\x1dI\x43",
    b"\x1dr\x01", b"\x1c&", b"\x1c.", b"\x1cp\x01\x00", b"\x1cq\x01\x01\x00\x01\x00",
    b"\x1cg1\x00\x00\x00\x00\x00\x02\x00", b"\x10\x04\x01", b"\x10\x14\x01\x00\x01", b"\x10\x05",
]  # fmt: skip


def check(data: bytes, chunk_seed: int) -> None:
    assert b"".join(t.raw for t in tokenize(data)) == data
    doc = parse(data)
    render_text(doc)
    doc.to_json()
    assert passthrough(chunked(data, chunk_seed)) == data


def chunked(data: bytes, seed: int) -> list[bytes]:
    """``data`` cut at up to 12 random places (a seed, not a drawn list: far cheaper to draw)."""
    rnd = random.Random(seed)
    bounds = [0, *sorted(rnd.randint(0, len(data)) for _ in range(rnd.randint(0, 12))), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def mutate(data: bytes, seed: int) -> bytes:
    """Byte flips, insertions (random or command fragments), deletions, truncation, splices."""
    rnd = random.Random(seed)
    out = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        op = rnd.choice(["flip", "insert", "delete", "truncate", "splice"])
        at = rnd.randint(0, len(out))
        if op == "flip" and out:
            out[at % len(out)] ^= 1 << rnd.randint(0, 7)
        elif op == "insert":
            piece = (
                rnd.choice(FRAGMENTS) if rnd.random() < 0.5 else rnd.randbytes(rnd.randint(1, 8))
            )
            out[at:at] = piece
        elif op == "delete":
            del out[at : at + rnd.randint(1, 16)]
        elif op == "truncate":
            del out[at:]
        else:
            other = rnd.choice(SEEDS)
            start = rnd.randint(0, len(other))
            out[at:] = other[start : start + rnd.randint(0, 200)]
    return bytes(out)


SEED = st.integers(0, 2**32 - 1)


@FUZZ
@given(data=st.binary(max_size=400), chunk_seed=SEED)
def test_random_bytes(data: bytes, chunk_seed: int) -> None:
    check(data, chunk_seed)


@FUZZ
@given(index=st.integers(0, len(SEEDS) - 1), seed=SEED)
def test_mutated_golden_streams(index: int, seed: int) -> None:
    check(mutate(SEEDS[index], seed), seed)


def fragments(seed: int, *, count: int, with_noise: bool) -> bytes:
    """Up to ``count`` command fragments (and, with noise, random bytes) in random order."""
    rnd = random.Random(seed)
    parts = []
    for _ in range(rnd.randint(0, count)):
        if with_noise and rnd.random() < 0.2:
            parts.append(rnd.randbytes(rnd.randint(0, 4)))
        else:
            parts.append(rnd.choice(FRAGMENTS))
    return b"".join(parts)


@FUZZ
@given(seed=SEED)
def test_random_command_fragments(seed: int) -> None:
    check(fragments(seed, count=60, with_noise=True), seed + 1)


@FUZZ
@given(seed=SEED, chunk_size=st.integers(1, 9))
def test_small_chunks(seed: int, chunk_size: int) -> None:
    # small chunks everywhere: commands get split at every possible place
    data = fragments(seed, count=25, with_noise=False)
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    assert passthrough(chunks) == data
    assert b"".join(t.raw for t in tokenize(data)) == data
    parse(data)
