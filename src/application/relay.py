"""Delivers outbox records to their stores: right after the write that stored them, and in the
background until every store has taken them (retrying with backoff while one is down)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from typing import Protocol

from application.errors import StoreUnavailable
from application.notices import Notice
from application.outbox import OutboxBacklog, OutboxRecord, Target
from application.ports import NoticeClaims, Notifier, Outbox, RefreshLog, TicketLog, TokenStore
from domain.changes import PassChange

log = logging.getLogger(__name__)

_BATCH = 200
_IDLE_POLL_SECONDS = 1.0  # records another process stored, or that a crash left behind
_BACKOFF_FIRST_SECONDS = 0.2
_BACKOFF_MAX_SECONDS = 5.0
# An RPC waits this long at most for the delivery right after its commit: a stalled store must
# not hold the caller once the records are safe in the outbox.
_INLINE_BUDGET_SECONDS = 1.0


class RelayObserver(Protocol):
    def delivery_failed(self, target: Target) -> None: ...

    def backlog(self, backlog: OutboxBacklog) -> None: ...


class RelayedChangeFeed(Protocol):
    """A change feed the relay appends to (on stores whose cache write cannot append it itself)."""

    async def append(self, record_id: str, user_id: int, changes: Sequence[PassChange]) -> None:
        """Append the changes of one cache write as the feed's next batch, once per `record_id`."""


class _NoObserver:
    def delivery_failed(self, target: Target) -> None:
        pass

    def backlog(self, backlog: OutboxBacklog) -> None:
        pass


