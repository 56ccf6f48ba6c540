"""Keys: coupon signing keys live in their own 0600 files, codes carry a key id, keys rotate
and are revoked (issue 13).

Observed before: the coupon key sat in ``hq.sqlite3``'s ``meta`` table, readable by any
local user, who forged a 300 ₽ coupon that the till accepted. Real ``tillgate hq serve``
and ``tillgate run`` processes, the real CLI, and the real open functions.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ANNA, COUPON10, copy_examples, program
from tests.sync.procs import Hq, TillProc, make_till, running, wait_until
from tillgate.agent.daemon import build_service
from tillgate.agent.store.db import Database
from tillgate.core.clock import ManualClock
from tillgate.core.config import load_config
from tillgate.core.errors import ConfigError, CouponInvalid
from tillgate.core.rules.coupons import CouponKeys, CouponSigner, generate_key
from tillgate.hq.db import open_database
from tillgate.hq.service import Hq as HqService

pytestmark = pytest.mark.slow

ADMIN = "a" * 32
UNTIL = date.today() + timedelta(days=30)


def hq_cli(hq: Hq, *args: str) -> subprocess.CompletedProcess[str]:
    """``tillgate hq ARGS --hq URL --token TOKEN`` as a real process (``--token=`` form: a
    token may begin with a dash)."""
    return subprocess.run(
        [sys.executable, "-m", "tillgate.cli", "hq", *args, "--hq", hq.url, f"--token={hq.token}"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def issue(hq: Hq) -> str:
    r = hq_cli(hq, "coupons", "issue", "c10", "--count", "1")
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[-1]


def applied(till: TillProc, receipt: str, *codes: str) -> tuple[list[str], dict[str, str]]:
    r = till.post(
        "/v1/receipts/calculate",
        {
            "receipt_id": receipt,
            "card": ANNA,
            "coupons": list(codes),
            "lines": [{"sku": "A", "name": "a", "qty": 1, "price": "100.00"}],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()["coupons"]
    return body["applied"], {x["code"]: x["reason"] for x in body["rejected"]}


def file_bytes(*paths: Path) -> bytes:
    return b"".join(p.read_bytes() for p in paths if p.exists())


def key_hex(root: Path, key_id: int) -> str:
    return (root / "keys" / f"coupon-{key_id}.key").read_text().strip()


def forged(key_id: int, key: bytes | None = None) -> str:
    """A well-formed code for c10 signed with a key id of the attacker's choosing."""
    signer = CouponSigner(CouponKeys(keys={key_id: key or generate_key()}))
    return signer.issue(promotion_id="c10", serial=4242, valid_until=UNTIL)


def test_rotation_revocation_and_unknown_keys_across_a_real_chain(tmp_path: Path) -> None:
    hq = Hq(tmp_path / "hq").start()
    hq.import_cards(f"number,holder\n{ANNA},Анна\n")
    hq.push_program(program(COUPON10))
    till = make_till(hq, tmp_path, "till-1")
    with running(hq, till):
        till.start()
        wait_until("the first sync", till.synced)
        old = issue(hq)  # key 1: a version-1 code, as every code printed before key ids
        assert old[2] == "2" or old[2] == "3", old  # version 1 in the first 4 bits

        r = hq_cli(hq, "coupons", "rotate-key")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip().splitlines()[-1] == "2"
        assert "codes of key 1 and older verify until they expire" in r.stderr
        new = issue(hq)
        assert new != old and new[2] in "45", new  # version 2

        # After a sync the till knows key 2, and still key 1.
        since = datetime.now(UTC)
        wait_until("a sync after the rotation", lambda: till.synced_since(since))
        assert applied(till, "R-1", old) == ([old], {})  # one coupon of a promotion a sale
        assert applied(till, "R-1b", new) == ([new], {})
        till_keys = till.root / "data" / "keys"
        coupons = sorted(p.name for p in till_keys.glob("coupon-*"))
        assert coupons == ["coupon-1.key", "coupon-2.key"]
        assert key_hex(till.root / "data", 2) == key_hex(hq.root, 2)

        # A key id nobody made, and the right id with a made-up key: refused.
        for receipt, code in (("R-2", forged(9)), ("R-2b", forged(2))):
            assert applied(till, receipt, code) == ([], {code: "invalid"})

        # Key 2 signs: it cannot be revoked before a newer key exists.
        r = hq_cli(hq, "coupons", "revoke-key", "2")
        assert r.returncode == 2 and "rotate-key" in r.stderr, r.stderr
        r = hq_cli(hq, "coupons", "revoke-key", "1")
        assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
        listing = hq_cli(hq, "coupons", "keys")
        assert listing.returncode == 0
        lines = listing.stdout.splitlines()
        assert "revoked" in lines[0] and "signs new codes" in lines[1]
        assert key_hex(hq.root, 2) not in listing.stdout  # fingerprints, never keys

        since = datetime.now(UTC)
        wait_until("a sync after the revocation", lambda: till.synced_since(since))
        assert applied(till, "R-3", old) == ([], {old: "invalid"})
        newer = issue(hq)  # (``new`` is held by the open receipt R-1b)
        assert applied(till, "R-3b", newer) == ([newer], {})
        assert (
            not (till_keys / "coupon-1.key").exists() and (till_keys / "coupon-1.revoked").exists()
        )

        # No key in any database: not the till's, not head office's.
        till.stop()
    hq_files = file_bytes(*(hq.root / n for n in ("hq.sqlite3", "hq.sqlite3-wal")))
    till_db = till.root / "data" / "tillgate.sqlite3"
    till_files = file_bytes(till_db, till_db.with_name("tillgate.sqlite3-wal"))
    for key in (key_hex(hq.root, 2),):
        assert key.encode() not in hq_files and bytes.fromhex(key) not in hq_files
        assert key.encode() not in till_files and bytes.fromhex(key) not in till_files
    for path in (hq.root / "keys", till_keys):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
        for f in path.iterdir():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f

    # At head office too (the real open function on the stopped server's files): a revoked
    # key's code and an unknown key's are refused, a current one verifies.
    db = open_database(None, data_dir=hq.root)
    try:
        signer = HqService.open(db, clock=ManualClock(), admin_token=ADMIN, data_dir=hq.root).signer
        assert signer.verify(new).key_id == 2
        with pytest.raises(CouponInvalid, match="coupon key 1, which head office revoked"):
            signer.verify(old)
        with pytest.raises(CouponInvalid, match="coupon key 9, which this till does not know"):
            signer.verify(forged(9))
    finally:
        db.close()


