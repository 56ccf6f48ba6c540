"""Which Python codec decodes the text after ``ESC t n``: printer data, not code.

Printers disagree about ``n`` (many Russian models put CP866 at 17 like Epson, some at other
numbers), so :func:`tillgate.drivers.escpos.parser.parse` takes a mapping that overrides
entries of :data:`EPSON_CODEPAGES`. Epson's page 1 (Katakana) has no Python codec; it is a
table here (:data:`EPSON_KATAKANA`, named ``epson-katakana``), since receiptline and others
draw ruled lines with its box-drawing cells. Pages with neither (Thai 42, TCVN …) are left
out: ``ESC t`` with such an ``n`` keeps the current code page.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping

from tillgate.core.errors import ConfigError

# Epson ESC/POS "character code table" numbers (TM-T88V/VI, TM-T20 …).
EPSON_CODEPAGES: Mapping[int, str] = {
    0: "cp437",  # PC437 USA, Standard Europe
    1: "epson-katakana",  # Katakana, with box drawing at 0x80-0x9F (see EPSON_KATAKANA)
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


# Epson character code table page 1: ASCII below 0x80; block elements and box drawing at
# 0x80-0x9F; JIS X 0201 half-width katakana at 0xA1-0xDF; more box drawing, card suits and
# a few kanji at 0xE0-0xFF. Checked against @point-of-sale/codepage-encoder's
# "epson/katakana" table (an independent transcription of Epson's chart).
EPSON_KATAKANA: str = (
    "".join(chr(b) for b in range(0x80))
    + "▁▂▃▄▅▆▇█▏▎▍▌▋▊▉┼"  # 0x80
    + "┴┬┤├▔─│▕┌┐└┘╭╮╰╯"  # 0x90
    + " " + "".join(chr(c) for c in range(0xFF61, 0xFF80))  # 0xA0: space, ｡ … ｿ
    + "".join(chr(c) for c in range(0xFF80, 0xFFA0))  # 0xC0: ﾀ … ﾟ
    + "═╞╪╡◢◣◥◤♠♥♦♣●○╱╲"  # 0xE0
    + "╳円年月日時分秒〒市区町村人▒\xa0"  # 0xF0
)  # fmt: skip
TABLES: Mapping[str, str] = {"epson-katakana": EPSON_KATAKANA}
"""Code pages decoded by a 256-character table rather than a Python codec, by name."""


def decode(raw: bytes, codec: str) -> str:
    """``raw`` as text in ``codec`` (a Python codec or a name in :data:`TABLES`); bad bytes
    become U+FFFD."""
    table = TABLES.get(codec)
    if table is not None:
        return "".join(table[b] for b in raw)
    return raw.decode(codec, errors="replace")


def checked_codec(name: str, *, what: str) -> str:
    """``name`` if Python has that codec or :data:`TABLES` that table, else a
    :class:`ConfigError` saying which setting."""
    if isinstance(name, str) and name.lower() in TABLES:
        return name.lower()
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
