"""The card snapshot's routes (:mod:`tillgate.hq.snapshots`; docs/sync-protocol.md,
"Card snapshot").

* ``GET /v1/sync/card-snapshot`` (a till): the snapshot a fresh till may start from, or
  404 ``not_found`` (none, or the till has pushed already): the till pulls pages.
* ``GET /v1/sync/card-snapshot/parts?id=&seq=`` (a till): one part of its compressed bytes
  (``application/octet-stream``, at most :data:`~tillgate.hq.snapshots.PART_BYTES`).
* ``POST /v1/admin/cards/snapshot`` (admin): build one now (audited).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from tillgate.core.errors import JobBusy

from . import audit, roles, snapshots, tills
from .feed import MAX_CURSOR
from .jobs import alone
from .service import Hq
from .wire import whole

Work = Callable[..., Awaitable[Any]]
TillOf = Callable[..., tills.TillId]


def routes(
    hq: Hq,
    *,
    work: Work,
    till_of: TillOf,
    authorize: Callable[[Request], Awaitable[roles.Principal]],
    operator: Callable[[Request], str | None],
) -> APIRouter:
    """The snapshot's routes, for the app to include."""
    api = APIRouter()

    @api.get("/v1/sync/card-snapshot", tags=["tills"])
    async def card_snapshot(request: Request) -> Any:
        """The card snapshot a fresh till may start from (404: pull the change pages)."""
        token = tills.bearer(request.headers.get("authorization"))

        def run() -> dict[str, Any]:
            with hq.db.read() as tx:
                asked = tills.ask_till(tx, token)
                till_of(token, tx, asked=asked)
                row = asked.one()
                through = int(row["through_seq"] or 0) if row is not None else 0
                return snapshots.offer(tx, hq.lookup_key, through_seq=through).wire()

        return await work(run)

    @api.get("/v1/sync/card-snapshot/parts", tags=["tills"])
    async def card_snapshot_part(request: Request, id: int, seq: int) -> Response:
        """One part of a card snapshot's compressed bytes."""
        token = tills.bearer(request.headers.get("authorization"))
        snapshot, part = whole("id", id, 0, MAX_CURSOR), whole("seq", seq, 0, MAX_CURSOR)

        def run() -> bytes:
            with hq.db.read() as tx:
                till_of(token, tx)
                return snapshots.part(tx, snapshot, part)

        return Response(await work(run), media_type="application/octet-stream")

    @api.post("/v1/admin/cards/snapshot", tags=["admin"])
    async def build_snapshot(request: Request) -> Any:
        """Build a card snapshot now (the ``card snapshot`` job builds them when due)."""
        await authorize(request)

        def run() -> dict[str, Any]:
            # The job's lock: one build at a time, however many processes and requests.
            owner = f"request:{uuid.uuid4().hex[:12]}"
            with alone(hq.db, snapshots.JOB, owner=owner, now=hq.clock.now()) as mine:
                if not mine:
                    raise JobBusy("a card snapshot is being built already; try again in a minute")
                made = snapshots.build(
                    hq.db, lookup_key=hq.lookup_key, clock=hq.clock, workdir=hq.data_dir
                )
            with hq.db.write() as tx:
                audit.write(
                    tx,
                    action="cards.snapshot",
                    subject=f"snapshot {made.id}",
                    detail={"cards": made.cards, "change_id": made.change_id},
                    reason="",
                    operator=operator(request),
                    now=hq.clock.now(),
                )
            return made.wire()

        return await work(run)

    return api
