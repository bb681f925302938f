"""Ports: what the use cases need from the outside world. Adapters implement these Protocols;
in-memory fakes for unit tests implement the same ones."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from application.notices import BulkJob as BulkJob
from application.notices import BulkSummary as BulkSummary
from application.notices import RiderFreeTickets
from application.outbox import OutboxBacklog, OutboxRecord, RotatedToken
from domain.changes import PassChange
from domain.model import FetchedPasses, TicketCache, TicketLogEntry
from domain.sync_state import SyncState, SyncStatus


@dataclass(frozen=True, slots=True)
class Shard:
    """Users whose `user_id % count == index` belong to this shard."""

    index: int
    count: int

    def owns(self, user_id: int) -> bool:
        return user_id % self.count == self.index


@dataclass(frozen=True, slots=True)
class UserToken:
    """A user's Bytemark OAuth tokens as stored (decrypted). `access_token` is never empty here."""

    user_id: int
    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    updated_at: datetime | None = None  # the row's `updated_at`: a new login moves it

    def __repr__(self) -> str:  # never print secrets, even in a traceback or debug log
        return f"UserToken(user_id={self.user_id}, access_token=***, refresh_token=***)"


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the OAuth refresh-token exchange returned."""

    access_token: str
    refresh_token: str | None
    expires_in: int | None

    def __repr__(self) -> str:
        return f"TokenGrant(access_token=***, refresh_token=***, expires_in={self.expires_in})"


class TokenStore(Protocol):
    """Table `bytemark_tokens`."""

    async def get_token(self, user_id: int) -> UserToken | None:
        """The user's tokens, or None when the user has no row or an empty/NULL token."""

    async def save_tokens(
        self, user_id: int, access_token: str, refresh_token: str | None, expires_at: datetime | None
    ) -> None:
        """Store new tokens for the user (encrypted at rest when a key is configured)."""

    def iter_user_ids_with_token(
        self, shard: Shard | None = None, batch_size: int = 1000
    ) -> AsyncGenerator[int, None]:
        """Distinct user ids having a non-empty token, ascending, fetched in batches (memory flat).
        Close it when stopping early, to release the store's cursor."""

    async def count_users_with_token(self, shard: Shard | None = None) -> int: ...

    async def deliver_tokens(self, record_id: str, user_id: int, token: RotatedToken) -> None:
        """`save_tokens` once per `record_id`: a record delivered before is ignored."""

    async def users_with_token(self, user_ids: Sequence[int]) -> set[int]:
        """The subset of `user_ids` that has a non-empty token."""

    async def count_tokens_expiring_before(self, moment: datetime) -> int:
        """Users with a non-empty token whose `token_expires_at` is before `moment` (expired
        included); a token without an expiry is not counted."""


@dataclass(frozen=True, slots=True)
class CacheFreshness:
    """How old the stored caches are: the oldest one's `timestamp` (None when there is no cache),
    and how many were written before a given moment."""

    oldest_timestamp: int | None
    written_before: int


class CacheStore(Protocol):
    """Collection/table of cache documents, one per user (unique on user_id)."""

    async def get(self, user_id: int) -> TicketCache | None: ...

    async def save(
        self,
        cache: TicketCache,
        expected_version: int | None,
        records: Sequence[OutboxRecord] = (),
        changes: Sequence[PassChange] = (),
    ) -> TicketCache:
        """Compare-and-set write. `expected_version` None: the user must have no cache yet;
        otherwise the stored version must equal it. Writes `cache` with version
        `(expected_version or 0) + 1` and returns what was stored; the outbox `records` and the
        feed's `changes` are stored in the same atomic step, or nothing is.
        Raises WriteConflict when the condition does not hold."""

    async def is_empty(self) -> bool: ...

    def iter_user_ids(self, batch_size: int = 1000) -> AsyncIterator[int]:
        """User ids of all caches, ascending, in batches."""

    async def freshness(self, moment: int) -> CacheFreshness:
        """The oldest cache's timestamp and the count of caches whose timestamp is before `moment`
        (epoch seconds), both read from an index on the timestamp, never by scanning the caches."""

    async def delete(self, user_id: int, changes: Sequence[PassChange] = ()) -> bool:
        """Remove the user's cache and record, in the same atomic step, the feed's REMOVED changes of
        the cache it removes (a refresh may have replaced the one `changes` was computed from; their
        `changed_at` is kept). True when one was removed."""


