"""Putting sync together from the config: the HQ client, the syncer, the scheduler job.

Called by the daemon (``tillgate run``) and the sync verbs; nothing here runs at import.
"""

from __future__ import annotations

import logging
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tillgate.agent.store.db import Database
from tillgate.core.clock import Clock, SystemClock
from tillgate.core.errors import ConfigError, SyncError

from . import credential as cred_file
from .client import HqClient
from .engine import OnlineState, Syncer
from .holds import HqHolds

if TYPE_CHECKING:
    from tillgate.agent.usecases import TillService
    from tillgate.agent.usecases.events import EventBus
    from tillgate.core.config import Config

logger = logging.getLogger(__name__)

DB_NAME = "tillgate.sqlite3"


def tls_verify(config: Config) -> bool | ssl.SSLContext:
    """How HQ's certificate is checked: ``[hq] ca_file``, else the system CAs, or not at all."""
    if not config.hq.verify:
        logger.warning("hq.verify = false: head office's certificate is NOT checked")
        return False
    if config.hq.ca_file is None:
        # The operating system's trust store (OpenSSL's default paths; the Windows store),
        # so a chain's in-house CA installed there is trusted. httpx's own default would be
        # certifi's bundled list, which knows no in-house CA.
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(config.hq.ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"hq.ca_file: cannot load {config.hq.ca_file}: {exc}") from exc


def credential(config: Config) -> cred_file.Credential:
    """This till's credential, checked against ``[till] id`` (HQ refuses another till's)."""
    cred = cred_file.load(Path(config.hq.credential_file))
    if cred.till != config.till.id:
        raise ConfigError(
            f"{config.hq.credential_file}: enrolled as till {cred.till!r} but till.id is "
            f"{config.till.id!r}; set till.id = {cred.till!r} or enroll this till again"
        )
    return cred


def make_syncer(
    config: Config,
    *,
    clock: Clock | None = None,
    online: OnlineState | None = None,
    events: EventBus | None = None,
    transport: Any = None,
) -> Syncer:
    """A syncer with its own connection to the till's data file."""
    if not config.hq.url:
        raise ConfigError("hq.url is empty: a standalone till has no head office to sync with")
    cred = credential(config)
    client = HqClient(
        url=config.hq.url,
        credential=cred.credential,
        transport=transport,
        verify=tls_verify(config),
    )
    db = Database(Path(config.till.data_dir) / DB_NAME)
    return Syncer(
        db=db,
        client=client,
        till=cred.till,
        clock=clock or SystemClock(),
        batch_size=config.sync.batch_size,
        offline_after_seconds=config.sync.offline_after_seconds,
        online=online,
        events=events,
    )


def make_holds(config: Config, *, transport: Any = None) -> HqHolds:
    """The till's online holds at head office, each within ``sync.hold_timeout_ms``."""
    if not config.hq.url:
        raise ConfigError("hq.url is empty: a standalone till has no head office to hold at")
    cred = credential(config)
    return HqHolds(
        url=config.hq.url,
        credential=cred.credential,
        timeout_ms=config.sync.hold_timeout_ms,
        transport=transport,
        verify=tls_verify(config),
    )


def start(config: Config, service: TillService, scheduler: Any, *, online: OnlineState) -> Syncer:
    """Wire sync into a starting daemon: first sync if the till has no program, then the job.

    The job runs on the scheduler's worker thread, one at a time, missed runs coalesced.
    Its trigger fires every 0.9 × ``sync.interval_seconds`` plus up to 0.1 × of jitter, so
    a chain's tills do not all call HQ in the same second, yet no two syncs of one till are
    further apart than ``interval_seconds`` (how fast a promotion reaches every till).
    """
    syncer = make_syncer(config, clock=service.clock, online=online, events=service.events)
    if service.program_in_force() is None:
        try:
            syncer.run_once()
        except SyncError as exc:
            syncer.close()
            raise SyncError(
                f"this till has no loyalty program yet and the first sync failed: {exc}"
            ) from exc
    syncer.refresh()
    interval = float(config.sync.interval_seconds)
    scheduler.add_job(
        syncer.attempt,
        "interval",
        seconds=interval * 0.9,
        jitter=interval * 0.1,
        id="sync",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    return syncer
