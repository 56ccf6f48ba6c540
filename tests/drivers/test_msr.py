"""Magnetic-stripe parsing: tracks 1 and 2, LRC, half swipes, garbage, two swipes at once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tillgate.drivers.msr import Rejected, Swipe, lrc, parse_swipes

ANNA, BORIS = "2900000000011", "2900000000028"
T1 = f"%B{ANNA}^IVANOVA/ANNA^2812101000000000?"
T2 = f";{ANNA}=2812101000?"
T2_BORIS = f";{BORIS}=2901?"


def one(text: str, **kw: str) -> Swipe | Rejected:
    result = parse_swipes(text, **kw)
    assert result is not None and len(result) == 1, result
    return result[0]


def card(text: str, **kw: str) -> Swipe:
    read = one(text, **kw)
    assert isinstance(read, Swipe), read
    return read


def rejected(text: str, **kw: str) -> str:
    read = one(text, **kw)
    assert isinstance(read, Rejected), read
    assert ANNA not in read.reason and BORIS not in read.reason  # never a full number
    return read.reason


def test_lrc_is_the_xor_of_the_character_codes() -> None:
    # Worked by hand: ';'=0xB ^ '1'=0x1 ^ '?'=0xF = 0x5; '%'=5 ^ 'A'=0x21 ^ '?'=0x1F = 0x3B.
    assert lrc(2, ";1?") == "5"
    assert lrc(1, "%A?") == "["


def test_track_2() -> None:
    swipe = card(T2)
    assert (swipe.card.value, swipe.card.form, swipe.track) == (ANNA, "track2", 2)
    assert swipe.card.kind == "number"


def test_track_2_with_its_lrc() -> None:
    assert card(T2 + lrc(2, T2)).card.value == ANNA


def test_track_1_with_name_and_lrc() -> None:
    for text in (T1, T1 + lrc(1, T1)):
        swipe = card(text)
        assert (swipe.card.value, swipe.track, swipe.name) == (ANNA, 1, "ANNA IVANOVA")
        assert swipe.card.form == "track1"
        assert "ANNA" not in repr(swipe)  # the holder's name stays out of logs


def test_both_tracks_are_one_swipe_read_from_track_2() -> None:
    swipe = card(T1 + lrc(1, T1) + T2 + lrc(2, T2))
    assert (swipe.card.value, swipe.track, swipe.name) == (ANNA, 2, "ANNA IVANOVA")


def test_bad_lrc_is_rejected() -> None:
    bad = "0" if lrc(2, T2) != "0" else "1"
    assert "LRC" in rejected(T2 + bad)
    bad1 = "A" if lrc(1, T1) != "A" else "B"
    assert "LRC" in rejected(T1 + bad1)


def test_bad_lrc_on_one_track_falls_back_to_the_other() -> None:
    bad = "0" if lrc(2, T2) != "0" else "1"
    swipe = card(T1 + T2 + bad)
    assert (swipe.card.value, swipe.track) == (ANNA, 1)


def test_half_swipes_are_rejected() -> None:
    assert "half swipe" in rejected(f";{ANNA}=28")
    assert "half swipe" in rejected(f"%B{ANNA}^IVANOVA")
    # Track 1 cut short, track 2 whole: the card is still read.
    assert card(f"%B{ANNA}^IVA" + T2).card.value == ANNA


def test_error_reads_are_rejected() -> None:
    reason = rejected("%E?;E?")
    assert "track 2: the reader could not read the stripe" in reason
    assert "track 1" in reason


def test_two_swipes_in_one_read() -> None:
    reads = parse_swipes(T2 + T2_BORIS)
    assert [r.card.value for r in reads or [] if isinstance(r, Swipe)] == [ANNA, BORIS]
    reads = parse_swipes(T1 + T2 + T1 + T2)
    assert [type(r) for r in reads or []] == [Swipe, Swipe]
    # Anna's track 2 LRC happens to be ';', the start sentinel: with or without it, and
    # with a next swipe after it, each swipe is still read once.
    assert lrc(2, T2) == ";"
    assert card(T2 + ";").card.value == ANNA
    for text in (T2 + T2_BORIS, T2 + ";" + T2_BORIS):
        reads = parse_swipes(text)
        assert [r.card.value for r in reads or [] if isinstance(r, Swipe)] == [ANNA, BORIS]
    # A half swipe followed by a good one: one rejection, then the card.
    reads = parse_swipes(f";{ANNA}=28" + T2_BORIS)
    assert reads is not None and isinstance(reads[0], Rejected)
    assert isinstance(reads[1], Swipe) and reads[1].card.value == BORIS


def test_garbage_around_a_swipe_is_skipped_and_text_without_tracks_is_not_a_swipe() -> None:
    assert card("R1:" + T2 + "xx").card.value == ANNA
    assert parse_swipes("hello world") is None
    assert parse_swipes(ANNA) is None  # a plain number: the caller classifies it


def test_characters_a_stripe_cannot_hold() -> None:
    assert "cannot hold" in rejected(";29000abc=28?")
    assert "cannot hold" in rejected("%b2900000000011^anna^28?")


def test_tracks_that_disagree_are_rejected() -> None:
    assert "different numbers" in rejected(T1 + T2_BORIS)


def test_card_number_pattern() -> None:
    assert card(T2, number_pattern=r"^29\d{11}$").card.value == ANNA
    reason = rejected(";4111111111111111=2812?", number_pattern=r"^29\d{11}$")
    assert "card_number_pattern" in reason and "4111111111111111" not in reason


def test_number_in_the_discretionary_data() -> None:
    text = f";7000123=28{ANNA}?"
    swipe = card(text, track_number_pattern=r"=\d{2}(\d{13})")
    assert (swipe.card.value, swipe.card.form) == (ANNA, "track2")
    assert "track_number_pattern" in rejected(
        ";7000123=28?", track_number_pattern=r"=\d{2}(\d{13})"
    )


def test_track_1_in_another_format_is_rejected() -> None:
    assert "not a card" in rejected(f"%A{ANNA}^X^28?")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("%;?=^B0123456789E/ xA\x00é"), max_size=80))
def test_never_raises(text: str) -> None:
    result = parse_swipes(text)
    for read in result or []:
        assert isinstance(read, Swipe | Rejected)
