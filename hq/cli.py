"""The ``tillgate hq …`` verbs: serve, push, cards, flags, enroll-code, coupons, tills
(products: :mod:`tillgate.hq.cli_products`).

``hq serve`` runs head office; the other verbs are admin requests to a running HQ
(``--hq URL``) with the admin token (``--token``, else ``$TILLGATE_HQ_TOKEN``, else the
``hq-admin.token`` file in the current directory, else the session ``hq login`` kept:
:mod:`tillgate.hq.cli_people`, which also has the verbs of users, tokens and roles). Exit
codes are the ``tillgate`` command's (:mod:`tillgate.cli`): 2 for bad usage, config or a
bad file, 1 for a failure at run time such as an HQ that does not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from .client import AdminClient

ENV_TOKEN = "TILLGATE_HQ_TOKEN"
PROGRESS_FROM = 1 << 20  # files from 1 MiB up get a progress bar


def add_parser(verbs: argparse._SubParsersAction[Any]) -> None:
    """Add ``hq`` and its sub-verbs to the ``tillgate`` command line."""
    hq = verbs.add_parser(
        "hq",
        help="head office: the server and its admin verbs",
        description="Head office: run the server, publish the program, manage cards, "
        "tills and coupons.",
    )
    hq.set_defaults(handler=_no_verb(hq))
    sub = hq.add_subparsers(dest="hq_verb", metavar="VERB", parser_class=type(hq))

    serve = sub.add_parser(
        "serve",
        help="run the head-office server",
        description="Run head office until SIGINT/SIGTERM. On first start it creates an admin "
        "token (hq-admin.token) in the data directory and says where.",
    )
    serve.add_argument(
        "--db",
        metavar="URL",
        help="database: a SQLite file (a path; default: hq.sqlite3 in the data "
        "directory), or postgresql://user:password@host/db",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8700, help="port, 0 for any free one")
    serve.add_argument(
        "--data-dir",
        metavar="DIR",
        type=Path,
        default=Path(),
        help="admin token and default database (default: the current directory)",
    )
    serve.add_argument("--tls-cert", metavar="FILE", type=Path, help="TLS certificate (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", type=Path, help="TLS private key (PEM)")
    serve.add_argument(
        "--insecure-http",
        action="store_true",
        help="serve plain HTTP on an address beyond loopback (without it, such an address "
        "needs --tls-cert and --tls-key): only behind a TLS proxy or on a trusted network",
    )
    serve.add_argument(
        "--expire-every",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="how often expired lots are written off (default 300)",
    )
    serve.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    serve.set_defaults(handler=_serve)

    push = sub.add_parser(
        "push",
        help="validate and publish a program/promotions file",
        description="Validate a program/promotions file (TOML or JSON) and publish it to "
        "every till; a file with errors is refused whole, with every error by path.",
    )
    push.add_argument("file", metavar="FILE")
    _admin_options(push)
    push.set_defaults(handler=_push)

    cards = sub.add_parser("cards", help="import or look at cards", description="Cards at HQ.")
    cards.set_defaults(handler=_no_verb(cards))
    cards_sub = cards.add_subparsers(dest="cards_verb", metavar="VERB", parser_class=type(hq))
    imp = cards_sub.add_parser(
        "import",
        help="import or update cards from CSV",
        description="Import or update cards from a CSV (number, holder, phone, birthday, tier, "
        "segments, status, balance). If any row is bad nothing is imported and every bad row "
        "is listed.",
    )
    imp.add_argument("file", metavar="FILE.csv")
    _admin_options(imp)
    imp.set_defaults(handler=_cards_import)
    show = cards_sub.add_parser(
        "show",
        help="a card as HQ knows it",
        description="A card as HQ knows it: holder, tier, balance, pending and its entries.",
    )
    show.add_argument("number", metavar="NUMBER")
    show.add_argument("--json", action="store_true", help="print JSON")
    _admin_options(show)
    show.set_defaults(handler=_cards_show)

    snap = cards_sub.add_parser(
        "snapshot",
        help="build the card snapshot new tills start from",
        description="Build the card snapshot new tills start from now (hq serve builds one "
        "when the cards changed enough; docs/sync-protocol.md, 'Card snapshot').",
    )
    _admin_options(snap)
    snap.set_defaults(handler=_cards_snapshot)

    adjust = cards_sub.add_parser(
        "adjust",
        help="head office's own credit or debit of a card",
        description="Credit (POINTS > 0) or debit (POINTS < 0, e.g. -50) a card as head "
        "office: an 'adjust' entry every till gets at its next sync, and an audit row saying "
        "who, when and why. Tills never write 'adjust'.",
    )
    adjust.add_argument("number", metavar="CARD")
    adjust.add_argument("points", metavar="POINTS", type=int, help="signed: -50 debits")
    adjust.add_argument("--reason", required=True, help="why (kept in the audit log)")
    _admin_options(adjust)
    adjust.set_defaults(handler=_cards_adjust)

    flags = sub.add_parser(
        "flags",
        help="quarantined entries: list, release, reject",
        description="Entries head office would not take from a till (quarantined: kept, "
        "not spendable anywhere) and what needs a person.",
    )
    flags.set_defaults(handler=_no_verb(flags))
    flags_sub = flags.add_subparsers(dest="flags_verb", metavar="VERB", parser_class=type(hq))
    flist = flags_sub.add_parser(
        "list",
        help="quarantined entries, with why",
        description="Quarantined entries still open (id, till, card, kind, points, reason, "
        "the entry's time), and a count of the other flags.",
    )
    flist.add_argument("--all", action="store_true", help="also those already decided")
    flist.add_argument("--json", action="store_true", help="print JSON")
    _admin_options(flist)
    flist.set_defaults(handler=_flags_list)
    for verb, helptext in (
        ("release", "let a quarantined entry count: its points become spendable everywhere"),
        ("reject", "keep a quarantined entry out for good: it never counts anywhere"),
    ):
        decide = flags_sub.add_parser(
            verb, help=helptext, description=f"{helptext[0].upper()}{helptext[1:]}. Final; audited."
        )
        decide.add_argument("flag", metavar="ID", type=int, help="the id 'hq flags list' shows")
        decide.add_argument("--reason", help="why (kept in the audit log)")
        _admin_options(decide)
        decide.set_defaults(handler=_flags_decide, release=verb == "release")

    code = sub.add_parser(
        "enroll-code",
        help="issue a one-time enrolment code for a till",
        description="Issue a one-time enrolment code (valid 7 days) for a till; the code is "
        "printed alone on the last line.",
    )
    code.add_argument("--store", required=True)
    code.add_argument("--till", required=True)
    _admin_options(code)
    code.set_defaults(handler=_enroll_code)

    coupons = sub.add_parser("coupons", help="coupon codes", description="Coupon codes.")
    coupons.set_defaults(handler=_no_verb(coupons))
    coupons_sub = coupons.add_subparsers(dest="coupons_verb", metavar="VERB", parser_class=type(hq))
    issue = coupons_sub.add_parser(
        "issue",
        help="issue signed coupon codes",
        description="Issue signed coupon codes for a coupon promotion of the program in force.",
    )
    issue.add_argument("promotion", metavar="PROMOTION")
    issue.add_argument("--count", type=int, required=True, help="how many codes (1-100000)")
    issue.add_argument("--out", metavar="FILE", help="write the codes here, one per line")
    _admin_options(issue)
    issue.set_defaults(handler=_coupons_issue)
    keys = coupons_sub.add_parser(
        "keys",
        help="the coupon signing keys",
        description="The coupon signing keys: id, fingerprint, made, revoked (never a key).",
    )
    _admin_options(keys)
    keys.set_defaults(handler=_coupon_keys)
    rotate = coupons_sub.add_parser(
        "rotate-key",
        help="start a new coupon signing key",
        description="Make a new coupon signing key: every new code is signed with it; codes "
        "signed with older keys verify until they expire. Its id is printed alone on the "
        "last line.",
    )
    _admin_options(rotate)
    rotate.set_defaults(handler=_coupon_key_rotate)
    revoke_key = coupons_sub.add_parser(
        "revoke-key",
        help="refuse every code of one coupon key",
        description="Revoke a coupon signing key: every code signed with it is refused, at "
        "head office and at every till once it syncs. Rotate first if it is the newest.",
    )
    revoke_key.add_argument("key_id", metavar="ID", type=int, help="the key's id (hq coupons keys)")
    _admin_options(revoke_key)
    revoke_key.set_defaults(handler=_coupon_key_revoke)

    till_cmd = sub.add_parser("tills", help="enrolled tills", description="Enrolled tills.")
    till_cmd.set_defaults(handler=_no_verb(till_cmd))
    tills_sub = till_cmd.add_subparsers(dest="tills_verb", metavar="VERB", parser_class=type(hq))
    lst = tills_sub.add_parser("list", help="every enrolled till", description="Every till.")
    _admin_options(lst)
    lst.set_defaults(handler=_tills_list)
    rev = tills_sub.add_parser(
        "revoke",
        help="revoke a till's credential",
        description="Revoke a till's credential at once (e.g. a stolen till); enrol it again "
        "with a new code to let it back.",
    )
    rev.add_argument("till", metavar="TILL")
    _admin_options(rev)
    rev.set_defaults(handler=_tills_revoke)

    # People and roles: login, logout, users, tokens, settings, audit, cards block|unblock.
    from .cli_people import register

    register(sub, cards_sub, type(hq))

    # The product list: import, show, unmatched names.
    from .cli_products import register as register_products

    register_products(sub, type(hq))


def _admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hq",
        metavar="URL",
        help="head office (default: [hq] url of --config / $TILLGATE_CONFIG, else "
        "http://127.0.0.1:8700)",
    )
    parser.add_argument(
        "--token", help=f"admin token (default: ${ENV_TOKEN}, else ./hq-admin.token)"
    )
    parser.add_argument("--config", metavar="FILE", help="a till config to take [hq] url from")


def _no_verb(parser: argparse.ArgumentParser) -> Any:
    def handler(args: argparse.Namespace) -> int:
        from tillgate.core.errors import UsageError

        raise UsageError(f"choose a verb (see '{parser.prog} --help')")

    return handler


# ---------------------------------------------------------------- admin plumbing


def _hq_url(args: argparse.Namespace) -> str:
    from .address import DEFAULT_URL

    if args.hq:
        return str(args.hq)
    from tillgate.core.config import ENV_CONFIG, load_config

    config = args.config or os.environ.get(ENV_CONFIG)
    if config:
        url = load_config(Path(config)).hq.url
        if url:
            return url
    return DEFAULT_URL


def _token(args: argparse.Namespace) -> str:
    from tillgate.core.errors import ConfigError

    from .address import ADMIN_TOKEN_FILE

    if args.token:
        return str(args.token)
    if os.environ.get(ENV_TOKEN):
        return os.environ[ENV_TOKEN].strip()
    path = Path(ADMIN_TOKEN_FILE)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the admin token {path}: {exc}") from exc
    if not token:
        from .cli_people import saved_session

        token = saved_session(_hq_url(args)) or ""
    if not token:
        raise ConfigError(
            f"no admin token: pass --token, set {ENV_TOKEN}, run where 'tillgate hq serve' "
            f"keeps {ADMIN_TOKEN_FILE}, or sign in with 'tillgate hq login NAME'"
        )
    return token


def _client(args: argparse.Namespace) -> AdminClient:
    from .client import AdminClient

    return AdminClient(_hq_url(args), _token(args), operator=_operator())


def _operator() -> str | None:
    """Who runs the verb, for head office's audit log (``user@host``)."""
    import getpass
    import socket

    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (OSError, KeyError):  # no login name (a container with no passwd entry)
        return None


