"""When a cache is old enough to refresh."""

from __future__ import annotations

DEFAULT_CACHE_TIMEOUT_SECONDS = 3600


def is_stale(cache_timestamp: int, now: int, max_age_seconds: int) -> bool:
    """A cache strictly older than the timeout is stale; a clock that went backwards is not."""
    return now - cache_timestamp > max_age_seconds