class OutboxRelay:
    """Deliver, then mark. Each target ignores a record id it has seen, so a record delivered
    twice (a crash between the two steps, two relays at once) still lands once."""

    def __init__(
        self,
        outbox: Outbox,
        ticket_log: TicketLog,
        refresh_log: RefreshLog,
        tokens: TokenStore,
        observer: RelayObserver | None = None,
        change_feed: RelayedChangeFeed | None = None,
        notifier: Notifier | None = None,
        claims: NoticeClaims | None = None,
    ) -> None:
        self._outbox = outbox
        self._ticket_log = ticket_log
        self._refresh_log = refresh_log
        self._tokens = tokens
        self._observer = observer or _NoObserver()
        self._change_feed = change_feed
        self._notifier = notifier
        self._claims = claims
        self._wake = asyncio.Event()
        # Notices this process is posting right after their write: no budget cuts a post short
        # (it could not tell whether Slack took it), and no other delivery posts them meanwhile.
        self._posting: dict[str, asyncio.Task[bool]] = {}

    async def deliver(self, records: Sequence[OutboxRecord], *, posting: bool = False) -> bool:
        """Deliver in order; a user's later records wait behind a failed one. True if all landed.
        Notices being posted in the background are left pending, unless `posting` (that task)."""
        delivered: list[OutboxRecord] = []
        blocked: set[int] = set()
        failed = False
        for record in records:
            if record.user_id in blocked or (record.record_id in self._posting and not posting):
                continue
            try:
                await self._deliver_one(record)
            except StoreUnavailable as exc:
                if record.target is not Target.SLACK:  # a notice keeps no order with the stores
                    blocked.add(record.user_id)
                failed = True
                self._observer.delivery_failed(record.target)
                log.warning(
                    "outbox delivery failed; will retry",
                    extra={"target": record.target.value, "store": exc.store, "reason": exc.reason},
                )
                continue
            delivered.append(record)
        if delivered:
            try:
                await self._outbox.mark_delivered(delivered)
            except StoreUnavailable:
                return False  # delivered but not marked: the next pass delivers again, harmlessly
        if failed:
            self._wake.set()
        return not failed and len(delivered) == len(records)

    async def deliver_soon(self, records: Sequence[OutboxRecord]) -> None:
        """Right after a commit: one attempt now, the background loop keeps any that fail.
        Notices are posted by a task of their own, so the caller does not wait for Slack."""
        to_stores = self._post_notices_of(records)
        if to_stores:
            await self._within_budget(self.deliver(to_stores))

    def _post_notices_of(self, records: Sequence[OutboxRecord]) -> list[OutboxRecord]:
        """Start posting the notices among `records`; the others are returned."""
        notices = [r for r in records if r.target is Target.SLACK and r.record_id not in self._posting]
        if notices:
            task = asyncio.create_task(self.deliver(notices, posting=True), name="outbox-notices")
            for record in notices:
                self._posting[record.record_id] = task
            task.add_done_callback(lambda _: [self._posting.pop(r.record_id, None) for r in notices])
        return [r for r in records if r.target is not Target.SLACK]

    async def notices_posted(self) -> None:
        """Wait for the notices being posted right after their writes (tests, shutdown)."""
        await asyncio.gather(*set(self._posting.values()), return_exceptions=True)

    async def deliver_after_write(self, user_id: int, records: Sequence[OutboxRecord], changed: bool) -> None:
        """Right after a cache write that stored `records` (and feed changes when `changed`).
        Where the relay carries the feed, the store added the changes' record itself, and an
        earlier write's may still be pending: deliver all the user's records, in order, so the
        user's batches reach the feed in write order."""
        if self._change_feed is None or not changed:
            await self.deliver_soon(records)
        else:
            await self._within_budget(self._deliver_pending_of(user_id))

    async def _deliver_pending_of(self, user_id: int) -> None:
        await self.deliver(self._post_notices_of(await self._outbox.pending_for_user(user_id)))

    async def _within_budget(self, delivery: Awaitable[object]) -> None:
        """Give an inline delivery at most the RPC's budget; whatever it leaves (a stalled store,
        an outbox it could not read) the background loop takes, woken now."""
        try:
            async with asyncio.timeout(_INLINE_BUDGET_SECONDS):
                await delivery
        except (TimeoutError, StoreUnavailable):
            self._wake.set()

    async def run(self) -> None:
        """The background loop; runs until cancelled."""
        failures = 0
        while True:
            try:
                clean = await self._pass()
            except StoreUnavailable as exc:  # the outbox itself (the cache store) is down
                log.warning("outbox unreadable; will retry", extra={"store": exc.store, "reason": exc.reason})
                clean = False
            failures = 0 if clean else failures + 1
            delay = (
                _IDLE_POLL_SECONDS
                if clean
                else min(_BACKOFF_MAX_SECONDS, _BACKOFF_FIRST_SECONDS * 2 ** (failures - 1))
            )
            self._wake.clear()
            if clean:
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
            else:
                await asyncio.sleep(delay)

    async def _pass(self) -> bool:
        """Deliver everything pending now; True when nothing failed."""
        while True:
            records = await self._outbox.pending(_BATCH)
            all_landed = await self.deliver(records) if records else True
            if all_landed and len(records) < _BATCH:
                # it read every pending record and delivered them all: no second read (on FerretDB
                # each is a scan of every cache); one written meanwhile shows on the next pass
                self._observer.backlog(OutboxBacklog({target: 0 for target in Target}, None))
                return True
            self._observer.backlog(await self._outbox.backlog())
            if not all_landed:
                return False

    async def _deliver_one(self, record: OutboxRecord) -> None:
        if record.target is Target.TICKET_LOG:
            assert record.entry is not None
            await self._ticket_log.deliver(record.record_id, record.entry)
        elif record.target is Target.REFRESH_LOG:
            await self._refresh_log.deliver_free_ticket_reward(record.record_id, record.user_id)
        elif record.target is Target.SLACK:
            await self._post_notice(record.record_id, record.notice)
        elif record.target is Target.CHANGE_FEED:
            if self._change_feed is None:
                raise StoreUnavailable("change feed", "no relayed change feed is configured")
            await self._change_feed.append(record.record_id, record.user_id, record.changes)
        else:
            assert record.token is not None
            await self._tokens.deliver_tokens(record.record_id, record.user_id, record.token)

    async def _post_notice(self, record_id: str, notice: Notice | None) -> None:
        """Post once: claimed first (Slack cannot ignore a repeat), released if the post fails."""
        if self._notifier is None or notice is None:
            return  # notices are off: nothing to post
        if self._claims is not None and not await self._claims.claim_once(record_id):
            return  # another relay posted it
        try:
            if notice.free_tickets is not None:
                await self._notifier.free_tickets_found(notice.free_tickets)
            if notice.summary is not None:
                await self._notifier.bulk_run_finished(notice.summary)
        except BaseException:
            if self._claims is not None:
                with contextlib.suppress(StoreUnavailable):  # then the notice is lost, not doubled
                    await self._claims.release(record_id)
            raise