def _open(path: str, what: str) -> BinaryIO:
    from tillgate.core.errors import ConfigError

    try:
        return Path(path).open("rb")
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} not found") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _read(path: str, what: str) -> bytes:
    from tillgate.core.errors import ConfigError

    try:
        return Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path} not found") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


# ---------------------------------------------------------------- verbs


def _serve(args: argparse.Namespace) -> int:
    from tillgate.core.logs import setup_logging

    from .server import ServeOptions, serve

    setup_logging(args.log_level, None)
    return serve(
        ServeOptions(
            db=args.db,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            insecure_http=args.insecure_http,
            expire_every=args.expire_every,
        )
    )


def _push(args: argparse.Namespace) -> int:
    from tillgate.core.rules.program import load_program_file

    # Validated here first: every error by path even when HQ cannot be reached.
    loaded = load_program_file(args.file)
    text = _read(args.file, "program file").decode("utf-8")
    with _client(args) as hq:
        out = hq.push_program(text, toml=not args.file.lower().endswith(".json"), source=args.file)
    print(
        f"{args.file}: published as version {out['version']} ({loaded.program.name!r}, "
        f"{len(loaded.promotions)} promotions); tills pick it up on their next sync"
    )
    return 0


def _cards_import(args: argparse.Namespace) -> int:
    from tillgate.core.errors import ConfigError

    file = _open(args.file, "cards file")  # sent a chunk at a time, never read whole
    size = os.fstat(file.fileno()).st_size
    tty = sys.stderr.isatty()

    def progress(sent: int) -> None:
        width = 30
        done = width * sent // size
        end = "\n" if sent >= size else ""
        text = f"uploading {args.file}: [{'#' * done}{'.' * (width - done)}] {sent * 100 // size}%"
        if tty:
            print(f"\r{text}", end=end, file=sys.stderr, flush=True)
        elif sent >= size:
            print(text, file=sys.stderr, flush=True)

    with file, _client(args) as hq:
        try:
            out = hq.import_cards(
                file, source=args.file, progress=progress if size >= PROGRESS_FROM else None
            )
        except OSError as exc:
            raise ConfigError(f"cannot read cards file {args.file}: {exc.strerror or exc}") from exc
    for warning in out.get("warnings", []):
        print(f"{args.file}: warning: {warning}", file=sys.stderr)
    print(f"{args.file}: {out['imported']} cards imported, {out['updated']} updated")
    return 0


