"""Layout: what the agent prints comes out as ESC/POS that parses back to the right text."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from tillgate.core.config import PrinterSection
from tillgate.core.errors import ConfigError
from tillgate.core.printers import escpos_codepage
from tillgate.drivers.escpos.model import Barcode, Cut, Line, QRCode
from tillgate.drivers.escpos.parser import parse
from tillgate.drivers.escpos.text import render_text
from tillgate.drivers.layout import (
    LoyaltySummary,
    printable,
    render_block,
    render_job,
    summary_from_confirm,
)

CODE = "TG2JFA4G003RJ02FWH1W8973A"  # a real signed code's length: 25 characters
COUPON: dict[str, Any] = {
    "kind": "coupon",
    "title": "−15% на кофе",
    "code": CODE,
    "valid_until": "2026-12-31",
    "promotion": "coffee15",
}
CARD = "2900123456782345"


def lines(data: bytes, **kw: Any) -> list[str]:
    return [b.text for b in parse(data, **kw).blocks if isinstance(b, Line)]


def test_coupon_parses_back_in_cp866_with_a_native_qr_code() -> None:
    data = render_block([COUPON], profile="TM-T88V", codepage="cp866", columns=42)

    # ESC t 17 (CP866 on Epson's table) comes before the first Cyrillic byte.
    assert data.startswith(b"\x1bt\x11")
    assert "КУПОН".encode("cp866") in data
    text = lines(data)
    assert "КУПОН" in text
    assert "-15% на кофе" in text  # U+2212 minus made printable, not "?"
    assert "до 31.12.2026" in text
    assert CODE in text  # the code as text, for typing it in
    codes = [b for b in parse(data).blocks if isinstance(b, QRCode)]
    assert [q.data for q in codes] == [CODE]
    assert b"?" not in data


def test_ruble_sign_becomes_rub_not_a_question_mark() -> None:
    item = dict(COUPON, value="100 ₽")
    data = render_block([item], profile="TM-T88V", codepage="cp866", columns=42)

    assert "100 руб." in lines(data)
    assert b"?" not in data


def test_barcode_style_prints_code128_with_the_code() -> None:
    data = render_block(
        [COUPON], profile="CT-S651", codepage="cp866", columns=48, code_style="barcode"
    )

    codes = [b for b in parse(data).blocks if isinstance(b, Barcode)]
    assert [(c.symbology, c.data) for c in codes] == [("CODE128", CODE)]
    assert CODE in lines(data)


def test_auto_style_follows_the_profile() -> None:
    # A code too wide for 512 dots at 2 dots per module: the QR code instead.
    wide = render_block([COUPON], profile="TM-T88V", codepage="cp866", columns=42)
    assert any(isinstance(b, QRCode) for b in parse(wide).blocks)
    # 640 dots hold it as CODE128.
    fits = render_block([COUPON], profile="CT-S651", codepage="cp866", columns=48)
    assert any(isinstance(b, Barcode) for b in parse(fits).blocks)
    # A profile with neither native barcodes nor QR: the code as text only.
    plain = render_block([COUPON], profile="POS-5890", codepage="cp866", columns=32)
    assert not any(isinstance(b, Barcode | QRCode) for b in parse(plain).blocks)
    assert b"\x1dk" not in plain and b"\x1d(k" not in plain
    assert CODE in lines(plain, codepages={59: "cp866"})


def test_code_page_number_comes_from_the_profile() -> None:
    # The same code page has another ESC t number on another printer family.
    assert escpos_codepage("TM-T88V", "cp866") == ("CP866", 17)
    assert escpos_codepage("POS-5890", "cp866") == ("CP866", 59)
    data = render_block(
        [{"kind": "message", "title": None, "text": "Привет"}],
        profile="POS-5890",
        codepage="cp1251",
        columns=32,
    )
    assert data.startswith(b"\x1bt\x49")  # 73: CP1251 on this profile
    assert "Привет".encode("cp1251") in data
    assert "Привет" in lines(data, codepages={73: "cp1251"})


def test_block_has_no_cut_and_a_job_is_cut_once_at_the_end() -> None:
    block = render_block([COUPON], profile="TM-T88V", codepage="cp866", columns=42)
    assert not any(isinstance(b, Cut) for b in parse(block).blocks)
    assert b"\x1b@" not in block  # inside a POS receipt: never reset the printer

    job = render_job([COUPON], profile="TM-T88V", codepage="cp866", columns=42)
    blocks = parse(job).blocks
    assert job.startswith(b"\x1b@")
    cuts = [b for b in blocks if isinstance(b, Cut)]
    assert len(cuts) == 1 and cuts[0].partial
    assert isinstance(blocks[-1], Cut)


def test_messages_wrap_to_the_columns() -> None:
    text = "Приходите ещё, в субботу скидка на всю выпечку и кофе " * 3
    data = render_block(
        [{"kind": "prompt", "title": "Акция", "text": text}],
        profile="TM-T88V",
        codepage="cp866",
        columns=32,
    )
    printed = lines(data)
    assert printed[0] == "Акция"
    assert all(len(line) <= 32 for line in printed)
    assert " ".join(printed[1:]).split() == text.split()


def test_summary_masks_the_card_and_lines_up_the_numbers() -> None:
    summary = LoyaltySummary(card=CARD, earned=15, redeemed=40, balance=120, pending=15)
    data = render_block([summary], profile="TM-T88V", codepage="cp866", columns=42)

    assert CARD.encode() not in data
    text = render_text(parse(data), columns=42)
    assert "2900********2345" in text
    printed = lines(data)
    assert "Баланс баллов" + " " * 26 + "120" in printed
    assert all(len(line) <= 42 for line in printed)
    assert any(line.startswith("Списано баллов") and line.endswith("40") for line in printed)


def test_summary_from_a_confirm_response() -> None:
    response = {
        "receipt_id": "R1",
        "card": {"number": "2900••••••••2345", "balance": 120, "pending": 15},
        "accrued": {"points": 15, "available_from": "2026-01-15"},
        "redeemed": {"points": 0, "amount": "0.00"},
    }
    summary = summary_from_confirm(response)
    assert summary == LoyaltySummary(
        card="2900••••••••2345",
        earned=15,
        redeemed=0,
        balance=120,
        pending=15,
        available_from=date(2026, 1, 15),
    )
    assert summary_from_confirm({"receipt_id": "R2", "card": None}) is None
    data = render_block(
        [{"kind": "summary", "card": CARD, "earned": 15, "balance": 120}],
        profile="TM-T88V",
        codepage="cp866",
        columns=42,
        language="en",
    )
    assert any(line.startswith("Points balance") for line in lines(data))


def test_english_layout() -> None:
    data = render_block([COUPON], profile="TM-T88V", codepage="cp866", columns=42, language="en")
    assert "COUPON" in lines(data)
    assert "valid until 31.12.2026" in lines(data)


def test_control_characters_never_reach_the_printer() -> None:
    item = dict(COUPON, title="Кофе\x1b@\x1dV\x00\x10\x04\x01")
    data = render_block([item], profile="TM-T88V", codepage="cp866", columns=42)
    assert b"\x1b@" not in data and b"\x1dV" not in data and b"\x10\x04" not in data
    assert "Кофе@V" in lines(data)


def test_printable_substitutes_what_the_code_page_lacks() -> None:
    assert printable("100 ₽ «скидка» — café", "cp866") == '100 руб. "скидка" - cafe'
    assert printable("100 ₽", "cp437") == "100 RUB"
    assert printable("☃", "cp866") == "?"  # nothing readable to put instead


def test_bad_items_are_refused_clearly() -> None:
    kw: dict[str, Any] = {"profile": "TM-T88V", "codepage": "cp866", "columns": 42}
    with pytest.raises(ValueError, match="kind 'ticket'"):
        render_block([{"kind": "ticket"}], **kw)
    with pytest.raises(ValueError, match="needs its code"):
        render_block([dict(COUPON, code="")], **kw)
    with pytest.raises(ValueError, match="not a date"):
        render_block([dict(COUPON, valid_until="31/12/2026")], **kw)


def test_unknown_profile_or_missing_code_page_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown printer profile 'TM-NOPE'"):
        escpos_codepage("TM-NOPE", "cp866")
    with pytest.raises(ConfigError, match="has no code page 'cp866'"):
        render_block([COUPON], profile="simple", codepage="cp866", columns=42)
    # The config file is checked up front, so a typo never waits for the first coupon.
    with pytest.raises(ValidationError, match="unknown printer profile"):
        PrinterSection(url="file:///var/lib/tillgate/printer.bin", profile="TM-NOPE")
    with pytest.raises(ValidationError, match="has no code page 'cp1251'"):
        PrinterSection(url="COM3", profile="simple", codepage="cp1251")
    with pytest.raises(ValidationError, match="coupon_code"):
        PrinterSection(coupon_code="pdf417")  # type: ignore[arg-type]
    assert PrinterSection(profile="POS-5890", codepage="cp1251").status_poll is None


def test_python_escpos_leaves_logging_and_temp_dirs_alone() -> None:
    # python-escpos calls logging.basicConfig() when imported: every log line would show
    # twice next to the agent's own handler.
    code = (
        "import logging\n"
        "from tillgate.drivers.layout import render_block\n"
        "render_block([], profile='default', codepage='cp866', columns=42)\n"
        "import escpos.capabilities as c, os\n"
        "print(len(logging.getLogger().handlers), os.path.exists(c.pickle_dir))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["0", "False"]


@pytest.mark.parametrize(
    ("title", "text", "printed"),
    [
        # The print text names the promotion already: the name is not printed above it.
        (
            "Молочная неделя −10%",
            "Молочная неделя: −10% на молочное от 300 ₽",
            ["Молочная неделя: -10% на молочное от 300", "руб."],
        ),
        (
            "Винный клуб: дегустация",
            "Винный клуб: дегустация в субботу",
            ["Винный клуб: дегустация в субботу"],
        ),
        # A text that does not repeat the title gets the title above it.
        ("Акция", "Приходите в субботу", ["Акция", "Приходите в субботу"]),
        ("Акция", "", ["Акция"]),
    ],
)
def test_a_message_prints_its_promotions_name_once(
    title: str, text: str, printed: list[str]
) -> None:
    data = render_block(
        [{"kind": "message", "title": title, "text": text}],
        profile="TM-T88V",
        codepage="cp866",
        columns=42,
    )
    assert lines(data) == printed


def test_summary_names_the_lines_that_earned_nothing() -> None:
    summary = LoyaltySummary(
        card=CARD, earned=15, balance=120, no_points=("Сигареты (tobacco)", "Вино " * 12)
    )
    for language, heading in (("ru", "Без баллов и скидок:"), ("en", "No points or discounts:")):
        data = render_block(
            [summary], profile="TM-T88V", codepage="cp866", columns=42, language=language
        )
        printed = lines(data)
        at = printed.index(heading)
        assert printed[at + 1] == "  Сигареты (tobacco)"
        assert all(len(line) <= 42 for line in printed)
    confirm = {"card": {"number": CARD, "balance": 5}, "accrued": {"points": 1}}
    made = summary_from_confirm(confirm, no_points=["Сигареты"])
    assert made is not None and made.no_points == ("Сигареты",)
    plain = render_block(
        [LoyaltySummary(card=CARD)], profile="TM-T88V", codepage="cp866", columns=42
    )
    assert "Без баллов" not in " ".join(lines(plain))
