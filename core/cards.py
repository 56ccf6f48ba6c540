"""Recognising a loyalty card in whatever the POS or a reader sends, and masking it.

A card reaches the till as a typed number, raw magnetic-stripe data, a printed barcode,
an app QR code or a phone number. :func:`identify` turns each into a :class:`CardRef`
(a card number or a normalised phone number) and says which form it came in; the
service then looks the card up. Pure functions: no I/O, no clock, no globals.

Card numbers and phones are personal data: every log line and error message shows them
through :func:`mask` (``2900•••••2345``), and the log filter runs :func:`mask_in_text`
over everything it writes (a magnetic track becomes its masked card number alone: the
name and expiry on a stripe are never echoed).

A chain's tills hold no more of a card holder than they need (docs/security.md, "Personal
data"): :func:`display_name` (``Анна И.``) instead of the full name, and
:func:`phone_lookup_hash`, a keyed hash of the phone, instead of the phone.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Literal

from .errors import CardFormatError

DEFAULT_NUMBER_PATTERN = r"^\d{6,19}$"
MASK = "•"

# Magnetic track 2 (ISO 7813): ;PAN=YYMM…? with an optional LRC byte after the end
# sentinel. Readers in keyboard-wedge mode often drop the sentinels, so each part is
# optional; the input is track data only if at least one of them is there.
_TRACK2 = re.compile(r"^(?P<start>;)?(?P<pan>\d{1,19})(?P<sep>=\d*)?(?P<end>\?.?)?$", re.ASCII)
# Magnetic track 1 (ISO 7813 format B): %BPAN^NAME^YYMM…? (+ LRC).
_TRACK1 = re.compile(r"^%?[Bb](?P<pan>\d{1,19})\^[^^]{0,26}\^[^?]*(?:\?.?)?$", re.ASCII)
# Payloads of the loyalty app's QR/barcode.
_QR = re.compile(r"^(?:TGC:|tillgate://card/)(?P<pan>\d{1,19})/?$", re.IGNORECASE | re.ASCII)
# Separators people and printed cards put inside numbers.
_SEPARATORS = re.compile(r"[\s\-]+")
_PHONE_CHARS = re.compile(r"^\+?[\d\s\-().]+$", re.ASCII)
# Spans of text that hold a card number or phone: whole magnetic tracks (the name, expiry
# and discretionary data go with the number), phone numbers however written, numbers
# printed in groups of four and long digit runs.
_SECRET_SPANS = re.compile(
    r"%?[Bb](?P<t1>\d{1,19})\^[^^\n]{0,26}\^[^?\s'\"]*\??"  # %B2900…^IVANOVA/ANNA^2812?
    r"|;(?P<t2>\d{1,19})=[^?\s'\"]*\??|(?P<t2b>\d{8,19})=\d*\??"  # ;2900…=2812?
    r"|\+\d(?:[\s\-()]{0,2}\d){7,14}"  # +7 (916) 123-45-67
    # 8 (916) 123-45-67, 916 123-45-67: ten digits grouped as Russian phones are written
    r"|(?<![\d+])(?P<ru>(?:[78][\s\-]*)?\(?\d{3}\)?[\s\-]*\d{3}[\s\-]\d{2}[\s\-]\d{2})(?!\d)"
    r"|(?<!\d)\d{4}(?:[ \-]\d{4}){2,}(?:[ \-]\d{1,4})?(?!\d)"  # 2900 0000 1234 5
    r"|\d{8,}"  # 2900000012345
)
# Words that end a Russian patronymic: "Иванова Анна Сергеевна" is written surname first.
_PATRONYMIC = re.compile(r"(?:вич|вна|ична|инична|оглы|кызы|улы|қызы)$", re.IGNORECASE)

CardForm = Literal["number", "track1", "track2", "barcode", "qr", "phone"]


@dataclass(frozen=True, kw_only=True)
class CardRef:
    """A card as presented: a card number or an E.164 phone number, and how it arrived."""

    kind: Literal["number", "phone"]
    value: str
    form: CardForm

    @property
    def masked(self) -> str:
        """The value as it may appear in logs, messages and API responses."""
        return mask(self.value)

    def __repr__(self) -> str:
        # A repr lands in logs and tracebacks; it must never show the full number.
        return f"CardRef(kind={self.kind!r}, value={self.masked!r}, form={self.form!r})"

    __str__ = __repr__


def identify(
    raw: str, *, number_pattern: str = DEFAULT_NUMBER_PATTERN, scanned: bool = False
) -> CardRef:
    """Recognise a card number or phone in raw POS/reader input.

    ``number_pattern`` is the program's ``card_number_pattern``: a number found in any
    form must match it. ``scanned`` says the text came from the barcode scanner, so a
    plain number is reported as form ``barcode`` (the digits are the same). Raises
    :class:`CardFormatError` (``invalid_card``) otherwise; the message describes the input
    without repeating it.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise CardFormatError("no card: the card field is empty")
    pattern = re.compile(number_pattern)

    if (m := _TRACK2.match(text)) and (m.group("start") or m.group("sep") or m.group("end")):
        return _number(m.group("pan"), "track2", pattern)
    if m := _TRACK1.match(text):
        return _number(m.group("pan"), "track1", pattern)
    if m := _QR.match(text):
        return _number(m.group("pan"), "qr", pattern)
    if phone := _phone(text):
        return CardRef(kind="phone", value=phone, form="phone")
    digits = _SEPARATORS.sub("", text)
    if digits.isdigit() and digits.isascii():
        # A 13-digit number typed by the cashier and the EAN-13 scanned from the plastic are
        # the same thing; only the caller knows which device it came from.
        return _number(digits, "barcode" if scanned else "number", pattern)
    raise CardFormatError(
        f"not a card: expected a card number, magnetic track, card QR code or phone number "
        f"(got {len(text)} characters)"
    )


