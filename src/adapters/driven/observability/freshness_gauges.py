"""Keeps the store-derived freshness gauges current in every `serve` process: the hourly refresh
runs in another process (the CronJob's), so only the store knows how fresh the caches are. Read
on the sync gauges' period, from the cache store's timestamp index (one small read per period).
FerretDB v1 plans no secondary index and scans instead (seconds per 10,000 caches): there the
period stretches so the reads take at most BUSY_SHARE of the time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from adapters.driven.observability.metrics import STORE_OLDEST_CACHE_AGE, STORE_STALE_RIDERS
from application.freshness import StoreFreshness
from application.periodic import repeat_every

BUSY_SHARE = 0.1


def record_freshness(freshness: StoreFreshness) -> None:
    STORE_OLDEST_CACHE_AGE.set(freshness.oldest_cache_age_seconds)
    STORE_STALE_RIDERS.labels(str(freshness.max_age_seconds)).set(freshness.stale_riders)


class FreshnessGaugeRefresher:
    def __init__(self, read: Callable[[], Awaitable[StoreFreshness]], every_seconds: float) -> None:
        self._read = read
        self.every_seconds = every_seconds

    async def refresh(self) -> None:
        record_freshness(await self._read())

    async def run(self) -> None:
        """At once, then every `every_seconds` until cancelled. A store that cannot answer leaves
        the gauges as they were until the next round."""
        await repeat_every(self.every_seconds, self.refresh, "freshness gauges refresh", BUSY_SHARE)