def test_an_old_head_office_key_moves_out_of_the_database_into_a_file(tmp_path: Path) -> None:
    # An install from before key files: the key in meta (as the observed hq.sqlite3 had it).
    key = generate_key()
    db = open_database(None, data_dir=tmp_path)
    try:
        HqService.open(db, clock=ManualClock(), admin_token=ADMIN, data_dir=tmp_path)
        with db.write() as tx:
            tx.execute("DELETE FROM coupon_keys")
            tx.execute("INSERT INTO meta (key, value) VALUES ('coupon_key', ?)", (key.hex(),))
    finally:
        db.close()
    (tmp_path / "keys" / "coupon-1.key").unlink()
    old_code = CouponSigner(key).issue(promotion_id="c10", serial=7, valid_until=UNTIL)

    db = open_database(None, data_dir=tmp_path)
    try:
        hq = HqService.open(db, clock=ManualClock(), admin_token=ADMIN, data_dir=tmp_path)
        assert hq.signer.verify(old_code).key_id == 1  # printed coupons keep working
        assert hq.coupon_key == key  # what enrolment gives tills of earlier versions
        with db.read() as tx:
            assert tx.one("SELECT 1 FROM meta WHERE key = 'coupon_key'") is None
    finally:
        db.close()
    key_file = tmp_path / "keys" / "coupon-1.key"
    assert key_file.read_text().strip() == key.hex()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key.hex().encode() not in file_bytes(
        tmp_path / "hq.sqlite3", tmp_path / "hq.sqlite3-wal"
    )


def test_a_second_head_office_without_the_key_files_refuses_to_start(tmp_path: Path) -> None:
    db = open_database(None, data_dir=tmp_path / "one")
    try:
        HqService.open(db, clock=ManualClock(), admin_token=ADMIN, data_dir=tmp_path / "one")
        with pytest.raises(ConfigError, match=r"coupon-1.key is missing.*copy it"):
            HqService.open(db, clock=ManualClock(), admin_token=ADMIN, data_dir=tmp_path / "two")
    finally:
        db.close()


def test_a_standalone_tills_old_key_moves_out_of_its_data_file(tmp_path: Path) -> None:
    config = load_config(copy_examples(tmp_path))
    data_dir = Path(config.till.data_dir)
    key = generate_key()
    db = Database(data_dir / "tillgate.sqlite3")
    with db.write() as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES ('coupon_key', ?)", (key.hex(),))
    db.close()
    old_code = CouponSigner(key).issue(promotion_id="c10", serial=7, valid_until=UNTIL)

    service = build_service(config)
    try:
        assert service.signer.verify(old_code).key_id == 1
        with service.db.read() as conn:
            assert conn.execute("SELECT 1 FROM meta WHERE key = 'coupon_key'").fetchone() is None
    finally:
        service.db.close()
    key_file = data_dir / "keys" / "coupon-1.key"
    assert key_file.read_text().strip() == key.hex()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    data = data_dir / "tillgate.sqlite3"
    assert key.hex().encode() not in file_bytes(data, data.with_name("tillgate.sqlite3-wal"))


def test_version_1_codes_verify_as_key_1_and_key_ids_are_checked_first() -> None:
    key1, key2 = generate_key(), generate_key()
    v1 = CouponSigner(key1).issue(promotion_id="c10", serial=2**32 - 1, valid_until=UNTIL)
    ring = CouponSigner(CouponKeys(keys={1: key1, 2: key2}))
    signed = ring.verify(v1)
    assert (signed.key_id, signed.serial) == (1, 2**32 - 1)
    v2 = ring.issue(promotion_id="c10", serial=2**32 - 1, valid_until=UNTIL)
    assert ring.verify(v2).key_id == 2 and ring.verify(v2).serial == 2**27 - 1
    revoked = CouponSigner(CouponKeys(keys={2: key2}, revoked=frozenset({1})))
    with pytest.raises(CouponInvalid, match="revoked"):
        revoked.verify(v1)
    with pytest.raises(CouponInvalid, match="does not know"):
        CouponSigner(key1).verify(v2)
    assert "key" not in repr(ring.keys()).replace("CouponKeys", "")  # ids, never keys


def test_the_observed_forgery_needs_a_key_no_other_user_can_read(tmp_path: Path) -> None:
    hq = Hq(tmp_path / "hq").start()
    try:
        # What the attacker read: the database (now 0600, and holding no key) and the key
        # file (0600 in a 0700 folder).
        for path in (hq.root / "hq.sqlite3", hq.root / "keys" / "coupon-1.key"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE((hq.root / "keys").stat().st_mode) == 0o700
        conn = sqlite3.connect(f"file:{hq.root / 'hq.sqlite3'}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        finally:
            conn.close()
        assert "coupon_key" not in meta
        assert key_hex(hq.root, 1) not in json.dumps(meta)
    finally:
        hq.stop()
