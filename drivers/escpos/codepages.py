"""Which Python codec decodes the text after ``ESC t n``: printer data, not code.

Printers disagree about ``n`` (many Russian models put CP866 at 17 like Epson, some at other
numbers), so :func:`tillgate.drivers.escpos.parser.parse` takes a mapping that overrides
entries of :data:`EPSON_CODEPAGES`. Pages Python has no codec for (Katakana, Thai 42, TCVN …)
are left out: ``ESC t`` with such an ``n`` keeps the current code page.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping

from tillgate.core.errors import ConfigError

# Epson ESC/POS "character code table" numbers (TM-T88V/VI, TM-T20 …).
EPSON_CODEPAGES: Mapping[int, str] = {
    0: "cp437",  # PC437 USA, Standard Europe
    2: "cp850",  # PC850 Multilingual
    3: "cp860",  # PC860 Portuguese
    4: "cp863",  # PC863 Canadian-French
    5: "cp865",  # PC865 Nordic
    13: "cp857",  # PC857 Turkish
    14: "cp737",  # PC737 Greek
    15: "iso8859_7",  # ISO8859-7 Greek
    16: "cp1252",  # WPC1252
    17: "cp866",  # PC866 Cyrillic #2
    18: "cp852",  # PC852 Latin 2
    19: "cp858",  # PC858 Euro
    32: "cp720",  # PC720 Arabic
    33: "cp775",  # WPC775 Baltic Rim
    34: "cp855",  # PC855 Cyrillic
    35: "cp861",  # PC861 Icelandic
    36: "cp862",  # PC862 Hebrew
    37: "cp864",  # PC864 Arabic
    38: "cp869",  # PC869 Greek
    39: "iso8859_2",  # ISO8859-2 Latin 2
    40: "iso8859_15",  # ISO8859-15 Latin 9
    45: "cp1250",  # WPC1250 Latin 2
    46: "cp1251",  # WPC1251 Cyrillic
    47: "cp1253",  # WPC1253 Greek
    48: "cp1254",  # WPC1254 Turkish
    49: "cp1255",  # WPC1255 Hebrew
    50: "cp1256",  # WPC1256 Arabic
    51: "cp1257",  # WPC1257 Baltic Rim
    52: "cp1258",  # WPC1258 Vietnamese
    53: "kz1048",  # KZ-1048 Kazakhstan
}


def checked_codec(name: str, *, what: str) -> str:
    """``name`` if Python has that codec, else a :class:`ConfigError` saying which setting."""
    try:
        return codecs.lookup(name).name
    except (LookupError, TypeError) as exc:
        raise ConfigError(f"{what}: unknown text encoding {name!r}") from exc


def codepage_table(overrides: Mapping[int, str] | None = None) -> dict[int, str]:
    """The Epson table with ``overrides`` on top, every codec checked and normalised."""
    table = dict(EPSON_CODEPAGES)
    for n, name in (overrides or {}).items():
        if not isinstance(n, int) or not 0 <= n <= 255:
            raise ConfigError(f"codepages: ESC t takes 0..255, not {n!r}")
        table[n] = name
    return {n: checked_codec(name, what=f"codepages[{n}]") for n, name in table.items()}
