"""``tillgate demo``: the whole system on one machine, with no hardware and no set-up."""

from __future__ import annotations

import argparse
from pathlib import Path

from tillgate.core.errors import ConfigError


def main(args: argparse.Namespace) -> int:
    """The ``demo`` verb: check the arguments, run the demo, return the exit status."""
    from .run import STORY_RECEIPTS, Demo, Options, prepare_out

    if args.receipts < STORY_RECEIPTS:
        raise ConfigError(
            f"--receipts {args.receipts}: at least {STORY_RECEIPTS} (the demo's story rings "
            "up that many; more adds random shoppers)"
        )
    if args.port and not 1 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: must be between 1 and 65535")
    out = Path(args.out)
    prepare_out(out)
    return Demo(
        Options(out=out, receipts=args.receipts, serve=args.serve, port=args.port),
        echo=lambda line: print(line, flush=True),
    ).run()
