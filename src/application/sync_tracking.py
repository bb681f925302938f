"""Recording each rider's sync state around refreshes, and deciding what a bulk run skips.

A unary call (Check, Build, Update, TimeoutCheck) always calls Bytemark and writes the rider's
new status at once. A bulk run reads statuses in batches ahead of its workers, skips riders the
policy says to leave alone, and writes statuses in batches (one store round trip per batch),
holding each UNAVAILABLE failure back until the outage window has judged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field

from application.errors import StoreUnavailable, UpstreamUnavailable
from application.ports import Clock, SyncStateStore, TokenStore
from application.results import RefreshResult, Skipped
from application.store_blip import DEFAULT_STORE_OUTAGE_GRACE_SECONDS, StoreBlip
from domain.model import Outcome
from domain.outage import OutageRule, OutageWatch
from domain.sync_state import (
    Backoff,
    SkipReason,
    SyncError,
    SyncStatus,
    TokenRow,
    auth_required,
    failed,
    needs_token_row,
    skip_reason,
    succeeded,
    token_fingerprint,
)

log = logging.getLogger(__name__)

#: Status codes recorded in `last_error`, as a unary call would answer them.
UNAVAILABLE = "UNAVAILABLE"
AUTH_REQUIRED_CODE = "FAILED_PRECONDITION"

Attempt = Callable[[int], Awaitable[RefreshResult]]


@dataclass(frozen=True, slots=True)
class SyncPolicy:
    backoff: Backoff = field(default_factory=Backoff)
    outage: OutageRule = field(default_factory=OutageRule)
    jitter: Callable[[], float] = random.random
    read_batch: int = 200  # statuses read per query ahead of a bulk run's workers
    write_batch: int = 200  # statuses written per round trip by a bulk run
    store_outage_grace_seconds: float = DEFAULT_STORE_OUTAGE_GRACE_SECONDS  # see application.store_blip


class SyncTracker:
    def __init__(self, store: SyncStateStore, tokens: TokenStore, clock: Clock, policy: SyncPolicy) -> None:
        self.store = store
        self._tokens = tokens
        self._clock = clock
        self.policy = policy

    async def tracked(self, user_id: int, attempt: Attempt) -> RefreshResult:
        """A unary refresh: always attempted, its status written at once. The previous status is
        read only when the new one depends on it (a failure), not for a success."""
        try:
            result = await attempt(user_id)
        except UpstreamUnavailable as error:
            previous = await self._previous(user_id)
            failure = self.after_failure(previous, user_id, error)
            await self.write([failure])
            _wait_at_least(error, failure, self._clock.now())
            raise
        if result.outcome is Outcome.NO_VALID_TOKEN:
            status = await self.after_result(await self._previous(user_id), result)
        else:
            status = await self.after_result(None, result)  # a success starts afresh
        if status is not None:
            await self.write([status])
        return result

    def start_run(self) -> BulkSyncRun:
        return BulkSyncRun(self)

    async def skip_reason(self, status: SyncStatus | None) -> SkipReason | None:
        token = await self._token_row(status.user_id) if status and needs_token_row(status) else None
        return skip_reason(status, self._clock.now(), token)

    def after_failure(
        self, previous: SyncStatus | None, user_id: int, error: UpstreamUnavailable
    ) -> SyncStatus:
        return failed(
            previous,
            user_id,
            self._clock.now(),
            SyncError(UNAVAILABLE, str(error)),
            self.policy.backoff,
            self.policy.jitter(),
        )

    async def after_result(self, previous: SyncStatus | None, result: RefreshResult) -> SyncStatus | None:
        """The rider's status after a refresh that returned; None when Bytemark was not called,
        or for a stranger (no token row): any caller may name any id, and storing a status for
        each would grow the AUTH_REQUIRED count without bound."""
        if result.outcome is Outcome.FRESH:
            return None
        if result.outcome is Outcome.NO_VALID_TOKEN:
            token = await self._token_row(result.user_id)
            if token is None:
                return None
            error = SyncError(AUTH_REQUIRED_CODE, f"no valid Bytemark token: {result.no_token_reason}")
            return auth_required(previous, result.user_id, self._clock.now(), error, token)
        return succeeded(result.user_id, self._clock.now(), result.refreshed_at)

    async def _token_row(self, user_id: int) -> TokenRow | None:
        token = await self._tokens.get_token(user_id)
        if token is None:
            return None
        updated_at = int(token.updated_at.timestamp()) if token.updated_at is not None else None
        return TokenRow(token_fingerprint(token.access_token, token.refresh_token), updated_at)

    async def _previous(self, user_id: int) -> SyncStatus | None:
        try:
            return await self.store.get(user_id)
        except StoreUnavailable as exc:  # the refresh's own answer matters more than the count
            log.warning("sync status not read", extra={"user_id": user_id, "reason": exc.reason})
            return None

    async def write(self, statuses: list[SyncStatus]) -> None:
        """Statuses are advisory: a store blip here never fails the refresh that produced them."""
        if not statuses:
            return
        try:
            await self.store.put_many(statuses)
        except StoreUnavailable as exc:
            log.warning("sync status not stored", extra={"riders": len(statuses), "reason": exc.reason})


def _wait_at_least(error: UpstreamUnavailable, status: SyncStatus, now: int) -> None:
    """The caller's retry delay is at least the rider's backoff (bulk runs wait as long)."""
    if status.next_attempt_at is not None:
        error.retry_after = max(error.retry_after or 0.0, float(status.next_attempt_at - now))


class BulkSyncRun:
    """The sync bookkeeping of one bulk run: statuses read ahead, skips, batched writes, and
    the outage watch (see domain.outage for the rule), and riding out a blip of our own store
    (application.store_blip)."""

    def __init__(self, tracker: SyncTracker) -> None:
        self._tracker = tracker
        self._policy = tracker.policy
        self._known: dict[int, SyncStatus | None] = {}
        self._pending: list[SyncStatus] = []
        self._held: dict[int, SyncStatus] = {}
        self.watch = OutageWatch(self._policy.outage)
        self.store = StoreBlip(self._policy.store_outage_grace_seconds)

    def halted(self) -> str:
        outage = self.watch.outage
        if outage is None:
            return self.store.stopped
        return (
            f"stopped early: {outage.failures} of the last {outage.window} riders failed UNAVAILABLE"
            f" at Bytemark {outage.failure_key}, a general outage; those riders keep their"
            " previous sync state (no backoff)"
        )

    async def read_ahead(self, user_ids: AsyncGenerator[int, None]) -> AsyncGenerator[int, None]:
        """`user_ids` as they come, with each batch's statuses read in one query first."""
        batch: list[int] = []
        try:
            async for user_id in user_ids:
                batch.append(user_id)
                if len(batch) >= self._policy.read_batch:
                    await self._read(batch)
                    for ready in batch:
                        yield ready
                    batch = []
            await self._read(batch)
            for ready in batch:
                yield ready
        finally:
            await user_ids.aclose()

    async def refresh_one(self, user_id: int, attempt: Attempt) -> RefreshResult | Skipped:
        """One rider, retried through a store blip (its status read ahead is kept for the retry)."""
        try:
            return await self.store.ride_out(lambda: self._refresh_once(user_id, attempt))
        finally:
            self._known.pop(user_id, None)

    async def _refresh_once(self, user_id: int, attempt: Attempt) -> RefreshResult | Skipped:
        previous = self._known.get(user_id)
        reason = await self._tracker.skip_reason(previous)
        if reason is not None and previous is not None:
            return Skipped(reason, previous)
        try:
            result = await attempt(user_id)
        except UpstreamUnavailable as error:
            await self._failed(self._tracker.after_failure(previous, user_id, error), error.endpoint)
            raise
        status = await self._tracker.after_result(previous, result)
        if status is not None:
            await self._keep(self.watch.observe(user_id, None), status)
        return result

    async def close(self) -> None:
        """Write what is still pending: held failures not excused by an outage, then the rest."""
        self._pending.extend(self._held.values())
        self._held.clear()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._flush())

    async def _read(self, batch: list[int]) -> None:
        if batch:
            found = await self._tracker.store.get_many(batch)
            self._known.update((user_id, found.get(user_id)) for user_id in batch)

    async def _failed(self, status: SyncStatus, failure_key: str) -> None:
        if self.watch.excuses(failure_key):
            return  # part of a general outage: the rider keeps its previous status
        self._held[status.user_id] = status
        kept = self.watch.observe(status.user_id, failure_key)
        if self.watch.outage is not None:
            for user_id, key in self.watch.held():
                if key == self.watch.outage.failure_key:
                    self._held.pop(user_id, None)
        await self._keep(kept, None)

    async def _keep(self, kept_failures: list[int], status: SyncStatus | None) -> None:
        self._pending.extend(self._held.pop(user_id) for user_id in kept_failures if user_id in self._held)
        if status is not None:
            self._pending.append(status)
        if len(self._pending) >= self._policy.write_batch:
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        await self._tracker.write(batch)