class SyncStateStore(Protocol):
    """One sync status per rider (table `bytemark_sync_status` / its own Mongo collection)."""

    async def get(self, user_id: int) -> SyncStatus | None: ...

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, SyncStatus]:
        """The statuses of those of `user_ids` that have one."""

    async def put_many(self, statuses: Sequence[SyncStatus]) -> None:
        """Insert or replace each rider's status in one round trip; for a rider listed twice the
        last one wins."""

    async def list_after(
        self, after_user_id: int, limit: int, state: SyncState | None = None
    ) -> list[SyncStatus]:
        """Up to `limit` statuses with user_id > `after_user_id`, ascending, optionally of one state."""

    async def count_by_state(self) -> dict[SyncState, int]: ...

    async def delete_many(self, user_ids: Sequence[int]) -> int:
        """Remove those riders' statuses; returns how many there were."""


class TicketLog(Protocol):
    async def append(self, entries: Sequence[TicketLogEntry]) -> None: ...

    async def deliver(self, record_id: str, entry: TicketLogEntry) -> None:
        """Append `entry` once per `record_id`: a record delivered before is ignored."""


class RefreshLog(Protocol):
    """Table `bytemark_ticket_refresh_log`, read by the loyalty notifier."""

    async def record_free_ticket_reward(self, user_id: int) -> None:
        """One row: activity_type 2 (free-ticket reward), status 0 (pending)."""

    async def deliver_free_ticket_reward(self, record_id: str, user_id: int) -> None:
        """`record_free_ticket_reward` once per `record_id`: a record delivered before is ignored."""


class Outbox(Protocol):
    """Records waiting for delivery, stored with the caches (see CacheStore.save)."""

    async def add(self, records: Sequence[OutboxRecord]) -> None:
        """Store records that belong to no cache write (a rotated token), durably."""

    async def pending(self, limit: int) -> list[OutboxRecord]:
        """Undelivered records, oldest first (per user in the order they were written)."""

    async def mark_delivered(self, records: Sequence[OutboxRecord]) -> None: ...

    async def pending_for_user(self, user_id: int) -> list[OutboxRecord]:
        """The user's undelivered records of cache writes, in the order they were written."""

    async def newest_token(self, user_id: int) -> RotatedToken | None:
        """The user's most recent rotated token not yet delivered to the token store."""

    async def backlog(self) -> OutboxBacklog: ...


class PassesSource(Protocol):
    """Bytemark's customer API."""

    async def fetch_passes(self, access_token: str) -> FetchedPasses:
        """Both lists (v1 all pages, v4 EXPIRED all pages), fetched concurrently.
        Raises AccessTokenRejected on 401, UpstreamUnavailable on anything else that fails."""


class TokenRefresher(Protocol):
    """Bytemark's account API (OAuth 2.0 refresh-token grant)."""

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """Raises RefreshTokenInvalid on invalid_grant, UpstreamUnavailable otherwise."""


class Notifier(Protocol):
    """Slack (or nothing), called by the outbox relay. A notice Slack did not take raises
    StoreUnavailable: the relay keeps the record and tries again later."""

    async def free_tickets_found(self, found: RiderFreeTickets) -> None: ...

    async def bulk_run_finished(self, summary: BulkSummary) -> None: ...


class NoticeClaims(Protocol):
    """Record ids of notices posted (`bytemark_outbox_delivered`): Slack cannot ignore a repeat,
    so a notice is claimed before it is posted, and the claim released if the post fails."""

    async def claim_once(self, record_id: str) -> bool:
        """True for the first claim of `record_id`, False ever after (until released)."""

    async def release(self, record_id: str) -> None: ...


class Clock(Protocol):
    def now(self) -> int:
        """Epoch seconds."""


# --- Bulk-run tracing (docs/tracing.md): a span per run, one per rider, opened by an adapter.


class BulkRunTrace(Protocol):
    """The trace of one bulk run."""

    def rider(self, user_id: int) -> AbstractContextManager[object]:
        """Around one rider's refresh (entered in the worker task that refreshes it)."""

    def end(self) -> None:
        """The run is over (finished, failed or cancelled)."""


class BulkTracer(Protocol):
    def start_run(self, job: BulkJob, total: int) -> BulkRunTrace: ...
