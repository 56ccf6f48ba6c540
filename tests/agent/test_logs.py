"""Logging: card numbers never reach a log line, whatever way they were logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tillgate.core.errors import ConfigError
from tillgate.core.logs import MaskingFilter, setup_logging

NUMBER = "2900000012345"


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Put the root logger back as it was after a test that sets logging up."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    scheduler_level = logging.getLogger("apscheduler").level
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(scheduler_level)
    logging.captureWarnings(False)


def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, args or None, exc_info)


def formatted(rec: logging.LogRecord) -> str:
    assert MaskingFilter().filter(rec) is True
    return logging.Formatter("%(message)s").format(rec)


def test_masks_the_message() -> None:
    assert formatted(record(f"card {NUMBER} presented")) == "card 2900•••••2345 presented"


def test_masks_arguments() -> None:
    text = formatted(record("card %s, track %r", NUMBER, f";{NUMBER}=2812?"))
    assert NUMBER not in text
    # A whole track becomes its masked number: the expiry on the stripe is not echoed.
    assert text == "card 2900•••••2345, track '2900•••••2345'"


def test_masks_mapping_arguments() -> None:
    rec = logging.LogRecord("t", logging.INFO, __file__, 1, "card %(card)s", None, None)
    rec.args = {"card": NUMBER}
    assert formatted(rec) == "card 2900•••••2345"


def test_masks_phones_and_tracebacks() -> None:
    try:
        raise ValueError(f"no card {NUMBER} for +7 (916) 123-45-67")
    except ValueError as exc:
        text = formatted(record("lookup failed", exc=exc))
    assert NUMBER not in text
    assert "123-45-67" not in text
    assert "2900•••••2345" in text
    assert "Traceback" in text


def test_a_broken_format_string_still_masks() -> None:
    rec = record(f"card {NUMBER} %d", "not a number")
    assert MaskingFilter().filter(rec) is True
    assert NUMBER not in str(rec.msg)


def test_setup_logging_to_a_file(tmp_path: Path, root_logging: None) -> None:
    path = tmp_path / "logs" / "tillgate.log"
    setup_logging("debug", path)
    setup_logging("DEBUG", path)  # a second call replaces the first handler
    logging.getLogger("tillgate.test").info("card %s swiped", NUMBER)
    logging.getLogger("tillgate.test").debug("track ;%s=2812?", NUMBER)
    for h in logging.getLogger().handlers:
        h.flush()
    text = path.read_text(encoding="utf-8")
    assert NUMBER not in text
    assert text.count("2900•••••2345") == 2
    assert "INFO    tillgate.test: card 2900•••••2345 swiped" in text
    assert len([h for h in logging.getLogger().handlers if h.get_name() == "tillgate"]) == 1


def test_setup_logging_to_stderr(capsys: pytest.CaptureFixture[str], root_logging: None) -> None:
    setup_logging("WARNING", None)
    log = logging.getLogger("tillgate.test")
    log.info("hidden %s", NUMBER)
    log.warning("shown %s", NUMBER)
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "shown 2900•••••2345" in err
    assert NUMBER not in err


def test_scheduler_chatter_is_quiet_unless_debugging(root_logging: None) -> None:
    setup_logging("INFO", None)
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
    setup_logging("DEBUG", None)
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.DEBUG


def test_bad_level_and_unwritable_file(tmp_path: Path, root_logging: None) -> None:
    with pytest.raises(ConfigError, match=r"logging\.level"):
        setup_logging("chatty", None)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"logging\.file: cannot write"):
        setup_logging("INFO", blocker / "tillgate.log")