def _cards_snapshot(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.build_card_snapshot()
    print(f"card snapshot {out['id']}: {out['cards']} cards as of change {out['change_id']}, "
          f"{out['size'] / 2**20:.1f} MiB in {out['parts']} parts")  # fmt: skip
    return 0


def _cards_show(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        card = hq.card(args.number)
    if args.json:
        print(json.dumps(card, indent=2, ensure_ascii=False))
        return 0
    print(f"card     {card['number']}  ({card['status']})")
    print(f"holder   {card['holder'] or '-'}")
    print(f"tier     {card['tier'] or '-'}")
    print(f"balance  {card['balance']}  (pending {card['pending']})")
    if card.get("negative_since"):
        print(f"NEGATIVE since {card['negative_since']}")
    print(f"entries  {len(card['entries'])}")
    for e in card["entries"]:
        print(
            f"  {e['created_at'][:19]}  {e['till']:<10} #{e['seq']:<6} {e['kind']:<8} "
            f"{e['points']:>+8}  {e['receipt_id'] or ''}"
            + (f"  [quarantine: {e['quarantine']}]" if e.get("quarantine") else "")
        )
    return 0


def _enroll_code(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.enroll_code(store=args.store, till=args.till)
    print(
        f"enrolment code for till {out['till']} of store {out['store']} (single use, valid "
        f"until {out['expires_at'][:16]} UTC); on the till run: tillgate enroll CODE --hq "
        f"{_hq_url(args)}"
    )
    print(out["code"])
    return 0


def _coupons_issue(args: argparse.Namespace) -> int:
    from tillgate.core.errors import ConfigError

    if not 1 <= args.count <= 100_000:
        raise ConfigError("--count must be between 1 and 100000")
    with _client(args) as hq:
        out = hq.issue_coupons(args.promotion, args.count)
    codes = out["codes"]
    if args.out:
        try:
            Path(args.out).write_text("".join(f"{c}\n" for c in codes), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {args.out}: {exc.strerror or exc}") from exc
    else:
        for c in codes:
            print(c)
    print(
        f"{len(codes)} codes for {out['promotion']}, valid until {out['valid_until']}"
        + (f", written to {args.out}" if args.out else ""),
        file=sys.stderr,
    )
    return 0


def _coupon_keys(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.coupon_keys()
    for k in out["keys"]:
        state = f"revoked {k['revoked_at']}" if k["revoked_at"] else "verifies"
        signs = ", signs new codes" if k["signs"] else ""
        print(f"{k['id']}\t{k['fingerprint']}\tmade {k['created_at']}\t{state}{signs}")
    return 0


def _coupon_key_rotate(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.rotate_coupon_key()
    previous = out.get("previous")
    print(
        f"coupon key {out['key_id']} (fingerprint {out['fingerprint']}) signs new codes"
        + (f"; codes of key {previous} and older verify until they expire" if previous else ""),
        file=sys.stderr,
    )
    print(out["key_id"])
    return 0


def _coupon_key_revoke(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.revoke_coupon_key(args.key_id)
    if out.get("changed"):
        print(f"coupon key {out['key_id']} revoked: its codes are refused from now on")
    else:
        print(f"coupon key {out['key_id']} was already revoked ({out['revoked_at']})")
    return 0


def _tills_list(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.tills()
    for t in out["tills"]:
        state = "REVOKED" if t["revoked"] else "ok"
        print(
            f"{t['store']:<12} {t['till']:<12} through_seq {t['through_seq']:<8} "
            f"last push {t['last_push'] or '-'}  last seen {t['last_seen'] or '-'}  {state}"
        )
    return 0


def _tills_revoke(args: argparse.Namespace) -> int:
    with _client(args) as hq:
        out = hq.revoke_till(args.till)
    print(f"till {out['till']}: credential revoked at {out['revoked_at']}")
    return 0


def _cards_adjust(args: argparse.Namespace) -> int:
    from tillgate.core.cards import mask
    from tillgate.core.errors import ConfigError

    if args.points == 0:
        raise ConfigError("POINTS must not be 0: > 0 credits the card, < 0 debits it")
    with _client(args) as hq:
        out = hq.adjust(args.number, args.points, args.reason)
    print(
        f"card {mask(out['card'])}: {out['points']:+d} points by head office "
        f"({args.reason}); balance now {out['balance']}. Tills get it at their next sync."
    )
    return 0


def _flags_list(args: argparse.Namespace) -> int:
    from tillgate.core.cards import mask

    with _client(args) as hq:
        out = hq.flags(decided=args.all)
    quarantined = out.get("quarantined", [])
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if quarantined:
        print(
            f"{'ID':>6}  {'TILL':<12} {'CARD':<15} {'KIND':<8} {'POINTS':>15}  "
            f"{'REASON':<20} {'TIME (UTC)':<19}" + ("  STATUS" if args.all else "")
        )
    for q in quarantined:
        print(
            f"{q['id']:>6}  {q['till']:<12} {mask(q['card']):<15} {q['kind']:<8} "
            f"{q['points']:>+15d}  {q['code']:<20} {q['created_at'][:19]:<19}"
            + (f"  {q['status']}" if args.all else "")
        )
        print(f"{'':>8}{q['reason']}")
    others = (
        f"{len(out.get('negative_cards', []))} negative cards, "
        f"{len(out.get('sync_conflicts', []))} sequence conflicts, "
        f"{len(out.get('coupon_double_uses', []))} coupon double uses"
    )
    what = "quarantined entries" if args.all else "quarantined entries open"
    print(f"total: {len(quarantined)} {what}; also {others} (--json for all)")
    return 0


def _flags_decide(args: argparse.Namespace) -> int:
    from tillgate.core.cards import mask

    with _client(args) as hq:
        out = hq.decide(args.flag, release=args.release, reason=args.reason)
    effect = "now counts everywhere" if args.release else "will never count"
    print(
        f"quarantined entry {out['id']} {out['status']}: {out['till']} seq {out['seq']}, "
        f"{out['kind']} {out['points']:+d} on card {mask(out['card'])} {effect}; "
        f"balance now {out['balance']}. Tills get it at their next sync."
    )
    return 0
