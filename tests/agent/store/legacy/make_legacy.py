"""Make ``v2.sqlite3`` and ``v2-answers.json`` with tillgate as it was before the stored
calculation became a typed record (commit 2d51377, schema version 2).

Run it against that commit's code, e.g. from a worktree of it::

    git worktree add /tmp/oldtree 2d51377
    mkdir -p /tmp/old/tillgate && for d in agent drivers sync hq; do
        ln -s /tmp/oldtree/$d /tmp/old/tillgate/$d; done
    PYTHONPATH=/tmp/old .venv/bin/python tests/agent/store/legacy/make_legacy.py

It leaves receipts in every state a data file can hold at an upgrade: calculated with a
hold, confirmed, partly refunded; and records what the old code answered to the confirm
and the refunds that follow, which the new code must answer the same.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from tillgate.agent.api.schemas import CalculateIn
from tillgate.agent.clock import ManualClock
from tillgate.agent.rules.coupons import CouponSigner
from tillgate.agent.rules.program import parse_program
from tillgate.agent.service import TillService, TillSettings
from tillgate.agent.session import CardSession
from tillgate.agent.store import cards as card_store
from tillgate.agent.store.db import Database

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from scenario import ANNA, CARDS, KEY, PROGRAM, START, basket  # noqa: E402


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    clock = ManualClock(START)
    db = Database(tmp / "v2.sqlite3")
    assert db.schema_version == 2, db.schema_version
    service = TillService(
        db=db,
        settings=TillSettings(till="till", store="store-01", timezone="Europe/Moscow"),
        clock=clock,
        session=CardSession(seconds=120),
        signer=CouponSigner(KEY),
    )
    service.install_program(parse_program(PROGRAM), version="v1")
    service.import_cards([card_store.CardRecord(**c) for c in CARDS])

    def calc(rid: str, **kw: object) -> dict:
        return service.calculate(CalculateIn.model_validate({"receipt_id": rid, **kw}))

    calc("L-conf", lines=basket(), card=ANNA, redeem=200)
    service.confirm("L-conf")
    calc("L-part", lines=basket(), card=ANNA, redeem=100)
    service.confirm("L-part")
    service.refund("L-part", refund_id="LF-1", lines=[(0, Decimal(1))])
    clock.advance(timedelta(minutes=1))
    calc("L-calc", lines=basket(), card=ANNA, redeem="max")
    db.close()
    shutil.copy(tmp / "v2.sqlite3", HERE / "v2.sqlite3")

    # What the old code answers after that: the new code must answer the same.
    db = Database(tmp / "v2.sqlite3")
    service.db = db
    answers = {
        "confirm L-calc": service.confirm("L-calc"),
        "refund L-conf": service.refund("L-conf", refund_id="LF-2", lines=None),
        "refund L-part": service.refund("L-part", refund_id="LF-3", lines=None),
        "card": service.card_lookup(ANNA),
    }
    db.close()
    (HERE / "v2-answers.json").write_text(
        json.dumps(answers, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"wrote {HERE / 'v2.sqlite3'} and v2-answers.json at {datetime.now(UTC):%Y-%m-%d}")


if __name__ == "__main__":
    main()
