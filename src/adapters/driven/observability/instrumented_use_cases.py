"""Records the service's cache and refresh metrics around the real use cases.

`InstrumentedUseCases` has the API of `application.use_cases.TicketCacheUseCases` and
delegates every call to it, so neither the use cases (which know no Prometheus) nor the
gRPC servicer (which only translates) record metrics themselves. It counts:

- cache lookups: `get_cache` found a cache (hit) or raised CacheNotFound (miss);
- refresh outcomes and free tickets found: every RefreshResult, whether it came from a
  unary call or from one user of a bulk run;
- bulk users by job and result (ok / failed), and bulk runs in progress by job;
- change-feed subscribers open and events sent.

Invalid arguments and other errors are not lookups or refreshes and are not counted here
(the gRPC interceptor counts them by status code).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from adapters.driven.observability.metrics import (
    BULK_RUNS_IN_PROGRESS,
    BULK_SKIPPED,
    BULK_STOPPED,
    BULK_USERS,
    CACHE_AGE_MAX_SECONDS,
    CACHE_AGE_SECONDS,
    CACHE_LOOKUPS,
    CHANGE_FEED_EVENTS_SENT,
    CHANGE_FEED_SUBSCRIBERS,
    FREE_TICKETS_FOUND,
    REFRESH_OUTCOMES,
    SYNC_RIDERS,
    TOKENS_EXPIRING,
)
from application.api import TicketCacheApi
from application.change_feed import ChangeBatch
from application.errors import ApplicationError, CacheNotFound
from application.ports import BulkJob
from application.results import BulkProgress, PurgeResult, RefreshResult
from application.sync_queries import SyncOverview, SyncStatusPage
from domain.model import TicketCache
from domain.sync_state import SyncState, SyncStatus

log = logging.getLogger(__name__)


def record_refresh(result: RefreshResult) -> RefreshResult:
    """Count one refresh by outcome, and the free tickets it found."""
    REFRESH_OUTCOMES.labels(result.outcome.value).inc()
    if result.counts.new_free:
        FREE_TICKETS_FOUND.inc(result.counts.new_free)
    return result


def record_progress(job: BulkJob, progress: BulkProgress, now: float) -> float | None:
    """Count one user of a bulk run (the skipped-not-empty and stopped events are about no user);
    returns the age of the cache the run leaves the user with, when known."""
    cache_timestamp: int | None = None
    if progress.result is not None:
        record_refresh(progress.result)
        BULK_USERS.labels(job, "ok").inc()
        cache_timestamp = progress.result.refreshed_at or None
    elif progress.error is not None:
        BULK_USERS.labels(job, "failed").inc()
    elif progress.skipped is not None:
        BULK_SKIPPED.labels(job, progress.skipped.reason.value).inc()
        cache_timestamp = progress.skipped.status.cache_timestamp
    if progress.stopped:
        BULK_STOPPED.labels(job).inc()
    if cache_timestamp is None:
        return None
    age = max(0.0, now - cache_timestamp)
    CACHE_AGE_SECONDS.observe(age)
    return age


def record_overview(overview: SyncOverview) -> None:
    for state, riders in overview.by_state.items():
        SYNC_RIDERS.labels(state.value).set(riders)
    if overview.tokens_expiring is not None:
        TOKENS_EXPIRING.set(overview.tokens_expiring)


# Every read counts one of these: the labelled series are looked up once, not per call.
_LOOKUP_HITS = CACHE_LOOKUPS.labels("hit")
_LOOKUP_MISSES = CACHE_LOOKUPS.labels("miss")


class InstrumentedUseCases:
    """`TicketCacheUseCases` with metrics. Streams stay async generators: closing one closes
    the inner stream at once (which stops the bulk run's new work)."""

    __slots__ = ("_inner",)

    def __init__(self, inner: TicketCacheApi) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"InstrumentedUseCases({self._inner!r})"

    async def get_cache(self, user_id: int) -> TicketCache:
        try:
            cache = await self._inner.get_cache(user_id)
        except CacheNotFound:
            _LOOKUP_MISSES.inc()
            raise
        _LOOKUP_HITS.inc()
        return cache

    async def build(self, user_id: int) -> RefreshResult:
        return record_refresh(await self._inner.build(user_id))

    async def check(self, user_id: int, dry_run: bool = False) -> RefreshResult:
        if dry_run:  # refreshed nothing: no outcome to count
            return await self._inner.check(user_id, dry_run=True)
        return record_refresh(await self._inner.check(user_id))

    async def update(self, user_id: int) -> RefreshResult:
        return record_refresh(await self._inner.update(user_id))

    async def check_timeout(self, user_id: int, max_age_seconds: int | None) -> RefreshResult:
        return record_refresh(await self._inner.check_timeout(user_id, max_age_seconds))

    def build_if_empty(self, concurrency: int | None) -> AsyncGenerator[BulkProgress, None]:
        return _instrumented(BulkJob.BOOTSTRAP, self._inner.build_if_empty(concurrency), self._inner)

    def refresh_stale(
        self,
        max_age_seconds: int | None,
        concurrency: int | None,
        shard_index: int,
        shard_count: int,
        user_ids: Sequence[int],
        dry_run: bool = False,
    ) -> AsyncGenerator[BulkProgress, None]:
        if dry_run:  # refreshed nothing: no run or outcome to count
            return self._inner.refresh_stale(
                max_age_seconds, concurrency, shard_index, shard_count, user_ids, dry_run=True
            )
        events = self._inner.refresh_stale(
            max_age_seconds=max_age_seconds,
            concurrency=concurrency,
            shard_index=shard_index,
            shard_count=shard_count,
            user_ids=user_ids,
        )
        return _instrumented(BulkJob.REFRESH_STALE, events, self._inner)

    async def purge_orphans(self, dry_run: bool) -> PurgeResult:
        return await self._inner.purge_orphans(dry_run)

    async def get_sync_status(self, user_id: int) -> SyncStatus:
        return await self._inner.get_sync_status(user_id)

    async def list_sync_statuses(
        self, state: SyncState | None, page_size: int, page_token: str
    ) -> SyncStatusPage:
        return await self._inner.list_sync_statuses(state, page_size, page_token)

    async def sync_overview(self, *, count_tokens: bool = True) -> SyncOverview:
        overview = await self._inner.sync_overview(count_tokens=count_tokens)
        record_overview(overview)
        return overview

    async def watch_changes(
        self, start_cursor: str, user_ids: Sequence[int]
    ) -> AsyncGenerator[ChangeBatch, None]:
        CHANGE_FEED_SUBSCRIBERS.inc()
        try:
            async with aclosing(self._inner.watch_changes(start_cursor, user_ids)) as batches:
                async for batch in batches:
                    CHANGE_FEED_EVENTS_SENT.inc(len(batch.events))
                    yield batch
        finally:
            CHANGE_FEED_SUBSCRIBERS.dec()


async def _instrumented(
    job: BulkJob, events: AsyncGenerator[BulkProgress, None], inner: TicketCacheApi
) -> AsyncGenerator[BulkProgress, None]:
    """Yield `events`, counting each user; the run is in progress until the stream ends, fails
    or is closed, and the inner stream is closed in every case. A run that ends refreshes the
    sync-state gauges."""
    in_progress = BULK_RUNS_IN_PROGRESS.labels(job)
    in_progress.inc()
    oldest: float | None = None
    try:
        async with aclosing(events) as stream:
            async for progress in stream:
                age = record_progress(job, progress, time.time())
                if age is not None and (oldest is None or age > oldest):
                    oldest = age
                yield progress
        if oldest is not None:
            CACHE_AGE_MAX_SECONDS.labels(job).set(oldest)
        try:
            record_overview(await inner.sync_overview())
        except ApplicationError as exc:  # gauges stay as they were; the run itself succeeded
            log.warning("sync gauges not refreshed: %s", exc)
    finally:
        in_progress.dec()
