"""One runner for each of head office's scheduled jobs, however many ``hq serve`` run.

Every ``hq serve`` schedules the jobs (lot expiry, re-pricing, timed-out holds); before a
run it takes the job's database lock, and a process that does not get it skips that run
(the next one tries again). So with several processes on one database each job runs in one
of them at a time, and in some process as long as one is up.

* **PostgreSQL**: a transaction-level advisory lock (``pg_try_advisory_xact_lock``) keyed
  by the job and the schema, held by a transaction that stays open for the run, on a
  connection of its own. It goes when that transaction ends — with the run, or with the
  connection of a process that died.
* **SQLite**: a lease row in ``job_locks`` taken in a ``BEGIN IMMEDIATE`` write, for at
  most :data:`LEASE` (a process that died holding it delays the job by that much), given
  back after the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from .db import Database
from .wire import ts

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
# The first key of the advisory locks (the job and schema hash are the second); apart from
# the migration lock's single key, a key space of its own in PostgreSQL.
_JOBS_LOCK = 7420155


@contextmanager
def alone(db: Database, job: str, *, owner: str, now: datetime) -> Iterator[bool]:
    """Whether this process may run ``job`` now: True while it holds the job's lock.

    ``owner``: this process (unique among the processes on the database).
    """
    if db.dialect == "postgresql":
        with db.write() as tx:
            got = tx.scalar(
                "SELECT pg_try_advisory_xact_lock(?, hashtext(current_schema() || ':' || ?))",
                (_JOBS_LOCK, job),
            )
            yield bool(got)
        return
    with db.write() as tx:
        got = tx.execute(
            "INSERT INTO job_locks (name, owner, until) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until"
            " WHERE job_locks.until <= ? OR job_locks.owner = excluded.owner",
            (job, owner, ts(now + LEASE), ts(now)),
        )
    if not got:
        yield False
        return
    try:
        yield True
    finally:
        with db.write() as tx:
            tx.execute("UPDATE job_locks SET until = '' WHERE name = ? AND owner = ?", (job, owner))
