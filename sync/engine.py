"""One sync of a till with head office: push the outbox, then pull the change feed.

A sync *completes* when everything the till had written before it started is at HQ and
every page of changes HQ had is applied; only then do ``last_sync_at`` and the offline
mark move (``tillgate.agent.store.syncstate``). The till is offline when no sync has
completed for ``sync.offline_after_seconds``.

The syncer has its own SQLite connection and runs on the scheduler's thread (or the
``tillgate sync`` process): HTTP calls happen outside any transaction, and each write
(marking a batch synced, applying a page) is one short ``BEGIN IMMEDIATE`` transaction,
so a sale at most waits for one of those, never for the network.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tillgate.agent.store import facts, hqholds, meta, outbox, syncstate
from tillgate.agent.store import products as store_products
from tillgate.agent.store.db import Database
from tillgate.agent.store.ledger import ts
from tillgate.core.cards import mask_in_text
from tillgate.core.clock import Clock
from tillgate.core.errors import HqBadReply, HqRefused, SyncError, TillgateError
from tillgate.core.products import Product

from . import feed, snapshot
from .client import HqClient
from .wire import ChangePage, ProductPage

if TYPE_CHECKING:
    from tillgate.agent.usecases.events import EventBus

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (entries sent so far, backlog at the start)
MAX_PAGES = 100_000
# A counter the push's read writes, so that its commit has something to put on the disk.
PUSH_READS = "sync.push_reads"
PRODUCT_PAGE = 5000  # products asked for per page of the product list
# Changes asked for per page of the feed: 1000 cards with a dozen lots each still fit the
# 2 MiB a change page may have (sync/client.py), so a page is not asked for twice. The
# till parses and writes a page a card at a time, a few hundred per transaction
# (sync/feed.py WRITE_CHUNK), so a big page does not make a sale wait.
PAGE_LIMIT = 1000
PROGRESS_SECONDS = 5.0  # a long pull logs how far it got this often


@dataclass(kw_only=True)
class SyncReport:
    """What one completed sync did."""

    pushed: int = 0  # entries HQ stored or already had (marked synced here)
    duplicates: int = 0  # of those, entries HQ already had (a resend after a lost reply)
    batches: int = 0
    pages: int = 0
    changes: int = 0
    program: str | None = None  # a program version put in force by this sync
    products: str | None = None  # a product list version put in force by this sync
    product_pages: int = 0  # pages of the product list downloaded
    negative_cards: list[str] = field(default_factory=list)  # masked numbers, as HQ sends them


class OnlineState:
    """Whether this till reaches head office, as sync last saw it.

    Sync owns it and sets it after every attempt; the till's use cases read it (it is
    their :class:`~tillgate.agent.usecases.ports.Connectivity`): offline, redemption is
    capped by ``program.offline``. A till is online until sync says otherwise.
    """

    def __init__(self) -> None:
        self._offline = False

    @property
    def offline(self) -> bool:
        return self._offline

    def set(self, offline: bool) -> bool:
        """Record the state; True if it changed."""
        changed, self._offline = self._offline != offline, offline
        return changed


class Syncer:
    """Pushes this till's outbox to head office and applies HQ's change feed."""

    def __init__(
        self,
        *,
        db: Database,
        client: HqClient,
        till: str,
        clock: Clock,
        batch_size: int = 500,
        page_limit: int = PAGE_LIMIT,
        offline_after_seconds: float = 60,
        online: OnlineState | None = None,
        events: EventBus | None = None,
        product_page: int = PRODUCT_PAGE,
    ) -> None:
        self.db = db
        self.client = client
        self.till = till
        self.clock = clock
        self.batch_size = batch_size
        self.page_limit = page_limit
        self._cards_through = 0  # a card snapshot's change id, while the pull after it runs
        self.offline_after_seconds = offline_after_seconds
        self.online = online or OnlineState()
        self.events = events
        self.product_page = product_page
        self._lock = threading.Lock()  # one sync at a time in this process
        self._published: tuple[bool, int] | None = None

    # ------------------------------------------------------------ push

    def push(self, progress: Progress | None = None) -> SyncReport:
        """Send every unsynced entry (and coupon use, new card) in batches, in seq order."""
        report = SyncReport()
        with self.db.read() as conn:
            total = outbox.backlog(conn)
            first = outbox.first_unsynced(conn)
            next_seq = first if first is not None else outbox.last_seq(conn) + 1
        done = 0
        if progress is not None and total:
            progress(0, total)
        for _ in range(outbox.MAX_BATCHES):
            # Read in a durable write: its commit puts every transaction before it on the
            # disk (a calculate's does not wait for it; agent/store/db.py), so nothing is
            # sent that a power cut could take back and reuse the seq of.
            with self.db.write() as conn:
                entries = outbox.entries(conn, from_seq=next_seq, limit=self.batch_size)
                coupons = outbox.coupons_used(conn, limit=self.batch_size)
                cards = outbox.cards_new(conn, limit=self.batch_size)
                # A receipt's facts go with (or after) the entries they follow.
                sent_through = entries[-1]["seq"] if entries else next_seq - 1
                receipts = facts.unsynced(conn, through_seq=sent_through, limit=self.batch_size)
                # Holds whose end head office did not hear at once (hold timeout, HQ down).
                ended = hqholds.unsent(conn, limit=self.batch_size)
                top = outbox.last_seq(conn)
                anything = bool(entries or coupons or cards or receipts or ended)
                if anything:
                    meta.put(conn, PUSH_READS, int(meta.get(conn, PUSH_READS) or 0) + 1)
            if not anything:
                return report
            body = {"till": self.till, "entries": entries, "coupons_used": coupons}
            body["cards_new"] = cards
            body["facts"] = receipts
            body["holds"] = ended
            try:
                reply = self.client.push(body)
            except HqRefused as exc:
                if exc.code != "sequence_gap":
                    raise
                next_seq = self._expected(exc, top)
                logger.warning("head office expects entries from seq %d: resending", next_seq)
                continue
            last_sent = entries[-1]["seq"] if entries else next_seq - 1
            through = self._through(reply.through_seq, last_sent)
            # HQ's through_seq is the highest seq *it* holds for this till; an entry of ours
            # that conflicts with what it holds (a replaced machine enrolled under the same
            # id) is at or below it, and must stay unsynced, never be marked as delivered.
            if reply.conflicts:
                through = min(through, min(c.seq for c in reply.conflicts) - 1)
            sent = {f["id"] for f in receipts}
            with self.db.write() as conn:
                marked = outbox.mark_synced(
                    conn,
                    through_seq=through,
                    coupons=[c["code"] for c in coupons],
                    cards=[c["number"] for c in cards],
                    now=self.clock.now(),
                )
                facts.mark_synced(conn, [i for i in reply.facts if i in sent], now=self.clock.now())
                told = {h["receipt_id"] for h in ended}
                hqholds.mark_sent(conn, [r for r in reply.holds if r in told], now=self.clock.now())
            report.batches += 1
            report.pushed += marked
            report.duplicates += reply.duplicates
            report.negative_cards.extend(
                n for n in reply.negative_cards if n not in report.negative_cards
            )
            done += marked
            if progress is not None and total:
                progress(min(done, total), total)
            if reply.conflicts or through < last_sent:
                raise SyncError(
                    f"head office stopped at seq {through + 1}: "
                    f"{len(reply.conflicts) or 'a'} conflicting entr"
                    f"{'ies' if len(reply.conflicts) > 1 else 'y'} from this till (head "
                    "office lists them under sync_conflicts in /v1/admin/flags); the till "
                    "keeps them and stays unsynced (docs/operations.md: what needs a person)"
                )
            next_seq = through + 1
            progressed = sent & set(reply.facts) or told & set(reply.holds)
            if not entries and not coupons and not cards and not progressed:
                # Facts head office did not take (it does not hold their entries yet, or
                # knows no facts): sent again on the next sync, not again and again now.
                return report
        raise SyncError(f"push did not finish in {outbox.MAX_BATCHES} batches")

    @staticmethod
    def _through(through: int, last_sent: int) -> int:
        """HQ's ``through_seq``, if it can be true: never beyond the last seq this push sent.

        Marking goes by seq (``seq <= through``), so a bigger number would mark as
        delivered entries HQ never got — among them entries written while this push was on
        the wire — and they would never be sent. Nothing of such a reply is used.
        """
        if through > last_sent:
            raise HqBadReply(
                f"head office says it holds this till's entries through seq {through}, but "
                f"this push sent them only through seq {last_sent}: a reply that cannot be "
                "true (forged on the way, or another machine enrolled as this till); nothing "
                "was marked synced, the push is sent again on the next sync"
            )
        return through

    @staticmethod
    def _expected(exc: HqRefused, top: int) -> int:
        expected = exc.details.get("expected")
        if not isinstance(expected, int) or isinstance(expected, bool) or expected < 1:
            raise HqBadReply(f"head office sent sequence_gap without a usable 'expected': {exc}")
        if expected > top + 1:
            raise HqBadReply(
                f"head office expects seq {expected}, but this till's ledger ends at {top}"
            )
        return expected

    # ------------------------------------------------------------ pull

    def pull(self, report: SyncReport | None = None) -> SyncReport:
        """Apply every page of changes after the stored cursor, each with its cursor.

        The next page is asked for while this one is written (as the product list is):
        head office builds a page while the till writes the one before, which takes a
        first start's snapshot of a million cards from the sum of the two towards the
        larger. A long pull says how far it got in the log every few seconds.
        """
        report = report or SyncReport()
        try:
            return self._pull(report)
        except Exception:
            # A pull of every card goes without some indexes (sync/feed.py): cut off, the
            # till gets them back before it waits for the next one.
            with suppress(TillgateError):
                feed.settle(self.db)
            raise

    def _pull(self, report: SyncReport) -> SyncReport:
        with self.db.read() as conn:
            cursor = int(meta.get(conn, syncstate.CURSOR) or 0)
            self._cards_through = int(meta.get(conn, syncstate.CARDS_THROUGH) or 0)
        fresh = cursor == 0 and not self._cards_through and snapshot.wanted(self.db)
        if fresh:
            # A fresh till: every card from head office's snapshot, if it has one.
            self._cards_through = snapshot.start(self.db, self.client, now=self.clock.now)
        try:
            return self._pages(report, cursor)
        finally:
            if fresh and self._cards_through:
                # The copy and the phone index went through the log in a few big writes:
                # into the file now, before the POS's first calculate reads past them.
                with suppress(TillgateError):
                    self.db.checkpoint(truncate=True)

    def _pages(self, report: SyncReport, cursor: int) -> SyncReport:
        started = told = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="tillgate-feed") as pool:
            ahead: Future[ChangePage] | None = None
            for _ in range(MAX_PAGES):
                page = ahead.result() if ahead is not None else self._changes(cursor)
                ahead = None
                if page.more and page.cursor > cursor:
                    ahead = pool.submit(self._changes, page.cursor)
                applied = feed.apply(
                    self.db, page, till=self.till, cursor=cursor, now=self.clock.now()
                )
                report.pages += 1
                report.changes += page.size
                report.program = applied.program or report.program
                if page.more and page.cursor == cursor and not page.size:
                    raise HqBadReply(
                        f"head office says there is more after cursor {cursor} but sent none"
                    )
                cursor = page.cursor
                if not page.more:
                    if report.pages > 1 and told > started:
                        logger.info(
                            "pulled %d changes from head office in %.0f s",
                            report.changes,
                            time.monotonic() - started,
                        )
                    return report
                if time.monotonic() - told >= PROGRESS_SECONDS:
                    told = time.monotonic()
                    logger.info(
                        "pulling from head office: %d changes in %d pages so far (cursor %d)",
                        report.changes,
                        report.pages,
                        cursor,
                    )
        raise SyncError(f"pull did not finish in {MAX_PAGES} pages")

    def _changes(self, cursor: int) -> ChangePage:
        return self.client.changes(cursor, self.page_limit, cards_through=self._cards_through)

    def pull_products(self, report: SyncReport | None = None) -> SyncReport:
        """Download the product list the change feed named, if this till is not on it.

        Pages are kept aside (:func:`tillgate.agent.store.products.stage`), each with its
        position in one short transaction, and the whole list goes in force in one more
        (:func:`~tillgate.agent.store.products.stage_commit`): cut off anywhere, the till
        keeps pricing with its old list whole, and the next sync goes on from the last page
        kept. Head office keeps only the list in force: if it moved on meanwhile, it says
        which version it has now, and the download starts again with that one.
        """
        report = report or SyncReport()
        with self.db.read() as conn:
            want = store_products.wanted(conn)
            have = meta.get(conn, store_products.VERSION_KEY)
            state = store_products.staged(conn)
        restarts = 0
        # The next page is asked for while this one is kept: head office (and the wire)
        # work while the till writes, which takes the first feed of a big list from the
        # sum of the two towards the larger.
        with ThreadPoolExecutor(1, thread_name_prefix="tillgate-products") as pool:
            ahead: Future[tuple[ProductPage, list[Product]]] | None = None
            while want is not None and want != have:
                if state is not None and state.version != want:
                    state = None
                after = state.after if state else 0
                try:
                    page, rows = ahead.result() if ahead is not None else self._page(want, after)
                except HqRefused as exc:
                    current = exc.details.get("version", "")
                    if exc.status == 404 and current is None:
                        # Head office has no list at all (a database restored from before
                        # one): the till keeps its own and stops asking.
                        logger.warning("head office has no product list; keeping this till's")
                        with self.db.write() as conn:
                            store_products.set_wanted(conn, None)
                            store_products.stage_drop(conn)
                        return report
                    if exc.status != 404 or not isinstance(current, str) or restarts >= 3:
                        raise
                    restarts += 1
                    logger.info("product list %s is gone at head office; getting %s", want, current)
                    with self.db.write() as conn:
                        store_products.set_wanted(conn, current)
                        store_products.stage_drop(conn)
                    want, state, ahead = current, None, None
                    continue
                ahead = None
                if page.version != want:
                    raise HqBadReply(
                        f"head office sent product list version {page.version} when asked for "
                        f"{want}"
                    )
                if page.after < after or (page.more and not page.products):
                    raise HqBadReply(
                        f"head office's product list page after position {after} goes nowhere"
                    )
                if page.more:
                    ahead = pool.submit(self._page, want, page.after)
                with self.db.write() as conn:
                    if state is None:
                        state = store_products.stage_begin(conn, version=want, count=page.count)
                    state = store_products.stage(conn, state, rows, after=page.after)
                report.product_pages += 1
                if report.product_pages > MAX_PAGES:
                    raise SyncError(f"the product list did not finish in {MAX_PAGES} pages")
                if page.more:
                    continue
                try:
                    with self.db.write() as conn:
                        n = store_products.stage_commit(conn, state)
                except ValueError as exc:
                    with self.db.write() as conn:  # begun again from the start next time
                        store_products.stage_drop(conn)
                    raise HqBadReply(
                        f"head office sent a product list that does not add up: {exc}"
                    ) from exc
                logger.info("product list version %s in force (%d products)", want, n)
                report.products = have = want
        return report

    def _page(self, version: str, after: int) -> tuple[ProductPage, list[Product]]:
        """A page of the product list and its products, checked whole before any is kept
        (on the download's own thread: SQLite lets go of the GIL while the till writes)."""
        page = self.client.products(version, after, self.product_page)
        return page, page.rows()

    # ------------------------------------------------------------ whole sync

    def run_once(self, progress: Progress | None = None) -> SyncReport:
        """One complete sync; raises a SyncError (or StoreError) when it cannot complete."""
        with self._lock:
            started = self.clock.now()
            with self.db.read() as conn:
                mark = outbox.last_seq(conn)
            try:
                report = self.push(progress)
                self.pull(report)
                self.pull_products(report)
            except TillgateError as exc:
                with self.db.write() as conn:
                    meta.put(conn, syncstate.LAST_ATTEMPT, ts(started))
                    meta.put(conn, syncstate.LAST_ERROR, mask_in_text(str(exc)))
                raise
            with self.db.write() as conn:
                meta.put(conn, syncstate.LAST_ATTEMPT, ts(started))
                meta.put(conn, syncstate.LAST_ERROR, None)
                meta.put(conn, syncstate.LAST_SYNC, ts(self.clock.now()))
                meta.put(conn, syncstate.MARK_SEQ, mark)
        if report.negative_cards:
            logger.warning(
                "head office reports cards with a negative balance: %s",
                ", ".join(mask_in_text(n) for n in report.negative_cards),
            )
        logger.debug(
            "sync: pushed %d entries (%d duplicates), %d changes in %d pages",
            report.pushed,
            report.duplicates,
            report.changes,
            report.pages,
        )
        return report

    def attempt(self) -> SyncReport | None:
        """The scheduled job: one sync, errors logged (never raised), then the state updated."""
        report = None
        try:
            report = self.run_once()
        except TillgateError as exc:
            logger.warning("sync failed: %s", mask_in_text(str(exc)))
        finally:
            self.refresh()
        return report

    # ------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        """Offline or not, when the last sync completed, how many entries wait."""
        with self.db.read() as conn:
            last = syncstate.last_sync(conn)
            unsynced = outbox.backlog(conn)
            error = meta.get(conn, syncstate.LAST_ERROR)
        offline = syncstate.is_offline(last, self.clock.now(), self.offline_after_seconds)
        return {
            "offline": offline,
            "mode": "hq",
            "last_sync": last.isoformat() if last else None,
            "unsynced_entries": unsynced,
            "error": error or None,
        }

    def refresh(self) -> dict[str, Any]:
        """Set the till's online state and tell the screen when the picture changed."""
        state = self.state()
        if self.online.set(state["offline"]):
            logger.warning(
                "till is now %s (last completed sync: %s)",
                "OFFLINE" if state["offline"] else "online",
                state["last_sync"] or "never",
            )
        key = (state["offline"], state["unsynced_entries"])
        if self.events is not None and key != self._published:
            self._published = key
            self.events.publish("sync", state)
        return state

    def close(self) -> None:
        self.client.close()
        self.db.close()
