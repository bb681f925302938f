"""GetSyncStatus, ListSyncStatuses and the skip fields of bulk events, over a real channel."""

from __future__ import annotations

import grpc
import pytest

from application.results import BulkProgress, Skipped
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.sync_state import SkipReason, SyncError, SyncState, SyncStatus
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import NOW, FakeUseCases

FAILING = SyncStatus(
    7,
    SyncState.FAILING,
    last_attempt_at=NOW,
    last_success_at=NOW - 3600,
    consecutive_failures=2,
    last_error=SyncError("UNAVAILABLE", "Bytemark GET /passes: HTTP 500"),
    next_attempt_at=NOW + 120,
    cache_timestamp=NOW - 3600,
)
NEVER_OK = SyncStatus(8, SyncState.AUTH_REQUIRED, last_attempt_at=NOW, consecutive_failures=1)


async def test_get_sync_status_sends_every_field(grpc_server: RunningServer, use_cases: FakeUseCases) -> None:
    use_cases.sync_statuses[7] = FAILING
    status = (await grpc_server.stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=7))).status
    assert (status.user_id, status.state, status.consecutive_failures) == (7, pb.SYNC_STATE_FAILING, 2)
    assert (status.last_attempt_at.seconds, status.last_success_at.seconds) == (NOW, NOW - 3600)
    assert (status.next_attempt_at.seconds, status.cache_timestamp.seconds) == (NOW + 120, NOW - 3600)
    assert (status.last_error.code, status.last_error.message) == (
        "UNAVAILABLE",
        "Bytemark GET /passes: HTTP 500",
    )


async def test_unknown_times_stay_unset(grpc_server: RunningServer, use_cases: FakeUseCases) -> None:
    use_cases.sync_statuses[8] = NEVER_OK
    status = (await grpc_server.stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=8))).status
    assert status.state == pb.SYNC_STATE_AUTH_REQUIRED
    assert not status.HasField("last_success_at") and not status.HasField("next_attempt_at")
    assert not status.HasField("last_error") and not status.HasField("cache_timestamp")


async def test_a_rider_never_seen_is_not_found(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=99))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "99" in (raised.value.details() or "")


async def test_list_passes_the_filter_and_paging_on(
    grpc_server: RunningServer, use_cases: FakeUseCases
) -> None:
    use_cases.sync_statuses.update({7: FAILING, 8: NEVER_OK})
    response = await grpc_server.stub.ListSyncStatuses(
        pb.ListSyncStatusesRequest(state=pb.SYNC_STATE_FAILING, page_size=5, page_token="t")
    )
    assert [s.user_id for s in response.statuses] == [7]
    assert use_cases.calls[-1] == ("list_sync_statuses", (SyncState.FAILING, 5, "t"))
    everyone = await grpc_server.stub.ListSyncStatuses(pb.ListSyncStatusesRequest())
    assert [s.user_id for s in everyone.statuses] == [7, 8]
    assert use_cases.calls[-1] == ("list_sync_statuses", (None, 0, ""))


async def test_an_unknown_state_filter_is_invalid_and_named(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.ListSyncStatuses(pb.ListSyncStatusesRequest(state=42))  # type: ignore[arg-type]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith("state:")


async def test_bulk_events_say_who_was_skipped_why_and_when_a_run_stopped(
    grpc_server: RunningServer, use_cases: FakeUseCases
) -> None:
    use_cases.events = [
        BulkProgress(
            7,
            None,
            None,
            1,
            2,
            0,
            skipped=Skipped(SkipReason.BACKOFF, FAILING),
            skipped_by_reason={SkipReason.BACKOFF: 1},
        ),
        BulkProgress(None, None, None, 1, 2, 0, skipped_by_reason={SkipReason.BACKOFF: 1}, stopped="outage"),
    ]
    events = [e async for e in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest())]
    assert events[0].skipped == pb.SKIP_REASON_BACKOFF and events[0].WhichOneof("event") is None
    assert (events[0].skipped_backoff, events[0].skipped_auth_required) == (1, 0)
    assert (events[1].user_id, events[1].stopped, events[1].skipped) == (
        0,
        "outage",
        pb.SKIP_REASON_UNSPECIFIED,
    )
