"""The till's own verbs of the ``tillgate`` command: run, doctor, demo, decode, and the rest.

:func:`add_parsers` registers them on the root command (:mod:`tillgate.cli`), as
:mod:`tillgate.sync.cli` and :mod:`tillgate.hq.cli` register theirs. A verb returns its exit
status (0 done, 1 a failure it reports itself) and raises the error tree's exceptions for
everything else; the root command turns those into one line on stderr and an exit code.
Verbs import what they need when they run, so ``tillgate --version`` stays instant on a
slow till.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tillgate.core.errors import ConfigError, TillgateError, UsageError


def add_parsers(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add the till's verbs to the ``tillgate`` command line."""
    run = verbs.add_parser(
        "run",
        help="run the agent daemon (POS API, devices, sync)",
        description="Run the agent daemon on this till until SIGINT/SIGTERM.",
    )
    _config_option(run)
    run.add_argument("--host", help="POS API address to bind (overrides pos_api.host)")
    run.add_argument(
        "--port", type=int, help="POS API port, 0 for any free one (overrides pos_api.port)"
    )
    run.add_argument(
        "--log-level",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        help="overrides logging.level",
    )
    run.set_defaults(handler=_run)

    schema = verbs.add_parser(
        "schema",
        help="print a JSON Schema",
        description="Print the JSON Schema of a file format as JSON.",
    )
    schema.add_argument("what", choices=["promotions"], help="promotions: the program file")
    schema.set_defaults(handler=_schema)

    check = verbs.add_parser(
        "check-program",
        help="validate a program/promotions file",
        description="Validate a program/promotions file (TOML or JSON) and list every problem.",
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument(
        "--products",
        metavar="CSV",
        help="a product list (CSV) to check the file's categories against "
        "(default: the config's [standalone] products_file, if any)",
    )
    check.add_argument(
        "--config",
        metavar="FILE",
        help="config whose [standalone] products_file to check against (default: $TILLGATE_CONFIG)",
    )
    check.set_defaults(handler=_check_program)

    decode = verbs.add_parser(
        "decode",
        help="ESC/POS bytes → readable receipt text, a PNG picture or the parsed document",
        description="Decode a file of ESC/POS bytes (a capture, or a file:// printer's output).",
    )
    decode.add_argument("file", metavar="FILE")
    decode.add_argument("--png", metavar="OUT", help="also draw the receipt into this PNG file")
    decode.add_argument("--json", action="store_true", help="print the parsed document as JSON")
    decode.add_argument(
        "--codepage",
        action="append",
        default=[],
        metavar="N=CODEC",
        help="the printer's code page table where it differs from Epson's, e.g. 17=cp866 "
        "(epson-katakana names Epson's page 1, with its box drawing)",
    )
    decode.set_defaults(handler=_decode)

    intercept = verbs.add_parser(
        "intercept",
        help="receipt interception tools",
        description="Receipt interception tools.",
    )
    intercept_verbs = intercept.add_subparsers(
        dest="intercept_verb", metavar="VERB", parser_class=type(intercept), required=True
    )
    itest = intercept_verbs.add_parser(
        "test",
        help="show what the receipt template extracts from a captured receipt",
        description="Show what the interception template reads off a captured receipt "
        "(ESC/POS bytes or plain text): lines, total and receipt number.",
    )
    itest.add_argument("file", metavar="FILE")
    itest.add_argument(
        "--config",
        metavar="FILE",
        help="config with the [intercept] template (default: $TILLGATE_CONFIG, else "
        "./config.toml if present, else the default template)",
    )
    itest.add_argument("--template", help="template name (overrides intercept.template)")
    itest.set_defaults(handler=_intercept_test)

    doctor = verbs.add_parser(
        "doctor",
        help="check config, data dir, SQLite, devices, HQ and clock; one line each",
        description="Check this till's set-up: config, data dir, SQLite, each device, HQ "
        "reachability and clock skew. One line per check, ok or fail with the fix; exit 1 "
        "when any check fails.",
    )
    _config_option(doctor)
    doctor.set_defaults(handler=_doctor)

    demo = verbs.add_parser(
        "demo",
        help="the whole system on this machine, no hardware: HQ, agent, virtual POS",
        description="Run head office, an agent with virtual devices and a virtual POS on "
        "this machine; ring up receipts through the POS API and ESC/POS interception; save "
        "every printed receipt as text and PNG and print a summary.",
    )
    demo.add_argument(
        "--out",
        metavar="DIR",
        default="tillgate-demo",
        help="where receipts, logs and data go (default: ./tillgate-demo)",
    )
    demo.add_argument(
        "--receipts",
        type=int,
        default=12,
        metavar="N",
        help="how many receipts the virtual POS rings up (default 12, at least 9)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep HQ and the agent running afterwards, with the hint panel open, until Ctrl+C",
    )
    demo.add_argument(
        "--port", type=int, default=0, help="the agent's POS API/panel port (default: any free)"
    )
    demo.set_defaults(handler=_demo)

    token = verbs.add_parser(
        "token",
        help="POS API tokens",
        description="POS API tokens ([pos_api] token).",
    )
    token_verbs = token.add_subparsers(
        dest="token_verb", metavar="VERB", parser_class=type(token), required=True
    )
    token_verbs.add_parser(
        "new",
        help="print a strong random POS API token",
        description="Print a random token for [pos_api] token (43 URL-safe characters, "
        "256 bits), alone on one line. A POS API reachable beyond loopback needs one of at "
        "least 32 characters.",
    ).set_defaults(handler=_token_new)


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $TILLGATE_CONFIG, else ./config.toml)",
    )


