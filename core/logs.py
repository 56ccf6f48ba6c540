"""Logging set-up for the till, with card numbers masked in every line written.

Modules log through ``logging.getLogger(__name__)`` and never configure anything; the CLI
entry point calls :func:`setup_logging` once. The :class:`MaskingFilter` sits on the
handlers rather than on a logger, because a logger's filters do not see records that
propagate up from its children, while a handler sees every record it writes — from our
modules, uvicorn, httpx and APScheduler alike.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from .cards import mask_in_text
from .errors import ConfigError

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# A till's disk is small and nobody rotates logs by hand there.
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


class MaskingFilter(logging.Filter):
    """Masks card numbers and phones in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A broken format string: logging reports it itself; still mask the raw parts.
            record.msg = mask_in_text(str(record.msg))
            record.args = tuple(mask_in_text(str(a)) for a in _args(record))
            return True
        # The formatted message replaces msg/args, so no handler can format the raw args.
        record.msg = mask_in_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_in_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_in_text(record.stack_info)
        return True


def _args(record: logging.LogRecord) -> tuple[object, ...]:
    if record.args is None:
        return ()
    return record.args if isinstance(record.args, tuple) else (record.args,)


def setup_logging(level: str, file: Path | None) -> logging.Handler:
    """Send every log record at ``level`` and above to ``file`` (rotated) or to stderr.

    Replaces the handlers an earlier call installed, so calling it twice is harmless.
    Returns the installed handler. Raises ConfigError when the level is unknown or the file
    cannot be opened.
    """
    name = level.strip().upper()
    if name not in LEVELS:
        raise ConfigError(f"logging.level: {level!r} is not one of {', '.join(LEVELS)}")
    handler: logging.Handler
    if file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
            )
        except OSError as exc:
            raise ConfigError(f"logging.file: cannot write {file}: {exc.strerror or exc}") from exc
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(MaskingFilter())
    handler.set_name("tillgate")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "tillgate"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(name)
    # APScheduler logs every job run at INFO (the sweep, the file watch every few seconds):
    # that would bury a till's log. Its warnings and errors still come through.
    logging.getLogger("apscheduler").setLevel(name if name == "DEBUG" else "WARNING")
    logging.captureWarnings(True)
    return handler
