"""In-memory implementations of the application ports, for use-case unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from application.errors import (
    AccessTokenRejected,
    RefreshTokenInvalid,
    StoreUnavailable,
    UpstreamUnavailable,
    WriteConflict,
)
from application.notices import RiderFreeTickets
from application.outbox import OutboxBacklog, OutboxRecord, RotatedToken, Target
from application.ports import BulkSummary, CacheFreshness, Shard, TokenGrant, UserToken
from domain.changes import PassChange
from domain.model import FetchedPasses, Payload, TicketCache, TicketLogEntry
from domain.sync_state import SyncState, SyncStatus


class FakeClock:
    def __init__(self, now: int = 1_700_000_000) -> None:
        self.current = now

    def now(self) -> int:
        return self.current

    def advance(self, seconds: int) -> None:
        self.current += seconds


class FakeTokenStore:
    def __init__(self) -> None:
        self.tokens: dict[int, UserToken] = {}
        self.saves: list[tuple[int, str, str | None, datetime | None]] = []
        self.delivered: set[str] = set()
        self.unavailable = False

    def put(
        self,
        user_id: int,
        access: str,
        refresh: str | None = "refresh",
        expires_at: datetime | None = None,
        updated_at: datetime | None = None,
    ) -> None:
        self.tokens[user_id] = UserToken(user_id, access, refresh, expires_at, updated_at)

    async def get_token(self, user_id: int) -> UserToken | None:
        return self.tokens.get(user_id)

    async def save_tokens(
        self, user_id: int, access_token: str, refresh_token: str | None, expires_at: datetime | None
    ) -> None:
        self.saves.append((user_id, access_token, refresh_token, expires_at))
        self.tokens[user_id] = UserToken(user_id, access_token, refresh_token, expires_at)

    async def deliver_tokens(self, record_id: str, user_id: int, token: RotatedToken) -> None:
        if self.unavailable:
            raise StoreUnavailable("FakeTokenStore", "down")
        if record_id not in self.delivered:
            self.delivered.add(record_id)
            await self.save_tokens(user_id, token.access_token, token.refresh_token, token.expires_at)

    async def iter_user_ids_with_token(
        self, shard: Shard | None = None, batch_size: int = 1000
    ) -> AsyncGenerator[int, None]:
        for user_id in sorted(self.tokens):
            if shard is None or shard.owns(user_id):
                yield user_id

    async def count_users_with_token(self, shard: Shard | None = None) -> int:
        return sum(1 for u in self.tokens if shard is None or shard.owns(u))

    async def users_with_token(self, user_ids: Sequence[int]) -> set[int]:
        return {u for u in user_ids if u in self.tokens}

    async def count_tokens_expiring_before(self, moment: datetime) -> int:
        return sum(1 for t in self.tokens.values() if t.expires_at is not None and t.expires_at < moment)


class FakeSyncStateStore:
    def __init__(self) -> None:
        self.statuses: dict[int, SyncStatus] = {}
        self.writes = 0  # round trips
        self.down = False

    async def get(self, user_id: int) -> SyncStatus | None:
        if self.down:
            raise StoreUnavailable("SQLite", "disk I/O error")
        return self.statuses.get(user_id)

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, SyncStatus]:
        if self.down:
            raise StoreUnavailable("SQLite", "disk I/O error")
        return {u: self.statuses[u] for u in user_ids if u in self.statuses}

    async def put_many(self, statuses: Sequence[SyncStatus]) -> None:
        if self.down:
            raise StoreUnavailable("SQLite", "disk I/O error")
        self.writes += 1
        self.statuses.update((s.user_id, s) for s in statuses)

    async def list_after(
        self, after_user_id: int, limit: int, state: SyncState | None = None
    ) -> list[SyncStatus]:
        chosen = [s for u, s in sorted(self.statuses.items()) if u > after_user_id]
        return [s for s in chosen if state is None or s.state is state][:limit]

    async def count_by_state(self) -> dict[SyncState, int]:
        return {state: sum(1 for s in self.statuses.values() if s.state is state) for state in SyncState}

    async def delete_many(self, user_ids: Sequence[int]) -> int:
        return sum(self.statuses.pop(user_id, None) is not None for user_id in set(user_ids))


class FakeCacheStore:
    def __init__(self) -> None:
        self.caches: dict[int, TicketCache] = {}
        self.saves = 0
        self.conflicts_to_inject = 0
        self.unavailable = False
        self.outbox = FakeOutbox()
        self.changes: list[PassChange] = []

    async def get(self, user_id: int) -> TicketCache | None:
        if self.unavailable:
            raise StoreUnavailable("FakeCacheStore", "down")
        return self.caches.get(user_id)

    async def save(
        self,
        cache: TicketCache,
        expected_version: int | None,
        records: Sequence[OutboxRecord] = (),
        changes: Sequence[PassChange] = (),
    ) -> TicketCache:
        current = self.caches.get(cache.user_id)
        if self.conflicts_to_inject:
            self.conflicts_to_inject -= 1
            raise WriteConflict(cache.user_id, expected_version)
        if (current is None) != (expected_version is None) or (
            current is not None and current.version != expected_version
        ):
            raise WriteConflict(cache.user_id, expected_version)
        stored = replace(cache, version=(expected_version or 0) + 1)
        self.caches[cache.user_id] = stored
        self.outbox.records.extend(records)
        self.changes.extend(changes)
        self.saves += 1
        return stored

    async def is_empty(self) -> bool:
        return not self.caches

    async def freshness(self, moment: int) -> CacheFreshness:
        stamps = [cache.timestamp for cache in self.caches.values()]
        return CacheFreshness(min(stamps, default=None), sum(1 for t in stamps if t < moment))

    async def iter_user_ids(self, batch_size: int = 1000) -> AsyncIterator[int]:
        for user_id in sorted(self.caches):
            yield user_id

    async def delete(self, user_id: int, changes: Sequence[PassChange] = ()) -> bool:
        removed = self.caches.pop(user_id, None) is not None
        if removed:
            self.changes.extend(changes)
        return removed


class FakeOutbox:
    def __init__(self) -> None:
        self.records: list[OutboxRecord] = []

    async def add(self, records: Sequence[OutboxRecord]) -> None:
        self.records.extend(records)

    async def pending(self, limit: int) -> list[OutboxRecord]:
        return self.records[:limit]

    async def mark_delivered(self, records: Sequence[OutboxRecord]) -> None:
        done = {record.record_id for record in records}
        self.records = [record for record in self.records if record.record_id not in done]

    async def pending_for_user(self, user_id: int) -> list[OutboxRecord]:
        return [r for r in self.records if r.user_id == user_id and r.target is not Target.TOKEN]

    async def newest_token(self, user_id: int) -> RotatedToken | None:
        tokens = [r.token for r in self.records if r.user_id == user_id and r.target is Target.TOKEN]
        return tokens[-1] if tokens else None

    async def backlog(self) -> OutboxBacklog:
        pending = {target: sum(r.target is target for r in self.records) for target in Target}
        return OutboxBacklog(pending, min((r.created_at for r in self.records), default=None))


class FakeTicketLog:
    def __init__(self) -> None:
        self.entries: list[TicketLogEntry] = []
        self.delivered: set[str] = set()
        self.unavailable = False

    async def append(self, entries: Sequence[TicketLogEntry]) -> None:
        self.entries.extend(entries)

    async def deliver(self, record_id: str, entry: TicketLogEntry) -> None:
        if self.unavailable:
            raise StoreUnavailable("FakeTicketLog", "down")
        if record_id not in self.delivered:
            self.delivered.add(record_id)
            self.entries.append(entry)


class FakeRefreshLog:
    def __init__(self) -> None:
        self.free_ticket_rewards: list[int] = []
        self.delivered: set[str] = set()
        self.unavailable = False

    async def record_free_ticket_reward(self, user_id: int) -> None:
        self.free_ticket_rewards.append(user_id)

    async def deliver_free_ticket_reward(self, record_id: str, user_id: int) -> None:
        if self.unavailable:
            raise StoreUnavailable("FakeRefreshLog", "down")
        if record_id not in self.delivered:
            self.delivered.add(record_id)
            self.free_ticket_rewards.append(user_id)


@dataclass
class FakeBytemark:
    """Plays both the customer API (passes by access token) and the account API."""

    passes_by_token: dict[str, FetchedPasses] = field(default_factory=dict)
    rejected_tokens: set[str] = field(default_factory=set)
    refresh_grants: dict[str, TokenGrant] = field(default_factory=dict)
    failing_users: dict[str, str] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)
    refreshes: list[str] = field(default_factory=list)
    delay: float = 0.0
    # When set, every fetch waits for it after reading the lists (what Bytemark had at request time).
    gate: asyncio.Event | None = None

    def give(self, token: str, v1: list[Payload], v4: list[Payload] | None = None) -> None:
        self.passes_by_token[token] = FetchedPasses(v1=list(v1), v4_expired=list(v4 or []))

    async def fetch_passes(self, access_token: str) -> FetchedPasses:
        self.fetches.append(access_token)
        passes = self.passes_by_token.get(access_token, FetchedPasses())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        if access_token in self.failing_users:
            raise UpstreamUnavailable("GET /passes", self.failing_users[access_token])
        if access_token in self.rejected_tokens:
            raise AccessTokenRejected("GET /passes")
        return passes

    async def refresh(self, refresh_token: str) -> TokenGrant:
        self.refreshes.append(refresh_token)
        grant = self.refresh_grants.get(refresh_token)
        if grant is None:
            raise RefreshTokenInvalid()
        return grant


class FakeNotifier:
    def __init__(self) -> None:
        self.free_notices: list[tuple[int, list[str]]] = []
        self.summaries: list[BulkSummary] = []

    async def free_tickets_found(self, found: RiderFreeTickets) -> None:
        self.free_notices.append((found.user_id, [t.pass_uuid for t in found.tickets]))

    async def bulk_run_finished(self, summary: BulkSummary) -> None:
        self.summaries.append(summary)
