"""Keeps the sync-state gauges current in a server that only serves unary calls: bulk runs set
them when they end, but a Check or Update changes a rider's state too, so `serve` also reads the
riders per sync state every SYNC_GAUGES_REFRESH_SECONDS. The count of soon-expiring tokens is read
only every TOKEN_GAUGE_REFRESH_SECONDS: on MySQL it scans the whole `bytemark_tokens` table (a
table the app owns, with no index to use: ~2 s of MariaDB CPU per million riders), once per
process, and its alert looks a day ahead."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from adapters.driven.observability.instrumented_use_cases import record_overview
from application.periodic import repeat_every
from application.sync_queries import SyncOverview


class ReadsOverview(Protocol):
    def __call__(self, *, count_tokens: bool = True) -> Awaitable[SyncOverview]: ...


class SyncGaugeRefresher:
    def __init__(
        self,
        overview: ReadsOverview,
        every_seconds: float,
        tokens_every_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._overview = overview
        self.every_seconds = every_seconds
        self.tokens_every_seconds = tokens_every_seconds
        self._clock = clock
        self._tokens_due = float("-inf")

    async def refresh(self) -> None:
        now = self._clock()
        count_tokens = now >= self._tokens_due
        record_overview(await self._overview(count_tokens=count_tokens))
        if count_tokens:  # only once counted: a failed round tries again next time
            self._tokens_due = now + self.tokens_every_seconds

    async def run(self) -> None:
        """At once, then every `every_seconds` until cancelled. A store that cannot answer leaves
        the gauges as they were until the next round."""
        await repeat_every(self.every_seconds, self.refresh, "sync gauges refresh")
