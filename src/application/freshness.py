"""How fresh the stored caches are, read from the store itself: it holds whichever process
refreshed them (a `serve` replica, the hourly Job, an operator's `run`), so the freshness alerts
work however the refreshes run."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import CacheStore, Clock


@dataclass(frozen=True, slots=True)
class StoreFreshness:
    oldest_cache_age_seconds: int  # 0 when the store holds no cache
    stale_riders: int  # riders whose cache is older than max_age_seconds
    max_age_seconds: int


class FreshnessQuery:
    """The freshness of every stored cache against one max age (the refresh's CACHE_TIMEOUT_SECONDS)."""

    def __init__(self, caches: CacheStore, clock: Clock, max_age_seconds: int) -> None:
        if max_age_seconds < 1:
            raise ValueError("max_age_seconds must be at least 1")
        self._caches = caches
        self._clock = clock
        self.max_age_seconds = max_age_seconds

    async def read(self) -> StoreFreshness:
        now = self._clock.now()
        found = await self._caches.freshness(now - self.max_age_seconds)
        oldest = 0 if found.oldest_timestamp is None else max(0, now - found.oldest_timestamp)
        return StoreFreshness(oldest, found.written_before, self.max_age_seconds)
