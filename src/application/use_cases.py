"""The service's use cases behind one facade, so a transport depends on a single object."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing
from dataclasses import replace

from application.bulk import Untraced, run_bulk
from application.change_feed import ChangeBatch, ChangeFeed
from application.dry_run import DryRunTotals, no_notice
from application.errors import CacheNotFound, StoreUnavailable, Unsupported
from application.notices import BulkJob, BulkSummary, Notice
from application.outbox import RUN_NOTICE_USER_ID, notice_record
from application.ports import BulkTracer, SyncStateStore
from application.refresh import RefreshDependencies, UserRefresher
from application.relay import OutboxRelay
from application.results import BulkProgress, PurgeResult, RefreshResult, Skipped
from application.sync_queries import SyncOverview, SyncQueries, SyncStatusPage
from application.sync_tracking import Attempt, SyncPolicy, SyncTracker
from application.validation import (
    validate_concurrency,
    validate_max_age,
    validate_shard,
    validate_user_id,
    validate_user_ids,
)
from domain.changes import cache_changes
from domain.free_tickets import FreeTicketPolicy
from domain.model import TicketCache
from domain.sync_state import SyncState, SyncStatus

_PURGE_BATCH = 500
log = logging.getLogger(__name__)


class TicketCacheUseCases:
    def __init__(
        self,
        deps: RefreshDependencies,
        *,
        free_tickets: FreeTicketPolicy,
        cache_timeout_seconds: int,
        bulk_concurrency: int,
        passes4_retention_days: int | None = None,
        sync_states: SyncStateStore,
        sync_policy: SyncPolicy | None = None,
        token_refresh_margin_seconds: int = 60,
        relay: OutboxRelay | None = None,
        change_feed: ChangeFeed | None = None,
        bulk_tracer: BulkTracer | None = None,
    ) -> None:
        self._deps = deps
        self._bulk_tracer: BulkTracer = bulk_tracer or Untraced()
        self.change_feed = change_feed
        self.relay = relay or OutboxRelay(
            deps.outbox, deps.ticket_log, deps.refresh_log, deps.tokens, notifier=deps.notifier
        )
        self._refresher = UserRefresher(
            deps,
            free_tickets,
            cache_timeout_seconds,
            passes4_retention_days,
            token_refresh_margin_seconds=token_refresh_margin_seconds,
            relay=self.relay,
        )
        self._bulk_concurrency = bulk_concurrency
        self._sync = SyncTracker(sync_states, deps.tokens, deps.clock, sync_policy or SyncPolicy())
        self._sync_queries = SyncQueries(sync_states, deps.tokens, deps.clock)

    async def get_cache(self, user_id: int) -> TicketCache:
        validate_user_id(user_id)
        cache = await self._deps.caches.get(user_id)
        if cache is None:
            raise CacheNotFound(user_id)
        return cache

    # Explicit calls always try Bytemark, whatever the rider's sync state, and record the outcome.

    async def build(self, user_id: int) -> RefreshResult:
        return await self._sync.tracked(validate_user_id(user_id), self._refresher.build)

    async def check(self, user_id: int, dry_run: bool = False) -> RefreshResult:
        """`dry_run`: what the check would do, written nowhere (see UserRefresher.dry_run)."""
        if dry_run:
            return await self._refresher.dry_run(validate_user_id(user_id))
        return await self._sync.tracked(validate_user_id(user_id), self._refresher.check)

    async def update(self, user_id: int) -> RefreshResult:
        return await self._sync.tracked(validate_user_id(user_id), self._refresher.update)

    async def check_timeout(self, user_id: int, max_age_seconds: int | None) -> RefreshResult:
        validate_user_id(user_id)
        max_age = validate_max_age(max_age_seconds)
        return await self._sync.tracked(user_id, lambda uid: self._refresher.check_timeout(uid, max_age))

    async def get_sync_status(self, user_id: int) -> SyncStatus:
        return await self._sync_queries.get(user_id)

    async def list_sync_statuses(
        self, state: SyncState | None, page_size: int, page_token: str
    ) -> SyncStatusPage:
        return await self._sync_queries.page(state, page_size, page_token)

    async def sync_overview(self, *, count_tokens: bool = True) -> SyncOverview:
        return await self._sync_queries.overview(count_tokens=count_tokens)

    async def build_if_empty(self, concurrency: int | None) -> AsyncGenerator[BulkProgress, None]:
        """Build for every user with a token, but only when no cache exists at all."""
        workers = validate_concurrency(concurrency) or self._bulk_concurrency
        if not await self._deps.caches.is_empty():
            yield BulkProgress(None, None, None, 0, 0, 0, skipped_not_empty=True)
            return
        total = await self._deps.tokens.count_users_with_token()
        ids = self._deps.tokens.iter_user_ids_with_token()
        bulk = self._tracked_bulk(BulkJob.BOOTSTRAP, ids, total, workers, self._refresher.build)
        async with aclosing(bulk):  # closing this stream must close the run (stops new work)
            async for progress in bulk:
                yield progress

    async def refresh_stale(
        self,
        max_age_seconds: int | None,
        concurrency: int | None,
        shard_index: int,
        shard_count: int,
        user_ids: Sequence[int],
        dry_run: bool = False,
    ) -> AsyncGenerator[BulkProgress, None]:
        """The hourly job: a timeout check for every user with a token (or the listed ones).
        `dry_run`: each rider's report, written nowhere (no sync state either, so no rider is
        skipped by it), with the run's totals on every event."""
        max_age = validate_max_age(max_age_seconds)
        workers = validate_concurrency(concurrency) or self._bulk_concurrency
        shard = validate_shard(shard_index, shard_count)
        explicit = validate_user_ids(user_ids)
        if explicit:
            chosen = [u for u in explicit if shard is None or shard.owns(u)]
            ids: AsyncGenerator[int, None] = _iterate(chosen)
            total = len(chosen)
        else:
            ids = self._deps.tokens.iter_user_ids_with_token(shard)
            total = await self._deps.tokens.count_users_with_token(shard)

        async def refresh_one(user_id: int) -> RefreshResult:
            return await self._refresher.check_timeout(user_id, max_age, digest=True)

        if dry_run:
            bulk = _dry_run_bulk(ids, total, workers, lambda uid: self._refresher.dry_run(uid, max_age or 0))
        else:
            bulk = self._tracked_bulk(BulkJob.REFRESH_STALE, ids, total, workers, refresh_one)
        async with aclosing(bulk):
            async for progress in bulk:
                yield progress

    async def _tracked_bulk(
        self, job: BulkJob, ids: AsyncGenerator[int, None], total: int, workers: int, attempt: Attempt
    ) -> AsyncGenerator[BulkProgress, None]:
        """A bulk run that skips riders by sync state and records the others' new states."""
        run = self._sync.start_run()
        traced = self._bulk_tracer.start_run(job, total)

        async def refresh_one(user_id: int) -> RefreshResult | Skipped:
            with traced.rider(user_id):
                return await run.refresh_one(user_id, attempt)

        bulk = run_bulk(
            job,
            run.read_ahead(ids),
            total,
            workers,
            refresh_one,
            self._announce,
            halted=run.halted,
            paused=run.store.paused,
        )
        try:
            async with aclosing(bulk):
                async for progress in bulk:
                    yield progress
        finally:
            try:
                await run.close()  # before the stream ends: a caller may read the statuses next
            finally:
                traced.end()

    async def _announce(self, summary: BulkSummary) -> None:
        """A bulk run's notice goes through the outbox too: the relay posts it, retrying."""
        record = notice_record(RUN_NOTICE_USER_ID, Notice(summary=summary), self._deps.clock.now())
        try:
            await self._deps.outbox.add([record])
        except StoreUnavailable as exc:
            log.warning("bulk run notice not stored", extra={"job": summary.job.value, "reason": exc.reason})
            return
        await self.relay.deliver_soon([record])

    async def purge_orphans(self, dry_run: bool) -> PurgeResult:
        """Caches whose user no longer has a token: listed, and removed unless a dry run; so are
        (counted, not listed) the sync statuses of riders without a token."""
        orphans: list[int] = []
        batch: list[int] = []
        async for user_id in self._deps.caches.iter_user_ids(batch_size=_PURGE_BATCH):
            batch.append(user_id)
            if len(batch) == _PURGE_BATCH:
                orphans += await self._orphans_in(batch)
                batch = []
        if batch:
            orphans += await self._orphans_in(batch)
        if not dry_run:
            for user_id in orphans:
                # the feed's subscribers see every pass of a purged cache removed
                cache = await self._deps.caches.get(user_id)
                removed = cache_changes(user_id, cache, None, self._deps.clock.now())
                if await self._deps.caches.delete(user_id, removed):
                    await self.relay.deliver_after_write(user_id, (), changed=bool(removed))
        statuses = await self._purge_orphaned_statuses(dry_run)
        return PurgeResult(user_ids=tuple(orphans), dry_run=dry_run, sync_statuses=statuses)

    async def _purge_orphaned_statuses(self, dry_run: bool) -> int:
        """Sync statuses whose rider has no token, counted, and removed unless a dry run."""
        store, after, count = self._sync.store, 0, 0
        while page := await store.list_after(after, _PURGE_BATCH):
            after = page[-1].user_id
            orphans = await self._orphans_in([status.user_id for status in page])
            count += len(orphans) if dry_run or not orphans else await store.delete_many(orphans)
        return count

    async def watch_changes(
        self, start_cursor: str, user_ids: Sequence[int]
    ) -> AsyncGenerator[ChangeBatch, None]:
        if self.change_feed is None:
            raise Unsupported("the change feed is not configured on this server")
        async with aclosing(self.change_feed.watch(start_cursor, user_ids)) as batches:
            async for batch in batches:
                yield batch

    async def _orphans_in(self, user_ids: list[int]) -> list[int]:
        with_token = await self._deps.tokens.users_with_token(user_ids)
        return [u for u in user_ids if u not in with_token]


async def _iterate(values: Sequence[int]) -> AsyncGenerator[int, None]:
    for value in values:
        yield value


async def _dry_run_bulk(
    ids: AsyncGenerator[int, None],
    total: int,
    workers: int,
    preview: Callable[[int], Awaitable[RefreshResult]],
) -> AsyncGenerator[BulkProgress, None]:
    """A bulk run of dry runs: no sync state, no notice at its end; each event carries the totals."""
    totals = DryRunTotals()
    bulk = run_bulk(BulkJob.REFRESH_STALE, ids, total, workers, preview, no_notice)
    async with aclosing(bulk):
        async for progress in bulk:
            if progress.result is not None and progress.result.dry_run is not None:
                totals = totals.counting(progress.result.dry_run)
            yield replace(progress, dry_run_totals=totals)
