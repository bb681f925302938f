"""Per-user refresh use cases: build, update, check, timeout check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TypeVar

from application.dry_run import DryRunReport, hash_differences, preview
from application.errors import (
    AccessTokenRejected,
    CacheNotFound,
    RefreshTokenInvalid,
    StoreUnavailable,
    UpstreamUnavailable,
    WriteConflict,
)
from application.notices import FreeTicket, Notice, RiderFreeTickets, free_tickets_of
from application.outbox import (
    OutboxRecord,
    RotatedToken,
    free_ticket_reward_record,
    notice_record,
    ticket_log_record,
    token_record,
)
from application.ports import (
    CacheStore,
    Clock,
    Notifier,
    Outbox,
    PassesSource,
    RefreshLog,
    TicketLog,
    TokenRefresher,
    TokenStore,
    UserToken,
)
from application.relay import OutboxRelay
from application.results import RefreshResult
from application.single_flight import SingleFlight
from domain.cache_diff import CacheUpdate, build_cache, update_cache
from domain.changes import PassChange, cache_changes
from domain.free_tickets import FreeTicketPolicy
from domain.model import FetchedPasses, Outcome, RefreshCounts, TicketCache
from domain.timeout import is_stale

log = logging.getLogger(__name__)

# One retry after a lost compare-and-set: re-read, re-diff the same fetched lists, write again.
_CAS_ATTEMPTS = 2
# Waits before re-trying a token write when even the outbox could not take it.
_RECORD_RETRY_DELAYS = (0.1, 0.5)
T = TypeVar("T")


class _NoValidToken(Exception):
    """Internal signal: the user has no usable Bytemark token (outcome NO_VALID_TOKEN); the
    message says why."""


@dataclass(frozen=True, slots=True)
class RefreshDependencies:
    tokens: TokenStore
    caches: CacheStore
    ticket_log: TicketLog
    refresh_log: RefreshLog
    passes_source: PassesSource
    token_refresher: TokenRefresher
    notifier: Notifier
    clock: Clock
    outbox: Outbox


@dataclass(frozen=True, slots=True)
class _Write:
    """What one compare-and-set stores besides the cache: outbox records and feed changes."""

    records: tuple[OutboxRecord, ...] = ()
    changes: tuple[PassChange, ...] = ()


class _Run(Enum):
    """What one shared execution does for a user."""

    BUILD = "build"
    UPDATE = "update"


_EITHER = frozenset(_Run)


class UserRefresher:
    """Refreshes one user's cache. In this process one refresh of a user runs at a time: a call
    shares it when its answer is one the caller asked for, else waits for it and runs its own
    (docs/concurrency.md). Across processes the compare-and-set on `version`
    keeps the cache consistent."""

    def __init__(
        self,
        deps: RefreshDependencies,
        free_tickets: FreeTicketPolicy,
        cache_timeout_seconds: int,
        passes4_retention_days: int | None = None,
        token_refresh_margin_seconds: int = 60,
        relay: OutboxRelay | None = None,
    ) -> None:
        self._deps = deps
        self._relay = relay or OutboxRelay(deps.outbox, deps.ticket_log, deps.refresh_log, deps.tokens)
        self._free_tickets = free_tickets
        self.cache_timeout_seconds = cache_timeout_seconds
        self._passes4_retention_days = passes4_retention_days
        self._refresh_margin = timedelta(seconds=token_refresh_margin_seconds)
        self._flights: SingleFlight[RefreshResult] = SingleFlight()

    # -- use cases ---------------------------------------------------------------------------

    async def build(self, user_id: int) -> RefreshResult:
        """Shares only another build: the caller must get BUILT and a fresh snapshot."""
        return await self._flights.run(user_id, _Run.BUILD, lambda: self._build(user_id))

    async def update(self, user_id: int) -> RefreshResult:
        """Shares only another update (a check or timeout check may be running one)."""
        if self._flights.running(user_id) is None and await self._deps.caches.get(user_id) is None:
            raise CacheNotFound(user_id)
        return await self._flights.run(user_id, _Run.UPDATE, lambda: self._update(user_id))

    async def check(self, user_id: int) -> RefreshResult:
        return await self._check(user_id)

    async def check_timeout(
        self, user_id: int, max_age_seconds: int | None, *, digest: bool = False
    ) -> RefreshResult:
        """`digest`: the caller (a bulk run) announces free tickets found in its own digest, so
        the update stores no notice of its own."""
        max_age = max_age_seconds or self.cache_timeout_seconds
        cache = await self._deps.caches.get(user_id)
        if cache is not None and not is_stale(cache.timestamp, self._deps.clock.now(), max_age):
            return RefreshResult(
                user_id=user_id,
                outcome=Outcome.FRESH,
                counts=RefreshCounts(passes=len(cache.passes), passes4=len(cache.passes4)),
                refreshed_at=cache.timestamp,
                cache=cache,
            )
        # The stale cache (or its absence) was just read: `_check` decides build or update from it.
        return await self._check(user_id, cache is not None, digest=digest)

    async def dry_run(self, user_id: int, max_age_seconds: int | None = None) -> RefreshResult:
        """What a check (with `max_age_seconds`: a timeout check) would do, written nowhere: no
        cache, log rows, sync state or notice. A token Bytemark rotates meanwhile is kept (the
        old one is retired; losing the new one logs the rider out), and the report says so."""
        current = await self._deps.caches.get(user_id)
        if max_age_seconds is not None and current is not None:
            max_age = max_age_seconds or self.cache_timeout_seconds
            if not is_stale(current.timestamp, self._deps.clock.now(), max_age):
                report = DryRunReport(Outcome.FRESH, hash_differences=hash_differences(current))
                return self._dry_result(user_id, current, report)
        rotated: list[bool] = []
        try:
            fetched = await self._fetch(user_id, on_rotated=lambda: rotated.append(True))
        except _NoValidToken as no_token:
            report = DryRunReport(Outcome.NO_VALID_TOKEN, hash_differences=hash_differences(current))
            return replace(self._dry_result(user_id, current, report), no_token_reason=str(no_token))
        now = self._deps.clock.now()
        report = preview(user_id, current, fetched, now, self._free_tickets, self._passes4_retention_days)
        return self._dry_result(user_id, current, replace(report, token_rotated=bool(rotated)))

    def _dry_result(self, user_id: int, current: TicketCache | None, report: DryRunReport) -> RefreshResult:
        """The stored cache as it stands (nothing was written) with the report."""
        if current is None:
            return RefreshResult(user_id, report.would, RefreshCounts(), 0, None, dry_run=report)
        counts = RefreshCounts(passes=len(current.passes), passes4=len(current.passes4))
        return RefreshResult(user_id, report.would, counts, current.timestamp, current, dry_run=report)

    # -- one execution -----------------------------------------------------------------------

    async def _check(
        self, user_id: int, cached: bool | None = None, *, digest: bool = False
    ) -> RefreshResult:
        """Share whatever refresh of the user is running (a build or an update both answer a
        check); else update when a cache exists, build when not. `cached` is what the caller
        just read, if it did; the write stays compare-and-set on a fresh read either way."""
        if cached is None and self._flights.running(user_id) is None:
            cached = await self._deps.caches.get(user_id) is not None
        if cached:
            return await self._flights.run(
                user_id, _Run.UPDATE, lambda: self._update(user_id, digest=digest), joins=_EITHER
            )
        return await self._flights.run(user_id, _Run.BUILD, lambda: self._build(user_id), joins=_EITHER)

    async def _build(self, user_id: int) -> RefreshResult:
        try:
            fetched = await self._fetch(user_id)
        except _NoValidToken as no_token:
            return self._no_valid_token(user_id, str(no_token))

        def snapshot(current: TicketCache | None) -> tuple[TicketCache, _Write, None]:
            now = self._deps.clock.now()
            built = build_cache(user_id, fetched, now)
            return built, _Write(changes=cache_changes(user_id, current, built, now)), None

        stored, _ = await self._compare_and_set(user_id, snapshot, assume_absent=True)
        counts = RefreshCounts(passes=len(stored.passes), passes4=len(stored.passes4))
        return RefreshResult(user_id, Outcome.BUILT, counts, stored.timestamp, stored)

    async def _update(self, user_id: int, *, digest: bool = False) -> RefreshResult:
        try:
            fetched = await self._fetch(user_id)
        except _NoValidToken as no_token:
            return self._no_valid_token(user_id, str(no_token))

        def diff(current: TicketCache | None) -> tuple[TicketCache, _Write, CacheUpdate]:
            if current is None:
                raise CacheNotFound(user_id)  # purged while we fetched
            now = self._deps.clock.now()
            update = update_cache(current, fetched, now, self._free_tickets, self._passes4_retention_days)
            records = [ticket_log_record(entry, now) for entry in update.log_entries]
            if update.new_free_passes:
                records.append(free_ticket_reward_record(user_id, now))
                if not digest:  # posted by the relay once the cache write committed
                    found = RiderFreeTickets(user_id, free_tickets_of(update.new_free_passes))
                    records.append(notice_record(user_id, Notice(free_tickets=found), now))
            changes = cache_changes(user_id, current, update.cache, now)
            return update.cache, _Write(tuple(records), changes), update

        stored, update = await self._compare_and_set(user_id, diff)
        unannounced: tuple[FreeTicket, ...] = free_tickets_of(update.new_free_passes) if digest else ()
        return RefreshResult(
            user_id,
            update.outcome,
            update.counts,
            stored.timestamp,
            stored,
            unannounced_free_tickets=unannounced,
        )

    async def _compare_and_set(
        self,
        user_id: int,
        compose: Callable[[TicketCache | None], tuple[TicketCache, _Write, T]],
        assume_absent: bool = False,
    ) -> tuple[TicketCache, T]:
        """Write what `compose` makes of the stored cache, with its outbox records and feed
        changes, conditional on its version; then hand the records to the relay. After a lost
        race, re-read and compose again once (the fetched lists are reused); then give up.

        `assume_absent` (a build): first try the insert of a new cache without reading, as a
        build mostly finds none. The insert stores nothing when a cache exists, and then the
        usual attempts follow. It saves a read per build, which on FerretDB v1 scans the whole
        collection when it finds nothing (bench/RESULTS.md, "Caches on FerretDB")."""
        if assume_absent:
            try:
                return await self._save(compose(None), None)
            except WriteConflict:
                pass  # a cache exists: compose from it below
        for attempt in range(_CAS_ATTEMPTS):
            current = await self._deps.caches.get(user_id)
            composed = compose(current)
            try:
                return await self._save(composed, current.version if current is not None else None)
            except WriteConflict:
                if attempt + 1 == _CAS_ATTEMPTS:
                    raise
                log.info("cache write race lost, retrying", extra={"user_id": user_id})
        raise AssertionError("unreachable")  # pragma: no cover

    async def _save(
        self, composed: tuple[TicketCache, _Write, T], expected: int | None
    ) -> tuple[TicketCache, T]:
        cache, write, detail = composed
        stored = await self._deps.caches.save(cache, expected, write.records, write.changes)
        # Committed with the cache: a store that is down now gets them from the relay later.
        await self._relay.deliver_after_write(cache.user_id, write.records, changed=bool(write.changes))
        return stored, detail

    def _no_valid_token(self, user_id: int, reason: str) -> RefreshResult:
        return RefreshResult(user_id, Outcome.NO_VALID_TOKEN, RefreshCounts(), 0, None, reason)

    # -- Bytemark ----------------------------------------------------------------------------

    async def _fetch(self, user_id: int, on_rotated: Callable[[], None] = lambda: None) -> FetchedPasses:
        """Both lists with the stored token; on 401 one refresh-token exchange, then one retry.
        A token about to expire is exchanged first, saving the 401 round trip. `on_rotated` is
        told when Bytemark issued a new token (kept, see `_keep_rotated_token`)."""
        token = await self._token(user_id)
        if token is None:
            raise _NoValidToken("no Bytemark token stored")
        if self._expires_soon(token) and token.refresh_token:
            fresh = await self._refresh_token(token)
            on_rotated()
            try:
                return await self._deps.passes_source.fetch_passes(fresh)
            except AccessTokenRejected as rejected:
                raise UpstreamUnavailable(
                    rejected.endpoint, "access token rejected right after a refresh"
                ) from None
        try:
            return await self._deps.passes_source.fetch_passes(token.access_token)
        except AccessTokenRejected as rejected:
            fresh = await self._refresh_token(token)
            on_rotated()
            try:
                return await self._deps.passes_source.fetch_passes(fresh)
            except AccessTokenRejected:
                raise UpstreamUnavailable(
                    rejected.endpoint, "access token rejected again right after a refresh"
                ) from None

    def _expires_soon(self, token: UserToken) -> bool:
        if token.expires_at is None:
            return False
        now = datetime.fromtimestamp(self._deps.clock.now(), tz=UTC)
        expires_at = token.expires_at if token.expires_at.tzinfo else token.expires_at.replace(tzinfo=UTC)
        return expires_at - now <= self._refresh_margin

    async def _token(self, user_id: int) -> UserToken | None:
        """A rotated token still waiting in the outbox is newer than the token store's."""
        pending = await self._deps.outbox.newest_token(user_id)
        if pending is None:
            return await self._deps.tokens.get_token(user_id)
        return UserToken(user_id, pending.access_token, pending.refresh_token, pending.expires_at)

    async def _refresh_token(self, token: UserToken) -> str:
        if not token.refresh_token:
            raise _NoValidToken("access token rejected (401) and no refresh token stored")
        try:
            grant = await self._deps.token_refresher.refresh(token.refresh_token)
        except RefreshTokenInvalid:
            log.info("refresh token rejected by Bytemark", extra={"user_id": token.user_id})
            raise _NoValidToken("refresh token rejected by Bytemark (invalid_grant)") from None
        expires_at = None
        if grant.expires_in:
            now = datetime.fromtimestamp(self._deps.clock.now(), tz=UTC)
            expires_at = (now + timedelta(seconds=grant.expires_in)).replace(tzinfo=None)
        rotated = RotatedToken(grant.access_token, grant.refresh_token or token.refresh_token, expires_at)
        await self._keep_rotated_token(token.user_id, rotated)
        return grant.access_token

    async def _keep_rotated_token(self, user_id: int, rotated: RotatedToken) -> None:
        """Bytemark has retired the old refresh token: the new one goes to the outbox first (it
        is durable there and read from there until delivered), then on to the token store."""
        record = token_record(user_id, rotated, self._deps.clock.now())
        try:
            await self._deps.outbox.add([record])
        except StoreUnavailable:
            log.warning("outbox unavailable; storing the rotated token directly", extra={"user_id": user_id})
            await _with_store_retries(
                lambda: self._deps.tokens.save_tokens(
                    user_id, rotated.access_token, rotated.refresh_token, rotated.expires_at
                )
            )
            return
        await self._relay.deliver_soon([record])


async def _with_store_retries(write: Callable[[], Awaitable[None]]) -> None:
    for delay in (*_RECORD_RETRY_DELAYS, None):
        try:
            await write()
            return
        except StoreUnavailable as exc:
            if delay is None:
                log.error(
                    "audit write failed after retries", extra={"store": exc.store, "reason": exc.reason}
                )
                raise
            await asyncio.sleep(delay)
