"""`ticket_cache_client.per_rider`: a stream asked with max_batch, read through it, is event for
event what the same run sends with max_batch 0 (the CLI asks for batches and prints per rider)."""

from __future__ import annotations

from application.bulk import _Tally
from application.errors import UpstreamUnavailable
from application.results import BulkProgress, Skipped
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import Outcome
from domain.sync_state import SkipReason, SyncState, SyncStatus
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import make_result
from ticket_cache_client import per_rider

#: Both calls under one request id, so the failed riders' ErrorInfo (which quotes it) compare equal.
SAME_RUN = (("x-request-id", "same-run"),)


def status(user_id: int, state: SyncState) -> SyncStatus:
    return SyncStatus(user_id, state, last_attempt_at=1_700_000_000, consecutive_failures=1)


def mixed_run() -> list[BulkProgress]:
    """Results, failures and both kinds of skip, finishing together in twos and threes, then a
    run stopped early: what the application's own tally reports."""
    tally, total = _Tally(), 8
    finished: list[tuple[int, object, object, bool]] = [
        (1, make_result(1, Outcome.UPDATED), None, True),
        (2, None, UpstreamUnavailable("GET /passes", "503 after 4 attempts"), True),
        (3, Skipped(SkipReason.AUTH_REQUIRED, status(3, SyncState.AUTH_REQUIRED)), None, False),
        (4, Skipped(SkipReason.BACKOFF, status(4, SyncState.FAILING)), None, True),
        (5, make_result(5, Outcome.FRESH), None, True),
        (6, None, UpstreamUnavailable("GET /passes", "timeout after 1 attempts"), False),
        (7, make_result(7, Outcome.BUILT), None, False),
    ]
    run = [
        tally.progress(user_id, result, error, total=total, more_ready=more)  # type: ignore[arg-type]
        for user_id, result, error, more in finished
    ]
    return [*run, tally.stopped("most riders failed the same way", total=total)]


async def test_a_batched_refresh_read_per_rider_is_the_unbatched_stream(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.events = mixed_run()
    one_each = [
        e
        async for e in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(), metadata=SAME_RUN)
    ]
    batched_call = grpc_server.stub.RefreshStaleCaches(
        pb.RefreshStaleCachesRequest(max_batch=3), metadata=SAME_RUN
    )
    batched = [e async for e in batched_call]
    read_per_rider = [e async for e in per_rider(_replay(batched))]

    assert [len(e.batch) for e in batched] == [3, 3, 1, 0]  # riders really shared messages
    assert read_per_rider == one_each
    assert [(e.done, e.failed, e.skipped_auth_required, e.skipped_backoff) for e in read_per_rider] == [
        (1, 0, 0, 0),
        (2, 1, 0, 0),
        (3, 1, 1, 0),
        (4, 1, 1, 1),
        (5, 1, 1, 1),
        (6, 2, 1, 1),
        (7, 2, 1, 1),
        (7, 2, 1, 1),  # the stopped note
    ]


async def test_a_batched_bootstrap_read_per_rider_is_the_unbatched_stream(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.events = mixed_run()
    one_each = [
        e async for e in grpc_server.stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(), metadata=SAME_RUN)
    ]
    batched = [
        e
        async for e in grpc_server.stub.BuildCacheIfEmpty(
            pb.BuildCacheIfEmptyRequest(max_batch=2), metadata=SAME_RUN
        )
    ]

    assert [e async for e in per_rider(_replay(batched))] == one_each


async def _replay(events):  # type: ignore[no-untyped-def]
    for event in events:
        yield event
