"""What head-office admins do: publish the program, import cards, look at a card, block it,
issue coupons, read the flags. Validation is the tills' own code (program, cards CSV,
coupons). Every change writes its audit row (:mod:`tillgate.hq.audit`) in its transaction.
"""

from __future__ import annotations

import io
import json
import logging
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from tillgate.core.cards import DEFAULT_NUMBER_PATTERN, identify, mask
from tillgate.core.errors import (
    CardNotFound,
    InvalidProgram,
    InvalidRequest,
    NotFound,
    ProgramError,
    TillgateError,
)
from tillgate.core.rules.coupons import MAX_SERIAL, CouponSigner
from tillgate.core.rules.program import ProgramFile, decode_program

from . import audit, cardimport, quarantine
from .db import Database, Tx, marks
from .feed import card_fields, lots_out
from .fold import fold
from .ledger import (
    add_changes,
    canonical_or,
    card_entries,
    chunks,
    expire_due,
    fold_entry,
)
from .tills import list_tills
from .wire import CouponsIssueIn, CouponsRevokeIn, ts

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- program


def decode_program_body(body: bytes) -> ProgramFile:
    """The body of ``POST /v1/admin/program``: the program's JSON, or ``{"toml": "..."}``."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidProgram(
            f"the program is not valid JSON: {exc}", details={"errors": [f"not valid JSON: {exc}"]}
        ) from exc
    try:
        if isinstance(data, dict) and set(data) == {"toml"} and isinstance(data["toml"], str):
            return decode_program(data["toml"], fmt="toml", source="program")
        # Decoded again so that fractions become exact decimals, never floats.
        return decode_program(text, fmt="json", source="program")
    except ProgramError as exc:
        raise InvalidProgram(
            f"the program is invalid ({len(exc.errors)} problems); nothing was published",
            details={"errors": exc.errors},
        ) from exc


def current_program(tx: Tx) -> ProgramFile | None:
    row = tx.one("SELECT body FROM programs ORDER BY version DESC LIMIT 1")
    return ProgramFile.model_validate_json(row["body"]) if row else None


def publish_program(
    db: Database, program: ProgramFile, now: datetime, *, operator: str | None = None
) -> dict[str, Any]:
    """Give a validated program a new version; every till picks it up on its next pull."""
    with db.write() as tx:
        version = tx.next_ids("program")
        tx.execute(
            "INSERT INTO programs (version, name, body, published_at) VALUES (?, ?, ?, ?)",
            (version, program.program.name, program.model_dump_json(by_alias=True), ts(now)),
        )
        add_changes(tx, "program", ["current"], now)
        audit.write(
            tx,
            action="program.publish",
            subject=f"version {version}",
            detail={"name": program.program.name, "promotions": len(program.promotions)},
            reason="",
            operator=operator,
            now=now,
            before={"version": version - 1} if version > 1 else None,
            after={"version": version, "name": program.program.name},
        )
    logger.info(
        "program %r published as version %d (%d promotions)",
        program.program.name,
        version,
        len(program.promotions),
    )
    return {"version": str(version), "promotions": len(program.promotions)}


# ---------------------------------------------------------------- cards


def import_cards(
    db: Database, text: str | Iterable[str], now: datetime, *, operator: str | None = None
) -> dict[str, Any]:
    """Import or update cards from CSV (its text, or its lines as they are read): all
    rows, or — if any row is bad — none of them (:mod:`tillgate.hq.cardimport`)."""
    with db.read() as tx:
        program = current_program(tx)
    pattern = program.program.card_number_pattern if program else DEFAULT_NUMBER_PATTERN
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text
    return cardimport.import_cards(db, lines, now, pattern=pattern, operator=operator)


def show_card(db: Database, number: str, now: datetime) -> dict[str, Any]:
    """A card as HQ knows it (``cards show --json``), after writing any expiry that is due.

    ``number`` may be a phone number, as the POS API takes it: the card with that phone
    (an active one before a blocked one, the latest updated first).
    """
    with db.read() as tx:
        exists = tx.scalar("SELECT 1 FROM cards WHERE number = ?", (number,))
        if not exists:
            phone = _phone(number)
            found = (
                tx.scalar(
                    "SELECT number FROM cards WHERE phone = ?"
                    " ORDER BY status = 'blocked', updated_at DESC LIMIT 1",
                    (phone,),
                )
                if phone
                else None
            )
            if found:
                number, exists = str(found), True
    if not exists:
        raise CardNotFound(f"card {mask(number)} is not known at head office")
    expire_due(db, now, card=number)
    with db.read() as tx:
        row = tx.one("SELECT * FROM cards WHERE number = ?", (number,))
        assert row is not None
        entries = card_entries(tx, [number], quarantined=True)[number]
    state = fold([fold_entry(e) for e in entries if e["quarantine"] is None], now)
    return {
        **card_fields(row, state),
        "negative_since": row["negative_since"],
        "lots": lots_out(state),
        "entries": [
            {
                "id": e["id"],
                "till": e["till"],
                "seq": int(e["seq"]),
                "kind": e["kind"],
                "points": int(e["points"]),
                "receipt_id": e["receipt_id"],
                "created_at": e["created_at"],
                # null: it counts; "open" (quarantined) or "rejected": it does not.
                "quarantine": e["quarantine"],
            }
            for e in entries
        ],
    }


# ---------------------------------------------------------------- coupons


def issue_coupons(
    db: Database,
    signer: CouponSigner,
    req: CouponsIssueIn,
    now: datetime,
    *,
    operator: str | None = None,
) -> dict[str, Any]:
    """``count`` new signed codes for a coupon promotion of the program in force."""
    with db.read() as tx:
        program = current_program(tx)
    promo = next(
        (p for p in (program.promotions if program else ()) if p.id == req.promotion), None
    )
    if promo is None:
        raise NotFound(f"promotion {req.promotion!r} is not in the program in force; push it first")
    if promo.reward.kind != "coupon" and not promo.when.coupon:
        raise InvalidRequest(
            f"promotion: {req.promotion!r} takes no coupon (set when.coupon = true, or make "
            "its reward a coupon)"
        )
    today = now.date()
    if req.valid_until is not None:
        until = req.valid_until.date()
    elif promo.reward.kind == "coupon":
        until = today + timedelta(days=promo.reward.valid_days)
    elif promo.valid.to is not None:
        until = promo.valid.to.date()
    else:
        until = today + timedelta(days=365)
    if until < today:
        raise InvalidRequest(f"valid_until: {until} is in the past")
    codes: dict[str, None] = {}
    with db.write() as tx:
        while len(codes) < req.count:
            fresh = [_code(signer, req.promotion, until) for _ in range(req.count - len(codes))]
            fresh = [c for c in dict.fromkeys(fresh) if c not in codes]
            for part in chunks(fresh):
                taken = {
                    r["code"]
                    for r in tx.all(
                        f"SELECT code FROM coupons_issued WHERE code IN ({marks(len(part))})",
                        list(part),
                    )
                }
                codes.update((c, None) for c in part if c not in taken)
        tx.many(
            "INSERT INTO coupons_issued (code, promotion_id, valid_until, issued_at)"
            " VALUES (?, ?, ?, ?)",
            [(c, req.promotion, until.isoformat(), ts(now)) for c in codes],
        )
        issued = {"count": len(codes), "valid_until": until.isoformat()}
        audit.write(
            tx,
            action="coupons.issue",
            subject=req.promotion,
            detail=issued,
            reason="",
            operator=operator,
            now=now,
            after=issued,
        )
    logger.info("issued %d coupon codes for %s, valid until %s", len(codes), req.promotion, until)
    return {"promotion": req.promotion, "valid_until": until.isoformat(), "codes": list(codes)}


def _code(signer: CouponSigner, promotion: str, until: date) -> str:
    return signer.issue(
        promotion_id=promotion, serial=secrets.randbelow(MAX_SERIAL + 1), valid_until=until
    )


def revoke_coupons(
    db: Database, req: CouponsRevokeIn, now: datetime, *, operator: str | None = None
) -> dict[str, Any]:
    """Revoke codes everywhere: tills refuse them from their next pull on."""
    codes = sorted({canonical_or(c) for c in req.codes})
    with db.write() as tx:
        tx.many(
            "INSERT INTO coupons_revoked (code, reason, revoked_at) VALUES (?, ?, ?)"
            " ON CONFLICT (code) DO NOTHING",
            [(c, req.reason, ts(now)) for c in codes],
        )
        add_changes(tx, "coupon_revoked", codes, now)
        audit.write(
            tx,
            action="coupons.revoke",
            subject=f"{len(codes)} codes",
            detail={"codes": codes},
            reason=req.reason,
            operator=operator,
            now=now,
            after={"revoked": len(codes)},
        )
    return {"revoked": codes}


# ---------------------------------------------------------------- blocking cards


def set_blocked(
    db: Database,
    number: str,
    *,
    blocked: bool,
    reason: str,
    operator: str | None,
    now: datetime,
) -> dict[str, Any]:
    """Block a card (tills refuse it from their next pull on) or unblock it (active again)."""
    with db.write() as tx:
        tx.lock_rows("cards", "number", [number])
        row = tx.one("SELECT status FROM cards WHERE number = ?", (number,))
        if row is None:
            raise CardNotFound(f"card {mask(number)} is not known at head office")
        was = row["status"]
        # Unblocking makes a blocked card active; a card that is not blocked keeps its status.
        status = "blocked" if blocked else ("active" if was == "blocked" else was)
        if status != was:
            tx.execute(
                "UPDATE cards SET status = ?, updated_at = ? WHERE number = ?",
                (status, ts(now), number),
            )
            add_changes(tx, "card", [number], now)
            audit.write(
                tx,
                action="card.block" if blocked else "card.unblock",
                subject=number,
                detail={},
                reason=reason,
                operator=operator,
                now=now,
                before={"status": was},
                after={"status": status},
            )
    logger.info("card %s %s (%s)", mask(number), status, reason)
    return {"card": number, "status": status, "was": was}


# ---------------------------------------------------------------- flags


def flags(db: Database) -> dict[str, Any]:
    """What needs a person: negative cards, sequence conflicts, coupon double uses."""
    with db.read() as tx:
        negative = tx.all(
            "SELECT number, balance, negative_since FROM cards"
            " WHERE negative_since IS NOT NULL ORDER BY negative_since, number"
        )
        conflicts = tx.all(
            "SELECT till, seq, entry_id, reason, detected_at FROM sync_conflicts"
            " ORDER BY detected_at, till, seq"
        )
        double = tx.all(
            "SELECT code, till, receipt_id, card, used_at, first_till, first_receipt_id,"
            " detected_at FROM coupon_conflicts ORDER BY detected_at, code"
        )
    return {
        "negative_cards": [
            {"card": r["number"], "balance": int(r["balance"]), "since": r["negative_since"]}
            for r in negative
        ],
        "sync_conflicts": [dict(r, seq=int(r["seq"])) for r in conflicts],
        "coupon_double_uses": [dict(r) for r in double],
    }


def flags_in_view(db: Database, *, decided: bool, stores: frozenset[str] | None) -> dict[str, Any]:
    """The flags (``GET /v1/admin/flags``); ``stores``: only those of these stores' tills
    (negative cards are the chain's, not a store's, so a per-store view has none)."""
    out = flags(db) | {"quarantined": quarantine.listing(db, decided=decided)}
    if stores is None:
        return out
    mine = {t["till"] for t in tills_in_view(db, stores)}
    return {
        key: [] if key == "negative_cards" else [f for f in found if f.get("till") in mine]
        for key, found in out.items()
    }


def tills_in_view(db: Database, stores: frozenset[str] | None) -> list[dict[str, Any]]:
    """Every enrolled till, or those of ``stores``."""
    every = list_tills(db)
    return every if stores is None else [t for t in every if t["store"] in stores]


def _phone(text: str) -> str | None:
    """``text`` as a normalised phone number, if it is one (the POS API's rule)."""
    try:
        ref = identify(text, number_pattern=DEFAULT_NUMBER_PATTERN)
    except TillgateError:
        return None
    return ref.value if ref.kind == "phone" else None
