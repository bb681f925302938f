"""Bulk streams with `max_batch`, read one rider at a time.

A batched event carries several riders in `batch`, in the order they finished, and the run's
totals after the last of them. `per_rider` turns it back into the events the server would have
sent with `max_batch` 0: one per rider, with `done`, `failed` and the skip counts as they stood
after that rider. So a caller asks for fewer, larger messages (less server CPU per rider) and
still reads per rider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

BulkEvent = TypeVar("BulkEvent", pb.BuildCacheIfEmptyResponse, pb.RefreshStaleCachesResponse)


async def per_rider(events: AsyncIterator[BulkEvent]) -> AsyncIterator[BulkEvent]:
    """Every event of `events`, with each batched one spread into its riders' events."""
    async for event in events:
        if event.batch:
            for single in unbatched(event):
                yield single
        else:
            yield event


def unbatched(event: BulkEvent) -> list[BulkEvent]:
    """The per-rider events of one batched event. `total` is the batch's (it can only have grown
    while its riders finished); `stopped` is never batched: it comes as an event of its own."""
    singles: list[BulkEvent] = []
    failed, auth_required, backoff = event.failed, event.skipped_auth_required, event.skipped_backoff
    for behind, user in enumerate(reversed(event.batch)):  # totals worked back from the last rider's
        single = type(event)(
            user_id=user.user_id,
            done=event.done - behind,
            total=event.total,
            failed=failed,
            skipped=user.skipped,
            skipped_auth_required=auth_required,
            skipped_backoff=backoff,
        )
        if behind == 0 and isinstance(single, pb.RefreshStaleCachesResponse):
            if event.HasField("dry_run_totals"):  # the run's totals: the last rider's
                single.dry_run_totals.CopyFrom(event.dry_run_totals)
        if user.HasField("result"):
            single.result.CopyFrom(user.result)
        elif user.HasField("status") or user.HasField("error"):
            single.status.CopyFrom(user.status)
            single.error.CopyFrom(user.error)  # deprecated; kept while servers still send it
            failed -= 1
        if user.skipped == pb.SKIP_REASON_AUTH_REQUIRED:
            auth_required -= 1
        elif user.skipped == pb.SKIP_REASON_BACKOFF:
            backoff -= 1
        singles.append(single)
    singles.reverse()
    return singles
