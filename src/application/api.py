"""The driving port: what transports (gRPC, CLI) may ask of the service. The use cases
implement it; so do decorators around them (metrics) and fakes in transport tests."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from application.change_feed import ChangeBatch
from application.results import BulkProgress, PurgeResult, RefreshResult
from application.sync_queries import SyncOverview, SyncStatusPage
from domain.model import TicketCache
from domain.sync_state import SyncState, SyncStatus


class TicketCacheApi(Protocol):
    async def get_cache(self, user_id: int) -> TicketCache: ...

    async def build(self, user_id: int) -> RefreshResult: ...

    async def check(self, user_id: int, dry_run: bool = False) -> RefreshResult: ...

    async def update(self, user_id: int) -> RefreshResult: ...

    async def check_timeout(self, user_id: int, max_age_seconds: int | None) -> RefreshResult: ...

    # Streams are async generators: a caller that stops early must `aclose()` them, which stops
    # the bulk run's new work at once (`contextlib.aclosing`).
    def build_if_empty(self, concurrency: int | None) -> AsyncGenerator[BulkProgress, None]: ...

    def refresh_stale(
        self,
        max_age_seconds: int | None,
        concurrency: int | None,
        shard_index: int,
        shard_count: int,
        user_ids: Sequence[int],
        dry_run: bool = False,
    ) -> AsyncGenerator[BulkProgress, None]: ...

    async def purge_orphans(self, dry_run: bool) -> PurgeResult: ...

    async def get_sync_status(self, user_id: int) -> SyncStatus: ...

    async def list_sync_statuses(
        self, state: SyncState | None, page_size: int, page_token: str
    ) -> SyncStatusPage: ...

    async def sync_overview(self, *, count_tokens: bool = True) -> SyncOverview: ...

    def watch_changes(
        self, start_cursor: str, user_ids: Sequence[int]
    ) -> AsyncGenerator[ChangeBatch, None]: ...
