"""python-escpos's printer database: profiles and their code pages, for config and drivers.

The config checks a printer's profile and code page when it is loaded; the drivers take
the same answer to select the code page (``ESC t n``). Both ask here.
"""

from __future__ import annotations

import codecs
import logging
import os
import shutil
from functools import cache
from typing import Any

from .errors import ConfigError


@cache
def escpos_module() -> Any:
    """python-escpos's capabilities module, imported once, without its import side effects.

    Importing it calls ``logging.basicConfig()`` (a second stderr handler on the root logger
    when logging is not set up yet: every line twice) and makes a new temporary directory
    for a pickle cache each time (one left behind per run). We take both back.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    preset = "ESCPOS_CAPABILITIES_PICKLE_DIR" in os.environ
    import escpos.capabilities as capabilities  # type: ignore[import-untyped]
    import escpos.printer  # type: ignore[import-untyped]  # noqa: F401 - Dummy, below

    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    if not preset:
        shutil.rmtree(capabilities.pickle_dir, ignore_errors=True)
    return capabilities


def capabilities() -> dict[str, Any]:
    caps: dict[str, Any] = escpos_module().CAPABILITIES
    return caps


@cache
def escpos_codepage(profile: str, codepage: str) -> tuple[str, int]:
    """python-escpos's name and the ``ESC t n`` number of ``codepage`` on ``profile``.

    Raises :class:`ConfigError` for an unknown profile or a code page the profile lacks,
    naming the ones it has.
    """
    prof = profile_of(profile)
    try:
        wanted = codecs.lookup(codepage).name
    except LookupError as exc:
        raise ConfigError(f"unknown code page {codepage!r} (e.g. cp866, cp1251)") from exc
    pages: dict[str, str] = prof.get_code_pages()
    encodings = capabilities()["encodings"]
    for name, number in pages.items():
        python_name = encodings.get(name, {}).get("python_encode")
        if not python_name:
            continue
        try:
            if codecs.lookup(python_name).name == wanted:
                return name, int(number)
        except LookupError:  # the printer database names codecs Python does not have
            continue
    known = ", ".join(
        sorted(
            encodings[n]["python_encode"]
            for n in pages
            if encodings.get(n, {}).get("python_encode")
        )
    )
    raise ConfigError(
        f"printer profile {profile!r} has no code page {codepage!r}; it has: {known or 'none'}"
    )


def profile_of(profile: str) -> Any:
    try:
        return escpos_module().get_profile(profile)
    except KeyError as exc:
        names = ", ".join(sorted(capabilities()["profiles"]))
        raise ConfigError(f"unknown printer profile {profile!r}; known: {names}") from exc
