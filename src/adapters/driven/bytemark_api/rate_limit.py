"""Process-wide limit on Bytemark HTTP attempts (`BYTEMARK_RATE_LIMIT_RPS`)."""

from __future__ import annotations

from aiolimiter import AsyncLimiter


class RateLimiter:
    """At most `requests_per_second` attempts per second across every caller sharing this object.
    0 or None means unlimited. Attempts are spaced evenly (no burst): a bucket of capacity one
    that drains every 1/rps seconds, so Bytemark never sees a spike at the start of a bulk run."""

    def __init__(self, requests_per_second: float | None) -> None:
        if requests_per_second is not None and requests_per_second < 0:
            raise ValueError("requests_per_second must be >= 0 (0 = unlimited)")
        self.requests_per_second = requests_per_second or 0.0
        self._limiter = (
            AsyncLimiter(max_rate=1, time_period=1.0 / self.requests_per_second)
            if self.requests_per_second
            else None
        )

    async def acquire(self) -> None:
        """Wait for a slot; returns at once when unlimited."""
        if self._limiter is not None:
            await self._limiter.acquire()

    def __repr__(self) -> str:
        return f"RateLimiter(requests_per_second={self.requests_per_second:g})"
