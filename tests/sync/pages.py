"""Change pages as the tests read and spoil them, whatever shape their cards come in."""

from __future__ import annotations

from typing import Any


def as_objects(page: dict[str, Any]) -> dict[str, Any]:
    """A compact change page (``card_columns`` and ``card_rows``, what a till asks for) as
    one with its cards as objects (``cards``, what a head office from before sends): the
    till takes either."""
    if "card_rows" not in page:
        return page
    rest = {k: v for k, v in page.items() if k not in ("card_columns", "card_rows")}
    columns = page["card_columns"]
    return rest | {"cards": [dict(zip(columns, row, strict=True)) for row in page["card_rows"]]}
