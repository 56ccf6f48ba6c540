"""A data file from before the typed calculation record: its receipts still confirm and
refund after the upgrade, with the very answers the old code gave.

``legacy/v2.sqlite3`` and ``legacy/v2-answers.json`` were made by ``legacy/make_legacy.py``
with the code of commit 2d51377 (schema version 2, the whole response stored with private
``_internal`` keys).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from tillgate.agent.store.db import Database
from tillgate.agent.store.schema import MIGRATIONS
from tillgate.agent.usecases import TillService, TillSettings
from tillgate.agent.usecases.session import CardSession
from tillgate.core.clock import ManualClock
from tillgate.core.errors import IdempotencyMismatch, StoreError
from tillgate.core.rules.coupons import CouponSigner

LEGACY = Path(__file__).parent / "legacy"
sys.path.insert(0, str(LEGACY))
from scenario import ANNA, KEY, START  # noqa: E402


def test_receipts_stored_before_the_record_confirm_and_refund_as_before(tmp_path: Path) -> None:
    shutil.copy(LEGACY / "v2.sqlite3", tmp_path / "data.sqlite3")
    db = Database(tmp_path / "data.sqlite3")  # migrates
    try:
        assert db.schema_version == len(MIGRATIONS) >= 3
        with db.read() as conn:
            stored = [json.loads(r[0]) for r in conn.execute("SELECT result FROM receipts")]
        assert len(stored) == 3 and all(s["v"] == 2 and "_internal" not in s for s in stored)
        service = TillService(
            db=db,
            settings=TillSettings(till="till", store="store-01", timezone="Europe/Moscow"),
            clock=ManualClock(START + timedelta(minutes=1)),
            session=CardSession(seconds=120),
            signer=CouponSigner(KEY),
        )
        got = {
            "confirm L-calc": service.confirm("L-calc"),
            "refund L-conf": service.refund("L-conf", refund_id="LF-2", lines=None),
            "refund L-part": service.refund("L-part", refund_id="LF-3", lines=None),
            "card": service.card_lookup(ANNA),
        }
        want = json.loads((LEGACY / "v2-answers.json").read_text(encoding="utf-8"))
        assert json.loads(json.dumps(got)) == want
        # The old refund id answers what it answered to the same body, and refuses another.
        again = service.refund("L-part", refund_id="LF-1", lines=[(0, Decimal(1))])
        assert again["refund_id"] == "LF-1"
        with pytest.raises(IdempotencyMismatch) as refused:
            service.refund("L-part", refund_id="LF-1", lines=None)
        assert refused.value.details["field"] == "lines"
    finally:
        db.close()


@pytest.mark.parametrize("damage", ["{not json", '{"_internal": {}}', '{"v": 1}', "[1, 2]"])
def test_a_damaged_record_stops_the_upgrade_with_a_clear_error_and_loses_nothing(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "data.sqlite3"
    shutil.copy(LEGACY / "v2.sqlite3", path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE receipts SET result = ? WHERE receipt_id = 'L-part'", (damage,))
        before = conn.execute("SELECT receipt_id, result FROM receipts ORDER BY 1").fetchall()
    conn.close()
    with pytest.raises(StoreError) as refused:
        Database(path)
    text = str(refused.value)
    assert "cannot upgrade the data file" in text and "'L-part'" in text
    assert "damaged calculation record" in text and "left unchanged at version" in text
    conn = sqlite3.connect(path)
    try:
        # Each migration is one transaction: the failed one left no trace, no row was lost.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert 2 <= version < len(MIGRATIONS)
        after = conn.execute("SELECT receipt_id, result FROM receipts ORDER BY 1").fetchall()
        assert [r[0] for r in after] == [r[0] for r in before]
        assert dict(after)["L-part"] == damage
        if version == 2:  # the first upgrade refused it: nothing was rewritten
            assert after == before
    finally:
        conn.close()
