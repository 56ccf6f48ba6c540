"""The ``tillgate`` command: the root parser, the verbs of every part, errors to exit codes.

Installed as ``tillgate.cli`` (pyproject's py-modules): the one entry point of the console
script, of ``python -m tillgate.cli`` and of the frozen build (build/entry.py). It sits on
top of everything and nothing in the project imports it (the layering contract in
``.importlinter``); each part registers its own verbs:

- the till's (``run``, ``doctor``, ``demo``, ``decode``, …): :mod:`tillgate.agent.verbs`;
- the till's sync (``enroll``, ``sync``): :mod:`tillgate.sync.cli`;
- head office (``hq serve``, ``hq push``, …): :mod:`tillgate.hq.cli`.

Exit codes are decided here and nowhere else: 0 done, 1 a failure at run time, 2 bad usage,
bad config or a bad file, 130 interrupted. A foreseeable error is one line on stderr
(``tillgate: error: …``), never a traceback. Verbs import what they need when they run,
so ``tillgate --version`` stays instant on a slow till.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tillgate.agent.verbs import add_parsers as add_till_verbs
from tillgate.core import __version__
from tillgate.core.cards import mask_in_text
from tillgate.core.errors import ConfigError, ProgramError, TillgateError, UsageError
from tillgate.hq.cli import add_parser as add_hq_verbs
from tillgate.sync.cli import add_parsers as add_sync_verbs

PROG = "tillgate"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Parser(argparse.ArgumentParser):
    # argparse would print the usage block and exit on its own; we want one line and to
    # keep the exit code decision in main(). Every verb's parser is one of these: the
    # verbs' modules make their sub-verbs' parsers with type(parent).
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb: the till's, its sync's and head office's."""
    parser = _Parser(
        prog=PROG,
        description="tillgate — offline-first loyalty agent for retail checkouts.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    # The verbs' modules import nothing heavy at module level, so building the parser
    # stays instant.
    add_till_verbs(verbs)
    add_sync_verbs(verbs)
    add_hq_verbs(verbs)
    return parser


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
    """The console script: ``tillgate = "tillgate.cli:entry"``."""
    raise SystemExit(main())


def _fail(message: str, code: int) -> int:
    # One line per problem, each a complete sentence a cashier can read out on the phone.
    for line in message.splitlines() or ["unknown error"]:
        print(f"{PROG}: error: {mask_in_text(line)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    entry()