# ---------------------------------------------------------------- verbs


def _run(args: argparse.Namespace) -> int:
    from tillgate.core.config import load_config, resolve_config_path
    from tillgate.core.logs import setup_logging

    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["pos_api.host"] = args.host
    if args.port is not None:
        overrides["pos_api.port"] = args.port
    if args.log_level is not None:
        overrides["logging.level"] = args.log_level
    config = load_config(resolve_config_path(args.config, os.environ), overrides)
    setup_logging(config.logging.level, config.logging.file)
    from .daemon import run_daemon

    return int(run_daemon(config))


def _token_new(args: argparse.Namespace) -> int:
    import secrets

    print(secrets.token_urlsafe(32))
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import main as doctor

    return int(doctor(args))


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return int(demo(args))


def _schema(args: argparse.Namespace) -> int:
    from tillgate.core.rules.program import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return 0


def _check_program(args: argparse.Namespace) -> int:
    from tillgate.core.rules.program import load_program_file
    from tillgate.core.rules.program_checks import program_warnings

    loaded = load_program_file(args.file)  # a ProgramError: every problem, in tillgate.cli
    products = args.products or _config_products_file(args.config)
    categories: set[str] | None = None
    if products is not None:
        from tillgate.core.productfile import load_products_file

        categories = {p.category for p in load_products_file(products)}
    # Warnings do not fail the check: the file is valid, but probably not what was meant.
    for warning in program_warnings(loaded, known_categories=categories):
        print(f"tillgate: warning: {args.file}: {warning}", file=sys.stderr)
    program = loaded.program
    print(
        f"{args.file}: ok: {program.name!r}, {len(loaded.promotions)} promotions, "
        f"{len(program.tiers)} tiers"
    )
    return 0


def _config_products_file(explicit: str | None) -> str | None:
    """The [standalone] products_file of ``--config`` (or $TILLGATE_CONFIG), if it names one."""
    path = explicit or os.environ.get("TILLGATE_CONFIG")
    if not path:
        return None
    from tillgate.core.config import load_config

    found = load_config(Path(path)).standalone.products_file
    return str(found) if found is not None else None


