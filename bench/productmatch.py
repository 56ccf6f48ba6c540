"""Matching a 200-line receipt against a 100,000-product list in the till's SQLite (issue 14).

What calculate does before the engine runs (agent/usecases/matching.py): each line gets
its category by sku or barcode, else by its normalised name (a cut one by prefix), else by
the program's rules. Two receipts: one read off paper (printed names, no skus: exact, cut,
ambiguous and unknown names) and one from the POS API (skus and barcodes, no category).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

PRODUCTS = 100_000
LINES = 200
TARGET_MS = 5.0
CATS = ("dairy", "bakery", "grocery", "produce", "household", "coffee", "tobacco", "alcohol")
WORDS = ("Молоко", "Хлеб", "Гречка", "Яблоки", "Средство", "Кофе", "Сигареты", "Вино")


def _products(n: int):  # type: ignore[no-untyped-def]
    from tillgate.core.products import Product

    for i in range(n):
        c = i % len(CATS)
        yield Product(
            sku=f"SKU{i:07d}",
            name=f"{WORDS[c]} «Марка {i}» {i % 97} г" if i % 500 else "Хлеб белый нарезной",
            category=CATS[c],
            barcodes=(f"46{i:011d}",),
            aliases=(f"{WORDS[c]} М{i}",) if i % 3 == 0 else (),
            age_restricted=CATS[c] in ("tobacco", "alcohol"),
        )


def _printed(rng: random.Random):  # type: ignore[no-untyped-def]
    """A receipt read off 42-column paper: 160 exact names, 20 cut, 10 ambiguous, 10 unknown."""
    from tillgate.agent.usecases.request import SaleLine

    lines = []
    for k in range(LINES):
        i = rng.randrange(1, PRODUCTS)
        c = i % len(CATS)
        cut = False
        if k % 20 == 0:
            name = "Хлеб белый нарезной"  # 200 products share it: ambiguous
        elif k % 20 == 1:
            name = f"Гвозди строительные {k}"  # nobody's
        elif k % 10 == 2:
            name, cut = f"{WORDS[c]} «Марка {i}» {i % 97} г"[:14], True
        else:
            name = f"{WORDS[c]} МАРКА {i} {i % 97} Г".upper()
        lines.append(
            SaleLine(
                sku=name.upper()[:64],
                name=name,
                qty=Decimal(1),
                price=Decimal("99.90"),
                sku_known=False,
                name_cut=cut,
            )
        )
    return tuple(lines)


def _pos(rng: random.Random):  # type: ignore[no-untyped-def]
    """A POS-API receipt: skus and barcodes, no category."""
    from tillgate.agent.usecases.request import SaleLine

    return tuple(
        SaleLine(
            sku=f"SKU{i:07d}" if k % 2 else f"46{i:011d}",
            name="",
            qty=Decimal(1),
            price=Decimal("99.90"),
        )
        for k, i in enumerate(rng.randrange(PRODUCTS) for _ in range(LINES))
    )


def bench_productmatch(runs: int = 50) -> str:
    from tillgate.agent.store import products as store
    from tillgate.agent.store.db import Database
    from tillgate.agent.usecases.matching import resolve_lines
    from tillgate.core.rules.engine import Catalog
    from tillgate.core.rules.program import parse_program

    catalog = Catalog.build(
        parse_program(
            {
                "program": {"name": "bench", "unmatched_items": "exclude"},
                "categories": {
                    "match": [
                        {"pattern": r"\bсигарет", "category": "tobacco"},
                        {"pattern": r"\b(вино|водка|пиво|коньяк)\b", "category": "alcohol"},
                    ]
                },
            }
        )
    )
    rng = random.Random(14)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "till.sqlite3")
        t0 = time.perf_counter()
        with db.write() as conn:
            store.replace_all(conn, _products(PRODUCTS), version="bench")
        load_s = time.perf_counter() - t0
        rows = []
        for what, make in (("printed names (interception)", _printed), ("skus (POS API)", _pos)):
            times = []
            matches: dict[str, int] = {}
            for _ in range(runs):
                lines = make(rng)
                with db.read() as conn:
                    t0 = time.perf_counter()
                    found = resolve_lines(store.SqliteProducts(conn), catalog, lines)
                    times.append((time.perf_counter() - t0) * 1000)
                for r in found:
                    matches[r.match] = matches.get(r.match, 0) + 1
            times.sort()
            mix = ", ".join(f"{k} {v // runs}" for k, v in sorted(matches.items()))
            rows.append(
                f"| {what} | {mix} | **{statistics.median(times):.2f} ms** | "
                f"{times[int(len(times) * 0.95)]:.2f} ms |"
            )
        db.close()
    return (
        f"A {LINES}-line receipt matched against {PRODUCTS:,} products in the till's SQLite "
        f"(agent/usecases/matching.resolve_lines: sku and barcode, name, cut name, the "
        f"program's rules), {runs} receipts each, the page cache warm (target ≤ "
        f"{TARGET_MS:.0f} ms):\n\n"
        "| receipt | lines by match | median | p95 |\n| --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nWriting the list into an empty till first: {load_s:.1f} s. Load average "
        f"while measuring: {os.getloadavg()[0]:.1f} (the machine may be busy with other work)."
    )


if __name__ == "__main__":
    print(bench_productmatch())
