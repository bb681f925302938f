"""Keeps the sync-state gauges current in a server that only serves unary calls: bulk runs set
them when they end, but a Check or Update changes a rider's state too, so `serve` also reads the
overview every SYNC_GAUGES_REFRESH_SECONDS (one count per sync state from the state store, one
count of soon-expiring tokens from the token store)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from adapters.observability.instrumented_use_cases import record_overview
from application.periodic import repeat_every
from application.sync_queries import SyncOverview


class SyncGaugeRefresher:
    def __init__(self, overview: Callable[[], Awaitable[SyncOverview]], every_seconds: float) -> None:
        self._overview = overview
        self.every_seconds = every_seconds

    async def refresh(self) -> None:
        record_overview(await self._overview())

    async def run(self) -> None:
        """At once, then every `every_seconds` until cancelled. A store that cannot answer leaves
        the gauges as they were until the next round."""
        await repeat_every(self.every_seconds, self.refresh, "sync gauges refresh")
