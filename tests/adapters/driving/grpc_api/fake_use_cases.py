"""A scripted stand-in for application.use_cases.TicketCacheUseCases (same method API)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from application.change_feed import ChangeBatch
from application.dry_run import DryRunReport, PassRef
from application.errors import CacheNotFound, SyncStatusNotFound
from application.results import BulkProgress, PurgeResult, RefreshResult
from application.sync_queries import SyncOverview, SyncStatusPage
from domain.model import CachedPass, Outcome, RefreshCounts, TicketCache
from domain.sync_state import SyncState, SyncStatus

NOW = 1_700_000_000
BIG_INT = 2**64 + 5  # beyond orjson's range and far beyond a double's exact integers


def make_pass(uuid: str, *, status: str = "USABLE", extra: dict[str, Any] | None = None) -> CachedPass:
    payload: dict[str, Any] = {
        "uuid": uuid,
        "product_uuid": "8c2d1e44-77b0-4d4e-a3f1-0c5e9b6a2d10",
        "status": status,
        "time_created": "2026-11-20T14:05:32.000Z",
        "time_activated": None,
        "activation_count": 0,
        "rider_type": "ADULT",
        "tags": ["metro", 1, True],
        "product": {"name": "METRO Local 1-Ride", "fare": 1.25, "currency": "USD"},
    }
    payload.update(extra or {})
    return CachedPass(
        pass_uuid=uuid,
        timestamp=NOW - 60,
        status=status,
        free_ticket_status=0,
        payload=payload,
        payload_hash=f"hash-{uuid}",
    )


def make_cache(user_id: int, passes: int = 2, passes4: int = 1) -> TicketCache:
    return TicketCache(
        user_id=user_id,
        timestamp=NOW,
        passes=tuple(make_pass(f"p-{user_id}-{i}") for i in range(passes)),
        passes4=tuple(make_pass(f"e-{user_id}-{i}", status="EXPIRED") for i in range(passes4)),
        version=3,
    )


def make_result(user_id: int, outcome: Outcome = Outcome.UPDATED) -> RefreshResult:
    return RefreshResult(
        user_id=user_id,
        outcome=outcome,
        counts=RefreshCounts(passes=2, passes4=1, new=1, changed=1, removed=0, new_free=1),
        refreshed_at=NOW,
        cache=make_cache(user_id),
    )


@dataclass
class FakeUseCases:
    caches: dict[int, TicketCache] = field(default_factory=dict)
    sync_statuses: dict[int, SyncStatus] = field(default_factory=dict)
    #: method name -> exception it raises
    failures: dict[str, BaseException] = field(default_factory=dict)
    #: events the bulk methods stream
    events: list[BulkProgress] = field(default_factory=list)
    #: after the scripted events, keep the stream open until cancelled
    hold_stream_open: bool = False
    #: seconds each unary call takes
    delay: float = 0.0
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    #: what a dry check reports
    dry_run_report: DryRunReport = field(
        default_factory=lambda: DryRunReport(
            Outcome.UPDATED,
            added=(PassRef("passes", "new"),),
            changed=(PassRef("passes", "edited"),),
            removed=(PassRef("passes4", "gone"),),
            free_tickets=("new",),
            hash_differences=(PassRef("passes", "legacy"),),
            token_rotated=True,
        )
    )
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def _enter(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if name in self.failures:
            raise self.failures[name]

    async def get_cache(self, user_id: int) -> TicketCache:
        await self._enter("get_cache", user_id)
        if user_id not in self.caches:
            raise CacheNotFound(user_id)
        return self.caches[user_id]

    async def build(self, user_id: int) -> RefreshResult:
        await self._enter("build", user_id)
        return make_result(user_id, Outcome.BUILT)

    async def check(self, user_id: int, dry_run: bool = False) -> RefreshResult:
        if dry_run:
            await self._enter("check_dry_run", user_id)
            return replace(make_result(user_id, Outcome.UPDATED), dry_run=self.dry_run_report)
        await self._enter("check", user_id)
        return make_result(user_id, Outcome.UPDATED)

    async def update(self, user_id: int) -> RefreshResult:
        await self._enter("update", user_id)
        return make_result(user_id, Outcome.UNCHANGED)

    async def check_timeout(self, user_id: int, max_age_seconds: int | None) -> RefreshResult:
        await self._enter("check_timeout", user_id, max_age_seconds)
        return make_result(user_id, Outcome.FRESH)

    def build_if_empty(self, concurrency: int | None) -> AsyncGenerator[BulkProgress, None]:
        self.calls.append(("build_if_empty", (concurrency,)))
        return self._stream("build_if_empty")

    def refresh_stale(
        self,
        max_age_seconds: int | None,
        concurrency: int | None,
        shard_index: int,
        shard_count: int,
        user_ids: Sequence[int],
        dry_run: bool = False,
    ) -> AsyncGenerator[BulkProgress, None]:
        name = "refresh_stale_dry_run" if dry_run else "refresh_stale"
        self.calls.append((name, (max_age_seconds, concurrency, shard_index, shard_count, list(user_ids))))
        return self._stream("refresh_stale")

    async def _stream(self, name: str) -> AsyncGenerator[BulkProgress, None]:
        try:
            if name in self.failures:
                raise self.failures[name]  # like validation failing on the first step
            for event in self.events:
                yield event
            if self.hold_stream_open:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        finally:
            self.stream_closed.set()

    async def purge_orphans(self, dry_run: bool) -> PurgeResult:
        await self._enter("purge_orphans", dry_run)
        return PurgeResult(user_ids=(7, 9), dry_run=dry_run)

    async def watch_changes(
        self, start_cursor: str, user_ids: Sequence[int]
    ) -> AsyncGenerator[ChangeBatch, None]:
        """One batch, then the end (a real feed stays open)."""
        await self._enter("watch_changes", start_cursor, list(user_ids))
        yield ChangeBatch((), start_cursor or "v1.0")

    async def get_sync_status(self, user_id: int) -> SyncStatus:
        await self._enter("get_sync_status", user_id)
        if user_id not in self.sync_statuses:
            raise SyncStatusNotFound(user_id)
        return self.sync_statuses[user_id]

    async def list_sync_statuses(
        self, state: SyncState | None, page_size: int, page_token: str
    ) -> SyncStatusPage:
        await self._enter("list_sync_statuses", state, page_size, page_token)
        chosen = [s for _, s in sorted(self.sync_statuses.items()) if state is None or s.state is state]
        return SyncStatusPage(tuple(chosen), "")

    async def sync_overview(self, *, count_tokens: bool = True) -> SyncOverview:
        await self._enter("sync_overview")
        counts = {state: 0 for state in SyncState}
        for status in self.sync_statuses.values():
            counts[status.state] += 1
        return SyncOverview(counts, tokens_expiring=0)
