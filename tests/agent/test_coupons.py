"""Signed coupon codes: any till verifies them offline; nothing else verifies."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tillgate.core.errors import CouponInvalid, RulesError
from tillgate.core.rules.coupons import (
    ALPHABET,
    LAST_DAY,
    CouponSigner,
    SignedCode,
    canonical,
    generate_key,
    promotion_tag,
    serial_for,
    tag_collisions,
)

KEY = bytes(range(32))
SIGNER = CouponSigner(KEY)
UNTIL = date(2026, 12, 23)


def issue(promotion_id: str = "coffee-coupon", serial: int = 12345, until: date = UNTIL) -> str:
    return SIGNER.issue(promotion_id=promotion_id, serial=serial, valid_until=until)


def test_round_trip() -> None:
    code = issue()
    assert code.startswith("TG")
    assert 20 <= len(code) <= 26
    assert set(code[2:]) <= set(ALPHABET)
    assert SIGNER.verify(code) == SignedCode(
        promotion_tag=promotion_tag("coffee-coupon"), serial=12345, valid_until=UNTIL, code=code
    )


@pytest.mark.parametrize("until", [date(2020, 1, 1), date(2026, 2, 28), LAST_DAY])
@pytest.mark.parametrize("serial", [0, 1, 2**32 - 1])
def test_round_trip_at_the_edges(serial: int, until: date) -> None:
    signed = SIGNER.verify(issue(serial=serial, until=until))
    assert (signed.serial, signed.valid_until) == (serial, until)


def test_issue_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        issue(serial=-1)
    with pytest.raises(ValueError):
        issue(serial=2**32)
    with pytest.raises(ValueError):
        issue(until=date(2019, 12, 31))
    with pytest.raises(ValueError):
        CouponSigner(b"short")


def test_typing_tolerance() -> None:
    code = issue()
    body = code[2:]
    typed = [
        code.lower(),
        f"tg-{body[:4]}-{body[4:8]}-{body[8:12]}-{body[12:16]}-{body[16:]}",
        f" {code[:10]} {code[10:]} ",
        body,  # the prefix left out
        code.replace("0", "o").replace("1", "l"),
        code.replace("1", "I"),
    ]
    for text in typed:
        assert canonical(text) == code
        assert SIGNER.verify(text).code == code


def test_one_changed_symbol_is_caught_everywhere() -> None:
    code = issue()
    for i in range(2, len(code)):
        for c in ALPHABET:
            if c == code[i]:
                continue
            forged = code[:i] + c + code[i + 1 :]
            with pytest.raises(CouponInvalid):
                SIGNER.verify(forged)


def test_wrong_key() -> None:
    other = CouponSigner(bytes(reversed(KEY)))
    with pytest.raises(CouponInvalid, match="not genuine"):
        other.verify(issue())


@pytest.mark.parametrize(
    "text",
    ["", "TG", "TG123", "hello", "TG" + "U" * 23, "TG" + "0" * 24, "TG" + "!" * 23, "x" * 200],
)
def test_malformed(text: str) -> None:
    with pytest.raises(CouponInvalid):
        SIGNER.verify(text)


def test_truncated_and_extended() -> None:
    code = issue()
    with pytest.raises(CouponInvalid):
        SIGNER.verify(code[:-1])
    with pytest.raises(CouponInvalid):
        SIGNER.verify(code + "0")


def test_swapped_symbols() -> None:
    code = issue()
    swapped = code[:5] + code[6] + code[5] + code[7:]
    if swapped != code:
        with pytest.raises(CouponInvalid):
            SIGNER.verify(swapped)


def test_invalid_is_a_rules_error() -> None:
    assert issubclass(CouponInvalid, RulesError)


def test_signer_repr_hides_the_key() -> None:
    assert KEY.hex() not in repr(SIGNER)
    assert repr(KEY) not in repr(SIGNER)


def test_expired_is_asked_with_the_callers_date() -> None:
    signed = SIGNER.verify(issue())
    assert not signed.expired(UNTIL)
    assert signed.expired(date(2026, 12, 24))


def test_serial_is_deterministic_and_unambiguous() -> None:
    assert serial_for("till-1", "R-1", "coffee") == serial_for("till-1", "R-1", "coffee")
    assert serial_for("till-1", "R-1", "coffee") != serial_for("till-2", "R-1", "coffee")
    assert serial_for("ab", "c") != serial_for("a", "bc")
    assert 0 <= serial_for("x") < 2**32


def test_promotion_tag_is_stable() -> None:
    # The tag travels inside printed codes: it must never change between releases.
    assert promotion_tag("coffee-coupon") == promotion_tag("coffee-coupon")
    assert 0 <= promotion_tag("coffee-coupon") < 2**24
    assert promotion_tag("coffee-15") == 10636368


def test_tag_collisions_are_found() -> None:
    ids = [f"promo-{i}" for i in range(20000)]  # enough for the 24-bit tags to collide
    clashes = tag_collisions(ids)
    assert clashes
    for a, b in clashes:
        assert promotion_tag(a) == promotion_tag(b) and a != b
    assert tag_collisions(["a", "b", "a"]) == []


def test_generate_key() -> None:
    a, b = generate_key(), generate_key()
    assert len(a) == 32 and a != b
    CouponSigner(a)


ORIGINAL = issue(promotion_id="mailing-coupon-300", serial=777, until=date(2027, 6, 30))


@given(
    st.lists(
        st.tuples(st.integers(min_value=2, max_value=len(ORIGINAL) - 1), st.sampled_from(ALPHABET)),
        min_size=1,
        max_size=6,
    )
)
def test_random_mutations_never_verify(edits: list[tuple[int, str]]) -> None:
    chars = list(ORIGINAL)
    for i, c in edits:
        chars[i] = c
    mutated = "".join(chars)
    if mutated == ORIGINAL:
        assert SIGNER.verify(mutated).code == ORIGINAL
        return
    with pytest.raises(CouponInvalid):
        SIGNER.verify(mutated)


@given(st.text(max_size=40))
def test_any_text_is_refused_cleanly(text: str) -> None:
    try:
        signed = SIGNER.verify(text)
    except CouponInvalid:
        return
    # Only a spelling of the original can pass.
    assert signed.code == ORIGINAL