def _number(pan: str, form: CardForm, pattern: re.Pattern[str]) -> CardRef:
    if not pattern.search(pan):
        raise CardFormatError(
            f"not a card number of this program: {mask(pan)} ({len(pan)} digits) does not "
            "match program.card_number_pattern"
        )
    return CardRef(kind="number", value=pan, form=form)


def _phone(text: str) -> str | None:
    """The phone number ``text`` looks like (E.164), or None if it does not look like one."""
    if not _PHONE_CHARS.match(text):
        return None
    if text.startswith("+") or "(" in text:
        # A plus or brackets make it a phone whatever the digits; a bad one is an error,
        # not a card number.
        phone = normalize_phone(text)
        if phone is None:
            raise CardFormatError(
                "not a phone number: expected +7 and 10 digits, or + and 8-15 digits "
                f"(got {len(_digits(text))} digits)"
            )
        return phone
    # Bare digits in Russian habits: 8 916 123-45-67, 7916…, or the ten digits alone
    # starting with 9 (mobile). So a program must not use 11-digit card numbers starting
    # 79/89 or 10-digit ones starting 9; the usual 13-digit EAN-13 numbers never collide.
    digits = _digits(text)
    if (len(digits) == 11 and digits[0] in "78" and digits[1] == "9") or (
        len(digits) == 10 and digits[0] == "9"
    ):
        return normalize_phone(text)
    return None


def normalize_phone(text: str) -> str | None:
    """A phone number written any usual way as E.164 (``+79161234567``); None if it is not one.

    For text known to be a phone (a CSV column, a form field): ten digits or 8/7 and ten
    digits are Russian numbers; with a leading ``+`` any 8-15 digits are accepted.
    """
    if not isinstance(text, str) or not _PHONE_CHARS.match(text.strip()):
        return None
    digits = _digits(text)
    if text.strip().startswith("+"):
        # +7 is Russia/Kazakhstan with ten digits after it; elsewhere E.164 allows 8-15.
        ok = len(digits) == 11 if digits.startswith("7") else 8 <= len(digits) <= 15
        return f"+{digits}" if ok else None
    if len(digits) == 11 and digits[0] in "78":
        return f"+7{digits[1:]}"
    if len(digits) == 10:
        return f"+7{digits}"
    return None


_NOT_DIGIT = re.compile(r"\D", flags=re.ASCII)


def _digits(text: str) -> str:
    return _NOT_DIGIT.sub("", text)


def mask(number: str) -> str:
    """A card number or phone with its middle hidden: ``2900•••••2345``, ``+7916•••4567``."""
    head, body = ("+", number[1:]) if number.startswith("+") else ("", number)
    if len(body) <= 8:
        # Too short to show both ends without giving most of it away.
        return head + MASK * max(len(body) - 2, 0) + body[-2:]
    return head + body[:4] + MASK * (len(body) - 8) + body[-4:]


def mask_in_text(text: str) -> str:
    """``text`` with every card number and phone in it masked (for logs and messages)."""
    return _SECRET_SPANS.sub(_mask_span, text)


def _mask_span(m: re.Match[str]) -> str:
    pan = m.group("t1") or m.group("t2") or m.group("t2b")
    if pan:  # a whole track: its masked number alone
        return mask(pan)
    if m.group("ru"):
        return mask(normalize_phone(m.group("ru")) or _digits(m.group("ru")))
    span = m.group(0)
    return mask(("+" if span.startswith("+") else "") + _digits(span))


def display_name(holder: str) -> str:
    """How a till names a card holder: the first name and the surname's initial (``Анна И.``).

    The cards file's ``holder`` is written first name first (``Анна Иванова``); the forms
    people also use are recognised: surname first with a patronymic (``Иванова Анна
    Сергеевна``: the last word ends as a patronymic does) and ``Surname, First`` (a comma).
    Middle names and patronymics are left out; a single word is kept as it is.
    """
    text = " ".join(holder.split())
    if "," in text:
        surname, _, rest = text.partition(",")
        words = [*rest.split(), *surname.split()[:1]]
    else:
        words = text.split(" ") if text else []
        if len(words) == 3 and _PATRONYMIC.search(words[2]):
            words = [words[1], words[0]]
    if len(words) < 2:
        return words[0] if words else ""
    return f"{words[0]} {words[-1][0].upper()}."


def phone_lookup_hash(key: bytes, phone: str) -> str:
    """The keyed hash a chain's till looks a phone up by (HMAC-SHA256, hex).

    ``phone`` is E.164 (:func:`normalize_phone`); ``key`` is the chain's look-up key from
    head office. Without the key the hash cannot be checked against guessed phones.
    """
    if not key:
        raise ValueError("phone_lookup_hash needs a key")
    return hmac.digest(key, phone.encode("ascii"), "sha256").hex()  # one C call
