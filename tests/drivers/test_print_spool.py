"""The print spool: coupons queued while the printer is away survive a restart of the agent."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tillgate.drivers.printer_queue import JobQueue, SubmitResult


def test_jobs_left_in_the_spool_are_queued_again_in_order(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    first = JobQueue(10, spool=spool)
    for n in range(3):
        result, _ = first.add(f"COUPON {n}".encode(), kind="coupons", receipt_id=f"R{n}")
        assert result is SubmitResult.QUEUED
    job = first.first()
    assert job is not None
    first.done(job)  # R0 printed; R1 and R2 were not when the agent stopped

    again = JobQueue(10, spool=spool)
    assert [(j.receipt_id, j.data) for j in again.pending()] == [
        ("R1", b"COUPON 1"),
        ("R2", b"COUPON 2"),
    ]
    # Still remembered: the POS retrying a confirm does not print a second coupon.
    assert again.add(b"COUPON 1", kind="coupons", receipt_id="R1")[0] is SubmitResult.DUPLICATE
    result, job = again.add(b"COUPON 3", kind="coupons", receipt_id="R3")
    assert result is SubmitResult.QUEUED and job is not None and job.id > 3
    while (job := again.first()) is not None:
        again.done(job)
    assert list(spool.glob("*.job")) == []


def test_an_unreadable_spool_file_is_set_aside_not_printed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = tmp_path / "spool"
    queue = JobQueue(10, spool=spool)
    queue.add(b"GOOD", kind="coupons", receipt_id="R1")
    (spool / "0000000005.job").write_bytes(b"not json\nDATA")
    (spool / "0000000006.job").write_bytes(b'{"kind": "coupons", "receipt_id": "R6"}\n')  # empty
    (spool / "junk.job").write_bytes(b"??")
    with caplog.at_level(logging.ERROR):
        again = JobQueue(10, spool=spool)
    assert [j.data for j in again.pending()] == [b"GOOD"]
    assert sorted(p.name for p in spool.glob("*.bad")) == [
        "0000000005.bad",
        "0000000006.bad",
        "junk.bad",
    ]
    assert len([r for r in caplog.records if "is unreadable" in r.getMessage()]) == 3


def test_a_spool_that_cannot_be_made_keeps_the_job_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the spool directory should be: no directory can be made there, not
    # even by root (CI runs as root, so permission bits would not stop it).
    spool = tmp_path / "spool"
    spool.write_bytes(b"")
    queue = JobQueue(10, spool=spool)
    with caplog.at_level(logging.ERROR):
        result, job = queue.add(b"COUPON", kind="coupons", receipt_id="R1")
    assert result is SubmitResult.QUEUED and job is not None and job.spooled is None
    assert "queued in memory only" in caplog.text
    assert queue.pending() == [job]


def test_a_full_disk_keeps_the_job_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # /dev/full answers every write with ENOSPC: the spool's file is a symlink to it, as a
    # disk that fills up between two jobs would.
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    spool = tmp_path / "spool"
    queue = JobQueue(10, spool=spool)
    spool.mkdir(exist_ok=True)
    (spool / "0000000001.tmp").symlink_to("/dev/full")
    with caplog.at_level(logging.ERROR):
        result, job = queue.add(b"COUPON", kind="coupons", receipt_id="R1")
    assert result is SubmitResult.QUEUED and job is not None and job.spooled is None
    assert "No space left on device" in caplog.text and "memory only" in caplog.text
    assert queue.pending() == [job]
    assert list(spool.glob("*.job")) == []
