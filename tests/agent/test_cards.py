"""Recognising cards in what the POS and readers send, and keeping numbers out of text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tillgate.core.cards import CardRef, identify, mask, mask_in_text, normalize_phone
from tillgate.core.errors import ApiError, CardFormatError

NUMBER = "2900000012345"


@pytest.mark.parametrize(
    ("raw", "form"),
    [
        ("2900000012345", "number"),
        ("  2900000012345\n", "number"),
        ("2900 0000 1234 5", "number"),
        ("2900-0000-1234-5", "number"),
        (";2900000012345=2812?", "track2"),
        (";2900000012345=2812101000000?:", "track2"),  # LRC character after the end sentinel
        ("2900000012345=2812", "track2"),  # a keyboard-wedge reader without sentinels
        (";2900000012345?", "track2"),
        ("%B2900000012345^IVANOVA/ANNA^2812101000000000?", "track1"),
        ("%B2900000012345^IVANOVA/ANNA^2812?;", "track1"),
        ("B2900000012345^IVANOVA/ANNA^2812", "track1"),
        ("TGC:2900000012345", "qr"),
        ("tgc:2900000012345", "qr"),
        ("tillgate://card/2900000012345", "qr"),
    ],
)
def test_card_number_in_every_form(raw: str, form: str) -> None:
    assert identify(raw) == CardRef(kind="number", value=NUMBER, form=form)


def test_scanned_barcode_is_the_same_number() -> None:
    ref = identify("4601234567893", scanned=True)
    assert (ref.kind, ref.value, ref.form) == ("number", "4601234567893", "barcode")


@pytest.mark.parametrize(
    "raw",
    [
        "+79161234567",
        "+7 916 123 45 67",
        "+7 (916) 123-45-67",
        "8 (916) 123-45-67",
        "8 916 123-45-67",
        "89161234567",
        "79161234567",
        "9161234567",
        "(916) 123-45-67",
    ],
)
def test_phone_numbers_are_normalised(raw: str) -> None:
    assert identify(raw) == CardRef(kind="phone", value="+79161234567", form="phone")


def test_landline_and_foreign_phones() -> None:
    assert identify("8 (495) 123-45-67").value == "+74951234567"
    assert identify("+44 20 7946 0958").value == "+442079460958"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "hello",
        "12345",  # shorter than the default pattern allows
        "12345678901234567890",  # longer
        "+7 916 123",  # a plus makes it a phone, and this one is too short
        "(12) 34",
        "TGC:",
        "TGC:abc",
        ";abc=1?",
        "2900000012345=2812?x?",
        "٢٩٠٠٠٠٠٠١٢٣٤٥",  # digits, but not ASCII ones
        "2900000012345; DROP TABLE cards",
    ],
)
def test_anything_else_is_refused(raw: str) -> None:
    with pytest.raises(CardFormatError) as exc:
        identify(raw)
    assert isinstance(exc.value, ApiError)
    assert (exc.value.status, exc.value.code) == (400, "invalid_card")


@pytest.mark.parametrize("raw", ["1234567890123", ";1234567890123=2812?", "TGC:1234567890123"])
def test_program_pattern_applies_to_every_form_and_never_leaks_the_number(raw: str) -> None:
    with pytest.raises(CardFormatError) as exc:
        identify(raw, number_pattern=r"^29\d{11}$")
    assert "1234567890123" not in str(exc.value)
    assert "1234•••••0123" in str(exc.value)


def test_error_message_never_holds_the_input() -> None:
    raw = "%B2900000012345 IVANOVA/ANNA 2812?"  # a broken track 1: no field separators
    with pytest.raises(CardFormatError) as exc:
        identify(raw)
    assert NUMBER not in str(exc.value)
    assert "IVANOVA" not in str(exc.value)


def test_card_ref_repr_is_masked() -> None:
    ref = identify(NUMBER)
    assert NUMBER not in repr(ref)
    assert NUMBER not in str(ref)
    assert ref.masked == "2900•••••2345"


@pytest.mark.parametrize(
    ("number", "shown"),
    [
        ("2900000012345", "2900•••••2345"),
        ("4276123456789012", "4276••••••••9012"),
        ("123456789", "1234•6789"),
        ("12345678", "••••••78"),
        ("123456", "••••56"),
        ("12", "12"),
        ("+79161234567", "+7916•••4567"),
    ],
)
def test_mask(number: str, shown: str) -> None:
    assert mask(number) == shown


def test_mask_in_text() -> None:
    text = (
        "card ;2900000012345=2812? phone +7 (916) 123-45-67, "
        "%B2900000012345^IVANOVA/ANNA^2812?, printed 2900 0000 1234 5, "
        "at 2026-11-23 12:00:00 receipt R-000123 total 1234.50"
    )
    masked = mask_in_text(text)
    assert "0000001234" not in masked
    assert "123-45-67" not in masked
    assert "0000 1234" not in masked
    # What is not a card stays readable.
    assert "2026-11-23 12:00:00" in masked
    assert "R-000123" in masked
    assert "1234.50" in masked
    assert masked.count("2900•••••2345") == 3
    assert "+7916•••4567" in masked


@given(st.text(alphabet="0123456789", min_size=8, max_size=30), st.text(max_size=20))
def test_no_long_digit_run_survives_masking(digits: str, around: str) -> None:
    masked = mask_in_text(f"{around}{digits}{around}")
    assert digits not in masked


@given(st.from_regex(r"\A29[0-9]{11}\Z"))
def test_every_form_gives_the_same_number(number: str) -> None:
    forms = [number, f";{number}=2812?", f"%B{number}^A/B^2812?", f"TGC:{number}"]
    assert {identify(f).value for f in forms} == {number}


def test_normalize_phone_for_known_phone_fields() -> None:
    assert normalize_phone("4951234567") == "+74951234567"  # in a phone column, ten digits
    assert normalize_phone("8 (916) 123-45-67") == "+79161234567"
    assert normalize_phone("+1 212 555 0100") == "+12125550100"
    assert normalize_phone("") is None
    assert normalize_phone("phone") is None
    assert normalize_phone("12345") is None
    assert normalize_phone("+7 916 12") is None
