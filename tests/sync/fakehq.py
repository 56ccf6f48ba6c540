"""Sync test helpers: a chain till (real SQLite file) and a head office behind httpx's seam.

``FakeHq`` speaks ``docs/sync-protocol.md`` in memory behind an ``httpx.MockTransport``
(the sync client's documented seam): push with duplicates and sequence gaps, a change log
read by cursor. It can drop a reply after committing (a lost reply) or answer errors.
The multi-process tests use the real ``tillgate hq serve`` instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tillgate.agent.clock import ManualClock
from tillgate.agent.service import TillService
from tillgate.sync.engine import Syncer

HQ_URL = "http://hq.test"


def error(status: int, code: str, message: str = "", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


@dataclass
class FakeHq:
    """Head office in memory: what the protocol promises, nothing more."""

    entries: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    bodies: list[dict[str, Any]] = field(default_factory=list)  # every push body received
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    cards_new: list[dict[str, Any]] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)  # change log, id = index + 1
    drop_replies: int = 0  # commit, then lose this many replies
    answers: list[httpx.Response | Exception] = field(default_factory=list)  # canned, in order
    requests: list[httpx.Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # what HQ answered, in order

    def through(self, till: str) -> int:
        return max(self.entries.get(till, {}), default=0)

    def change(self, **part: Any) -> int:
        """Append a change (program=, cards=[...], coupons_revoked=[...], ...); its id."""
        self.log.append(part)
        return len(self.log)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.answers:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if request.headers.get("authorization") != "Bearer secret":
            return error(401, "unauthorized", "no credential")
        if request.url.path == "/v1/sync/push":
            reply = self._push(json.loads(request.content))
        elif request.url.path == "/v1/sync/changes":
            reply = self._changes(
                int(request.url.params["cursor"]), int(request.url.params["limit"])
            )
        else:
            return error(404, "not_found")
        self.statuses.append(reply.status_code)
        if self.drop_replies and reply.status_code == 200:
            self.drop_replies -= 1
            raise httpx.ReadTimeout("reply lost on the way", request=request)
        return reply

    def _push(self, body: dict[str, Any]) -> httpx.Response:
        self.bodies.append(body)
        till = body["till"]
        stored = self.entries.setdefault(till, {})
        duplicates = 0
        new = []
        for e in body["entries"]:
            if e["seq"] in stored:
                assert stored[e["seq"]] == e, "a resend must be identical"
                duplicates += 1
            else:
                new.append(e)
        if new and new[0]["seq"] != self.through(till) + 1:
            return error(409, "sequence_gap", "gap", expected=self.through(till) + 1)
        for e in new:
            stored[e["seq"]] = e
        for c in body["coupons_used"]:
            self.coupons.setdefault(c["code"], c | {"till": till})
        self.cards_new.extend(body["cards_new"])
        return httpx.Response(
            200,
            json={
                "through_seq": self.through(till),
                "stored": len(new),
                "duplicates": duplicates,
                "conflicts": [],
                "negative_cards": [],
            },
        )

    def _changes(self, cursor: int, limit: int) -> httpx.Response:
        page: dict[str, Any] = {
            "program": None,
            "cards": [],
            "coupons_revoked": [],
            "coupons_used": [],
            "budgets": {},
        }
        taken = self.log[cursor : cursor + limit]
        for part in taken:
            for key, value in part.items():
                if key == "program":
                    page["program"] = value
                elif key == "budgets":
                    page["budgets"].update(value)
                else:
                    page[key].extend(value)
        end = cursor + len(taken)
        return httpx.Response(200, json=page | {"cursor": end, "more": end < len(self.log)})


@dataclass
class Chain:
    """A chain till: its service (the POS side) and its syncer (own connection), one file."""

    service: TillService
    syncer: Syncer
    hq: FakeHq
    clock: ManualClock
    path: Path

    def sale(self, receipt_id: str, amount: str, *, card: str, redeem: int | str = 0) -> Any:
        from tillgate.agent.api.schemas import CalculateIn

        req = CalculateIn.model_validate(
            {
                "receipt_id": receipt_id,
                "card": card,
                "redeem": redeem,
                "lines": [{"sku": "A", "name": "a", "qty": 1, "price": amount}],
            }
        )
        calc = self.service.calculate(req)
        return calc, self.service.confirm(receipt_id)

    def calc(self, receipt_id: str, amount: str, *, card: str, redeem: int | str = 0) -> Any:
        from tillgate.agent.api.schemas import CalculateIn

        return self.service.calculate(
            CalculateIn.model_validate(
                {
                    "receipt_id": receipt_id,
                    "card": card,
                    "redeem": redeem,
                    "lines": [{"sku": "A", "name": "a", "qty": 1, "price": amount}],
                }
            )
        )

    def balance(self, card: str) -> int:
        return int(self.service.card_lookup(card)["balance"])

    def rows(self, sql: str, *args: Any) -> list[Any]:
        with self.service.db.read() as conn:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]


def hq_card(number: str, *, balance: int, pending: int = 0, through_seq: int = 0, **kw: Any) -> Any:
    """A card as HQ's change feed shows it."""
    return {
        "number": number,
        "holder": kw.pop("holder", ""),
        "status": kw.pop("status", "active"),
        "balance": balance,
        "pending": pending,
        "lots": kw.pop("lots", []),
        "through_seq": through_seq,
        **kw,
    }
