"""The ``tillgate hq products …`` verbs: import the product list, show it, list unmatched names.

Admin requests to a running head office, as the other ``hq`` verbs (:mod:`tillgate.hq.cli`):
``--hq URL`` and the admin token or a session of a role that may (admin, marketer).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction[Any], parser_class: type[Any]) -> None:
    """Add ``hq products`` and its verbs under ``hq``."""
    from .cli import _admin_options, _no_verb

    products = sub.add_parser(
        "products",
        help="the product list: import, show, unmatched names",
        description="The product list tills give lines their category from (sku, name, "
        "category; barcodes, aliases, tags, no_loyalty, age_restricted).",
    )
    products.set_defaults(handler=_no_verb(products))
    verbs = products.add_subparsers(dest="products_verb", metavar="VERB", parser_class=parser_class)
    imp = verbs.add_parser(
        "import",
        help="replace the product list from a CSV",
        description="Validate a product list CSV (UTF-8, ',' or ';' between fields, a header "
        "row: sku, name, category required; barcodes, aliases, tags as ';'-separated lists; "
        "no_loyalty, age_restricted as 1/true or empty) and make it the list every till "
        "downloads at its next sync. Any problem refuses the whole file, every one listed "
        "with its row and column; unknown columns are ignored with a warning.",
    )
    imp.add_argument("file", metavar="FILE.csv")
    _admin_options(imp)
    imp.set_defaults(handler=_import)
    show = verbs.add_parser(
        "show",
        help="the product list in force: version, count, categories",
        description="The product list head office sends to tills: its version, how many "
        "products, their categories, when and from which file it was imported.",
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    _admin_options(show)
    show.set_defaults(handler=_show)
    unmatched = verbs.add_parser(
        "unmatched",
        help="names tills could not match to a product, counted",
        description="The names of sold lines no product (by sku, barcode or name) and no "
        "[[categories.match]] rule matched, or that matched two products (ambiguous), "
        "counted from the receipts tills sent; most frequent first.",
    )
    unmatched.add_argument("--since", metavar="DATE", help="from this date (default: 30 days)")
    unmatched.add_argument("--limit", type=int, default=50, help="names shown (default 50)")
    unmatched.add_argument("--json", action="store_true", help="print JSON")
    _admin_options(unmatched)
    unmatched.set_defaults(handler=_unmatched)


def _import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tillgate.core.productfile import load_products

    from .cli import PROGRESS_FROM, _client, _read

    # Validated here first: every problem by row even when head office cannot be reached.
    loaded = load_products(args.file)
    for warning in loaded.warnings:
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    data = _read(args.file, "product list")
    size = len(data)

    def progress(sent: int) -> None:
        if sent >= size or sys.stderr.isatty():
            end = "\n" if sent >= size else ""
            print(
                f"\ruploading {args.file}: {sent * 100 // size}%", end=end, file=sys.stderr,
                flush=True,
            )  # fmt: skip

    with _client(args) as hq:
        out = hq.import_products(
            data,
            source=Path(args.file).name,
            progress=progress if size >= PROGRESS_FROM else None,
        )
    if out.get("unchanged"):
        print(
            f"{args.file}: the same {out['count']} products as version {out['version']} in "
            "force; nothing new for tills"
        )
        return 0
    print(
        f"{args.file}: {out['count']} products in {len(out['categories'])} categories, "
        f"published as product list version {out['version']}; tills download it at their "
        "next sync"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from .cli import _client

    with _client(args) as hq:
        out = hq.products()
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if out.get("version") is None:
        print("no product list yet: import one with 'tillgate hq products import FILE.csv'")
        return 0
    print(f"version     {out['version']}")
    print(f"products    {out['count']}")
    print(f"imported    {out['imported_at'][:19]} UTC from {out['source'] or '-'}")
    cats = out["categories"]
    print(f"categories  {len(cats)}: {', '.join(cats)}")
    return 0


def _unmatched(args: argparse.Namespace) -> int:
    from tillgate.core.errors import ConfigError

    from .cli import _client

    if not 1 <= args.limit <= 10_000:
        raise ConfigError("--limit must be between 1 and 10000")
    with _client(args) as hq:
        out = hq.products_unmatched(since=args.since, limit=args.limit)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    lines = out["lines"]
    print(
        f"since {out['since'][:10]}: {out['receipts']} receipts, {sum(lines.values())} lines "
        f"({', '.join(f'{k} {v}' for k, v in lines.items()) or 'none'})"
    )
    if lines.get("unknown"):
        print(f"  {lines['unknown']} lines came from tills that do not say how they matched")
    names = out["names"]
    if not names:
        print("no unmatched or ambiguous names")
        return 0
    print(f"{'COUNT':>7}  {'MATCH':<10} {'TILLS':>5}  NAME")
    for n in names:
        print(f"{n['count']:>7}  {n['match']:<10} {len(n['tills']):>5}  {n['name']}")
    if out.get("more"):
        print(f"... and {out['more']} more names (--limit)")
    return 0
