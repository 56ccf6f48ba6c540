"""What the demo leaves behind: every printed receipt as text and PNG, and the summary."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from tillgate.drivers.escpos.parser import parse
from tillgate.drivers.escpos.png import render_png
from tillgate.drivers.escpos.text import render_text


class ReceiptFiles:
    """Numbered receipts in ``folder``: the bytes, their text and their picture.

    Drawn at the printers' ``columns`` (the demo's printers are 42 wide), not at a width
    guessed from the widest line: a line too long for the paper shows wrapped, as printed.
    """

    def __init__(self, folder: Path, *, columns: int) -> None:
        self.folder = folder
        self.columns = columns
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)

    def save(self, data: bytes, label: str) -> Path:
        """Write ``NN-label.bin``, ``.txt`` and ``.png``; the text file's path."""
        self.count += 1
        stem = self.folder / f"{self.count:02d}-{label}"
        stem.with_suffix(".bin").write_bytes(data)
        doc = parse(data)
        text = stem.with_suffix(".txt")
        text.write_text(render_text(doc, columns=self.columns), encoding="utf-8")
        render_png(doc, stem.with_suffix(".png"), columns=self.columns)
        return text


@dataclass
class Tally:
    """The demo's figures, from the agent's receipt events and the POS's own replies."""

    sales_api: int = 0
    sales_intercepted: int = 0
    with_card: int = 0
    cancelled: int = 0
    refunds: int = 0
    offline_sales: int = 0
    turnover: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)
    points_accrued: int = 0
    points_redeemed: int = 0
    points_reversed: int = 0
    points_returned: int = 0
    amount_returned: Decimal = Decimal(0)
    coupons_printed: int = 0
    coupons_redeemed: int = 0
    messages_printed: int = 0
    slips: int = 0
    notes: list[str] = field(default_factory=list)

    def sale(self, event: dict[str, Any], *, intercepted: bool) -> None:
        """Count a ``receipt`` event of status ``confirmed``."""
        if intercepted:
            self.sales_intercepted += 1
        else:
            self.sales_api += 1
        if event.get("card"):
            self.with_card += 1
        if event.get("offline"):
            self.offline_sales += 1
        self.turnover += Decimal(str(event.get("total", "0")))
        self.discount += Decimal(str(event.get("discount", "0")))
        self.points_accrued += int((event.get("accrued") or {}).get("points", 0))
        self.points_redeemed += int((event.get("redeemed") or {}).get("points", 0))

    def refund(self, reply: dict[str, Any]) -> None:
        self.refunds += 1
        self.points_reversed += int(reply.get("points_reversed", 0))
        self.points_returned += int(reply.get("points_returned", 0))
        self.amount_returned += Decimal(str(reply.get("amount_returned", "0")))


@dataclass(frozen=True, kw_only=True)
class SyncState:
    offline: bool
    last_sync: str | None
    unsynced_entries: int
    cards_checked: int
    cards_agreeing: int
    offline_seconds: float


def summary_rows(tally: Tally, sync: SyncState, *, seconds: float) -> list[tuple[str, str]]:
    """The summary as (what, figure) rows."""
    sales = tally.sales_api + tally.sales_intercepted
    return [
        (
            "receipts sold",
            f"{sales} ({tally.sales_api} POS API, {tally.sales_intercepted} intercepted)",
        ),
        ("  with a loyalty card", str(tally.with_card)),
        ("  sold while offline", str(tally.offline_sales)),
        ("  cancelled before payment", str(tally.cancelled)),
        ("turnover", f"{tally.turnover:.2f} ₽"),
        ("discounts given", f"{tally.discount:.2f} ₽"),
        ("points accrued", str(tally.points_accrued)),
        ("points redeemed", str(tally.points_redeemed)),
        (
            "refunds",
            f"{tally.refunds} ({tally.amount_returned:.2f} ₽ back; {tally.points_reversed} points "
            f"taken back, {tally.points_returned} returned)",
        ),
        ("coupons printed / redeemed", f"{tally.coupons_printed} / {tally.coupons_redeemed}"),
        ("printed receipts saved", f"{tally.slips} (text and PNG)"),
        ("offline spell", f"{sync.offline_seconds:.1f} s without head office"),
        (
            "sync",
            ("OFFLINE" if sync.offline else "online")
            + f", {sync.unsynced_entries} ledger entries waiting, last sync "
            + (sync.last_sync or "never")[:19].replace("T", " ")
            + " UTC",
        ),
        (
            "balances at HQ = at the till",
            f"{sync.cards_agreeing} of {sync.cards_checked} cards",
        ),
        ("demo took", f"{seconds:.1f} s"),
    ]


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    rule = "-" * (width + 2 + max(len(v) for _, v in rows))
    body = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return f"{rule}\n{body}\n{rule}\n"


def write_summary(out: Path, tally: Tally, sync: SyncState, *, seconds: float) -> str:
    """``summary.txt`` (the table) and ``summary.json`` in ``out``; the table."""
    text = table(summary_rows(tally, sync, seconds=seconds))
    notes = "".join(f"note: {n}\n" for n in tally.notes)
    (out / "summary.txt").write_text(text + notes, encoding="utf-8")
    figures = {k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(tally).items()}
    (out / "summary.json").write_text(
        json.dumps(
            {"tally": figures, "sync": asdict(sync), "seconds": round(seconds, 1)},
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    return text + notes
