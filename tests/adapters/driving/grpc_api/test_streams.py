"""The server-streaming bulk RPCs: events in order, arguments, errors per user, cancellation."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import grpc
import pytest

from application.errors import InternalError, InvalidArgument, UpstreamUnavailable
from application.results import BulkProgress
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import Outcome
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import make_result


def three_user_run() -> list[BulkProgress]:
    return [
        BulkProgress(
            user_id=1, result=make_result(1, Outcome.UPDATED), error=None, done=1, total=3, failed=0
        ),
        BulkProgress(
            user_id=2,
            result=None,
            error=UpstreamUnavailable("GET /passes", "503 after 4 attempts"),
            done=2,
            total=3,
            failed=1,
        ),
        BulkProgress(user_id=3, result=make_result(3, Outcome.FRESH), error=None, done=3, total=3, failed=1),
    ]


async def test_refresh_streams_each_users_result_or_error_in_order(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.events = three_user_run()

    events = [
        event
        async for event in grpc_server.stub.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(shard_index=1, shard_count=4, user_ids=[1, 2, 3])
        )
    ]

    assert grpc_server.use_cases.calls == [("refresh_stale", (None, None, 1, 4, [1, 2, 3]))]
    assert [(e.user_id, e.done, e.total, e.failed) for e in events] == [
        (1, 1, 3, 0),
        (2, 2, 3, 1),
        (3, 3, 3, 1),
    ]
    assert [e.WhichOneof("event") for e in events] == ["result", "error", "result"]
    assert events[0].result.outcome == pb.OUTCOME_UPDATED
    assert not events[0].result.HasField("cache")
    assert events[1].error.code == "UNAVAILABLE"
    assert "GET /passes" in events[1].error.message
    assert events[2].result.outcome == pb.OUTCOME_FRESH


async def test_a_failed_users_log_line_carries_the_code_and_message_its_event_carries(
    grpc_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    grpc_server.use_cases.events = three_user_run()

    with caplog.at_level(logging.WARNING, logger="adapters.driving.grpc_api.servicer"):
        events = [
            event async for event in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest())
        ]

    failed = [record for record in caplog.records if record.name == "adapters.driving.grpc_api.servicer"]
    assert [record.getMessage() for record in failed] == [
        f"RefreshStaleCaches: user 2 failed: {events[1].error.code} {events[1].error.message}"
    ]
    assert events[1].error.message == "Bytemark GET /passes: 503 after 4 attempts"
    assert failed[0].user_id == 2


async def test_a_user_failed_by_a_bug_is_logged_once_with_its_traceback_and_sent_only_a_request_id(
    grpc_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        raise RuntimeError("secret detail of a bug")
    except RuntimeError as bug:
        error = InternalError(bug)
    grpc_server.use_cases.events = [
        BulkProgress(user_id=5, result=None, error=error, done=1, total=1, failed=1)
    ]

    with caplog.at_level(logging.DEBUG):
        [event] = [
            event
            async for event in grpc_server.stub.RefreshStaleCaches(
                pb.RefreshStaleCachesRequest(), metadata=(("x-request-id", "req-77"),)
            )
        ]

    assert event.error.code == "INTERNAL"
    assert event.error.message == "internal error (request id req-77)"
    about_user = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(about_user) == 1
    assert "user 5 failed: INTERNAL internal error (request id req-77)" in about_user[0].getMessage()
    assert about_user[0].exc_info is not None and about_user[0].exc_info[1] is error


async def test_refresh_passes_max_age_and_concurrency_and_includes_caches_when_asked(
    grpc_server: RunningServer,
) -> None:
    grpc_server.use_cases.events = three_user_run()[:1]

    events = [
        event
        async for event in grpc_server.stub.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(
                max_age_seconds=600, concurrency=8, include_cache=True, view=pb.CACHE_VIEW_SUMMARY
            )
        )
    ]

    assert grpc_server.use_cases.calls == [("refresh_stale", (600, 8, 0, 0, []))]
    assert len(events[0].result.cache.passes) == 2
    assert events[0].result.cache.passes[0].WhichOneof("content") is None


async def test_bootstrap_reports_a_store_that_is_not_empty(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.events = [
        BulkProgress(user_id=None, result=None, error=None, done=0, total=0, failed=0, skipped_not_empty=True)
    ]

    events = [e async for e in grpc_server.stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(concurrency=3))]

    assert grpc_server.use_cases.calls == [("build_if_empty", (3,))]
    assert len(events) == 1
    assert events[0].skipped_not_empty and events[0].user_id == 0
    assert events[0].WhichOneof("event") is None


async def test_bootstrap_streams_built_users(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.events = three_user_run()

    events = [e async for e in grpc_server.stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest())]

    assert grpc_server.use_cases.calls == [("build_if_empty", (None,))]
    assert [e.user_id for e in events] == [1, 2, 3]
    assert not any(e.skipped_not_empty for e in events)


@pytest.mark.parametrize("method", ["RefreshStaleCaches", "BuildCacheIfEmpty"])
async def test_cancelling_the_stream_closes_the_use_case_stream(
    grpc_server: RunningServer, method: str
) -> None:
    fake = grpc_server.use_cases
    fake.events = three_user_run()[:1]
    fake.hold_stream_open = True  # more work would follow
    request = (
        pb.RefreshStaleCachesRequest() if method == "RefreshStaleCaches" else pb.BuildCacheIfEmptyRequest()
    )
    call = getattr(grpc_server.stub, method)(request)

    first = await call.read()
    assert first.user_id == 1
    call.cancel()

    await asyncio.wait_for(fake.stream_closed.wait(), timeout=5)
    assert fake.cancelled.is_set()  # the cancel reached the use case, not just the transport


async def test_a_stream_that_fails_before_its_first_event_ends_with_the_mapped_status(
    grpc_server: RunningServer,
) -> None:
    grpc_server.use_cases.failures["refresh_stale"] = InvalidArgument("shard_index", "must be < shard_count")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in grpc_server.stub.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(shard_index=5, shard_count=2)
        ):
            pass

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith("shard_index")


async def test_an_unknown_view_on_a_stream_is_an_invalid_argument(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in grpc_server.stub.BuildCacheIfEmpty(
            pb.BuildCacheIfEmptyRequest(include_cache=True, view=17)  # type: ignore[arg-type]
        ):
            pass

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "view" in (raised.value.details() or "")


def ready(progress: BulkProgress, more_ready: bool) -> BulkProgress:
    return dataclasses.replace(progress, more_ready=more_ready)


async def test_with_max_batch_users_already_finished_share_one_event(grpc_server: RunningServer) -> None:
    first, second, third = three_user_run()
    # users 1 and 2 finished together; 3 came later
    grpc_server.use_cases.events = [ready(first, True), ready(second, False), ready(third, False)]

    events = [
        event
        async for event in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(max_batch=10))
    ]

    assert [[(u.user_id, u.WhichOneof("event")) for u in e.batch] for e in events] == [
        [(1, "result"), (2, "error")],
        [(3, "result")],
    ]
    assert [(e.user_id, e.done, e.total, e.failed) for e in events] == [(0, 2, 3, 1), (0, 3, 3, 1)]
    assert events[0].batch[1].error.code == "UNAVAILABLE"


async def test_a_batch_never_holds_more_than_max_batch_users(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.events = [ready(p, True) for p in three_user_run()]

    events = [
        event async for event in grpc_server.stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(max_batch=2))
    ]

    assert [[u.user_id for u in e.batch] for e in events] == [[1, 2], [3]]
    assert events[-1].done == 3


async def test_a_max_batch_out_of_range_is_invalid_argument_naming_it(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(max_batch=1001)):
            pass
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "max_batch" in (raised.value.details() or "")