def _read_input(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a directory, not a file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _codepage_table(pairs: Sequence[str]) -> dict[int, str]:
    import codecs

    from tillgate.drivers.escpos.codepages import TABLES  # pages without a Python codec

    table: dict[int, str] = {}
    for pair in pairs:
        number, sep, codec = pair.partition("=")
        try:
            if not sep or not 0 <= int(number) <= 255:
                raise ValueError
            if codec.lower() not in TABLES:
                codecs.lookup(codec)
        except (ValueError, LookupError) as exc:
            raise UsageError(f"--codepage {pair!r}: write it as N=CODEC, e.g. 17=cp866") from exc
        table[int(number)] = codec
    return table


def _decode(args: argparse.Namespace) -> int:
    from tillgate.drivers.escpos.parser import parse
    from tillgate.drivers.escpos.text import render_text

    data = _read_input(args.file)
    table = _codepage_table(args.codepage)
    doc = parse(data, codepages=table) if table else parse(data)
    if args.png:
        from tillgate.drivers.escpos.png import render_png

        try:
            render_png(doc, args.png)
        except OSError as exc:
            raise TillgateError(f"{args.png}: cannot write the picture: {exc}") from exc
        print(f"{args.png}: written", file=sys.stderr)
    if args.json:
        print(json.dumps(doc.to_json(), indent=2, ensure_ascii=False))
    else:
        print(render_text(doc), end="")
    return 0


def _intercept_test(args: argparse.Namespace) -> int:
    from tillgate.core.templates import load_template

    name, custom, table = "default", {}, {}
    config_path = args.config or os.environ.get("TILLGATE_CONFIG")
    if config_path is None and Path("config.toml").is_file():
        config_path = "config.toml"
    if config_path is not None:
        from tillgate.core.config import load_config

        section = load_config(Path(config_path)).intercept
        name, custom, table = section.template, section.templates, section.codepages
    template = load_template(args.template or name, custom)
    data = _read_input(args.file)
    if b"\x1b" in data or b"\x1d" in data or b"\x10" in data:  # ESC, GS, DLE: printer bytes
        from tillgate.drivers.escpos.parser import parse
        from tillgate.drivers.escpos.text import render_text

        text = render_text(parse(data, codepages=table) if table else parse(data))
    else:
        text = data.decode("utf-8", errors="replace")
    read = template.read(text)
    print(f"template: {template.name}")
    print(f"receipt number: {read.number or '(none found)'}")
    found, source = _intercept_categories(config_path, read)
    print(f"products: {source}")
    for k, ln in enumerate(read.lines):
        sku = repr(ln.sku) if ln.sku else "(none captured)"
        print(f"line {k}: {ln.name!r} qty {ln.qty} × {ln.price} = {ln.amount}  sku {sku}", end="")
        print(f"  category {found[k].category or '(none)'} ({found[k].match})" if found else "")
    print(f"total: {read.total}")
    for k, r in enumerate(found):
        if r.match in ("unmatched", "ambiguous"):
            why = "names two products" if r.match == "ambiguous" else "no product or rule"
            then = "left out of the program" if r.no_loyalty else "earns as any line"
            print(f"{r.match}: line {k} {read.lines[k].name!r} ({why}; {then})")
    if read.ok:
        print("ok: the agent would price and confirm this receipt")
        return 0
    for problem in read.problems:
        print(f"problem: {problem}")
    print("not readable: the agent would forward this receipt untouched and report it")
    return 1


def _intercept_categories(config_path: str | None, read: Any) -> tuple[list[Any], str]:
    """Each read line's category as the till would give it, and where the products came
    from: the till's data file (its product list and program in force), else the config's
    standalone program file alone."""
    import sqlite3

    from tillgate.agent.intercept import _request
    from tillgate.agent.store import products, program
    from tillgate.agent.store.db import Database
    from tillgate.agent.usecases.matching import resolve_lines
    from tillgate.core.config import load_config
    from tillgate.core.productmatch import NoProducts
    from tillgate.core.rules.engine import Catalog
    from tillgate.core.rules.program import ProgramFile, load_program_file, parse_program

    if not read.lines:
        return [], "(no lines to match)"
    try:
        lines = _request("intercept-test", read).lines
    except TillgateError as exc:
        return [], f"(lines not matched: {exc})"
    config = load_config(Path(config_path)) if config_path is not None else None
    path = config.till.data_dir / "tillgate.sqlite3" if config is not None else None
    rules = parse_program({"program": {"name": "-"}})
    if config is not None and config.standalone.program_file is not None:
        rules = load_program_file(config.standalone.program_file)
    where = f"none (no till data file at {path})" if path else "none (no config)"
    if path is not None and path.is_file():
        try:
            db = Database(path, readonly=True)
            try:
                with db.read() as conn:
                    body = program.body(conn)
                    pf = ProgramFile.model_validate_json(body) if body else rules
                    lookup = products.SqliteProducts(conn)
                    found = list(resolve_lines(lookup, Catalog.build(pf), lines))
                    return found, f"{products.count(conn)} (version {lookup.version}) in {path}"
            finally:
                db.close()
        except (TillgateError, sqlite3.Error) as exc:  # an older data file, or not ours to read
            where = f"none ({path}: {exc})"
    return list(resolve_lines(NoProducts(), Catalog.build(rules), lines)), f"{where}: rules alone"
