"""The ``tillgate`` command: parses arguments, wires things up, maps errors to exit codes.

Exit codes are decided here and nowhere else: 0 done, 1 a failure at run time, 2 bad usage,
bad config or a bad file, 130 interrupted. A foreseeable error is one line on stderr
(``tillgate: error: …``), never a traceback. Verbs import what they need when they run,
so ``tillgate --version`` stays instant on a slow till.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from tillgate.core import __version__
from tillgate.core.cards import mask_in_text
from tillgate.core.errors import ConfigError, ProgramError, TillgateError, UsageError

PROG = "tillgate"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    # argparse would print the usage block and exit on its own; we want one line and to
    # keep the exit code decision in main().
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb built so far."""
    parser = _Parser(
        prog=PROG,
        description="tillgate — offline-first loyalty agent for retail checkouts.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

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
        help="the printer's code page table where it differs from Epson's, e.g. 17=cp866",
    )
    decode.set_defaults(handler=_decode)

    intercept = verbs.add_parser(
        "intercept",
        help="receipt interception tools",
        description="Receipt interception tools.",
    )
    intercept_verbs = intercept.add_subparsers(
        dest="intercept_verb", metavar="VERB", parser_class=_Parser, required=True
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

    # Verbs that belong to other layers register themselves; their modules import nothing
    # heavy at module level, so building the parser stays instant.
    from tillgate.hq.cli import add_parser as add_hq_verbs
    from tillgate.sync.cli import add_parsers as add_sync_verbs

    add_sync_verbs(verbs)
    add_hq_verbs(verbs)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: $TILLGATE_CONFIG, else ./config.toml)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version finish here
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        if args.verb is None:
            raise UsageError(f"choose a verb (see '{PROG} --help')")
        return int(args.handler(args))
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except ProgramError as exc:
        # Each problem on its own line, led by the file unless the problem already names it.
        lines = [e if exc.source in e else f"{exc.source}: {e}" for e in exc.errors]
        return _fail("\n".join(lines), EXIT_USAGE)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TillgateError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`tillgate schema promotions | head`). Point stdout at
        # devnull so the interpreter's final flush does not print a second error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


def entry() -> NoReturn:
    """The console script: ``tillgate = "tillgate.agent.cli:entry"``."""
    raise SystemExit(main())


def _fail(message: str, code: int) -> int:
    # One line per problem, each a complete sentence a cashier can read out on the phone.
    for line in message.splitlines() or ["unknown error"]:
        print(f"{PROG}: error: {mask_in_text(line)}", file=sys.stderr)
    return code


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


def _doctor(args: argparse.Namespace) -> int:
    from .doctor import main as doctor

    return int(doctor(args))


def _demo(args: argparse.Namespace) -> int:
    from .demo import main as demo

    return int(demo(args))


def _schema(args: argparse.Namespace) -> int:
    from tillgate.core.rules.program import json_schema

    print(json.dumps(json_schema(), indent=2, ensure_ascii=False))
    return EXIT_OK


def _check_program(args: argparse.Namespace) -> int:
    from tillgate.core.rules.program import load_program_file

    loaded = load_program_file(args.file)  # a ProgramError lists every problem, in main()
    program = loaded.program
    print(
        f"{args.file}: ok: {program.name!r}, {len(loaded.promotions)} promotions, "
        f"{len(program.tiers)} tiers"
    )
    return EXIT_OK


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

    table: dict[int, str] = {}
    for pair in pairs:
        number, sep, codec = pair.partition("=")
        try:
            if not sep or not 0 <= int(number) <= 255:
                raise ValueError
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
    return EXIT_OK


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
    for k, ln in enumerate(read.lines):
        print(f"line {k}: {ln.name!r} qty {ln.qty} × {ln.price} = {ln.amount}  sku {ln.sku!r}")
    print(f"total: {read.total}")
    if read.ok:
        print("ok: the agent would price and confirm this receipt")
        return EXIT_OK
    for problem in read.problems:
        print(f"problem: {problem}")
    print("not readable: the agent would forward this receipt untouched and report it")
    return EXIT_FAILURE


if __name__ == "__main__":
    entry()
