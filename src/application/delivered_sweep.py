"""Forgets the record ids the delivery targets keep for idempotency, once no relay can deliver
those records again, so `bytemark_outbox_delivered` stops growing with every record ever sent.

Why the horizon is safe: a target looks an id up only when a relay delivers the record, and a
relay delivers only records it read from the outbox as pending (or has just written there). A
record is created (`created_at`) before it is delivered, so the claim of a record still pending
was written at or after the oldest pending record's `created_at`. A claim older than that, and
older than now when nothing is pending, belongs to a record already marked delivered, which no
relay reads again. The extra margin covers what that argument leaves out: clocks of different
processes (claims are stamped by the delivering process, records by the refreshing one), a relay
still holding a batch it read just before another relay marked it, and outboxes this process
cannot see (another server's SQLite file on the same MySQL, say one killed and restarted days later).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from application.periodic import repeat_every
from application.ports import Clock, Outbox

log = logging.getLogger(__name__)

#: Claims are kept this long after the horizon: a week, far past any pause between a delivery and
#: its mark that a store outage or a stopped server would cause without somebody noticing.
KEEP_AFTER_HORIZON_SECONDS = 7 * 86_400
SWEEP_EVERY_SECONDS = 3_600.0


class DeliveredIds(Protocol):
    """A store's `bytemark_outbox_delivered` table."""

    async def sweep_delivered(self, delivered_before: datetime) -> int:
        """Delete the ids claimed before `delivered_before` (aware UTC); returns how many."""


class DeliveredIdSweep:
    def __init__(
        self,
        outbox: Outbox,
        stores: Sequence[DeliveredIds],
        clock: Clock,
        keep_seconds: int = KEEP_AFTER_HORIZON_SECONDS,
    ) -> None:
        self._outbox = outbox
        self._stores = stores
        self._clock = clock
        self._keep_seconds = keep_seconds

    async def horizon(self) -> datetime:
        """Claims before this moment can no longer be looked up (see the module's docstring)."""
        now = self._clock.now()
        oldest_pending = (await self._outbox.backlog()).oldest_created_at
        start = now if oldest_pending is None else min(now, oldest_pending)
        return datetime.fromtimestamp(start - self._keep_seconds, UTC)

    async def sweep_once(self) -> int:
        # the backlog is read first: with the outbox unreadable nothing is swept
        horizon = await self.horizon()
        removed = sum([await store.sweep_delivered(horizon) for store in self._stores])
        if removed:
            log.info("delivered outbox ids swept", extra={"removed": removed})
        return removed

    async def run(self) -> None:
        """Every hour until cancelled; a store that is down is tried again the next hour."""
        await repeat_every(SWEEP_EVERY_SECONDS, self.sweep_once, "delivered outbox ids sweep")
