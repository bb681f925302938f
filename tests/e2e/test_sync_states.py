"""Per-rider sync state end to end: the real server and sandbox processes, tokens written with
plain SQL the way the app writes them, Bytemark calls counted by the sandbox (/_sandbox/stats).

The module's server backs off 1-2 s after a first failure (SYNC_BACKOFF_BASE_SECONDS=2) and makes
one attempt per Bytemark call, so failures are quick and a backoff can be waited out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server

BACKOFF_SECONDS = 2


@pytest.fixture(scope="module")
def sync_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        SYNC_BACKOFF_BASE_SECONDS=str(BACKOFF_SECONDS),
        SYNC_BACKOFF_MAX_SECONDS=str(BACKOFF_SECONDS),
        BYTEMARK_MAX_ATTEMPTS="1",
    )
    yield process
    process.stop()


@pytest_asyncio.fixture
async def stub(sync_server: ServerProcess) -> AsyncIterator[pb_grpc.TicketCacheServiceStub]:
    async with grpc.aio.insecure_channel(sync_server.address) as channel:
        yield pb_grpc.TicketCacheServiceStub(channel)


async def status_of(stub: pb_grpc.TicketCacheServiceStub, user_id: int) -> pb.SyncStatus:
    return (await stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=user_id))).status


async def refresh_run(
    stub: pb_grpc.TicketCacheServiceStub, *user_ids: int
) -> list[pb.RefreshStaleCachesResponse]:
    request = pb.RefreshStaleCachesRequest(max_age_seconds=1, user_ids=list(user_ids))
    return [event async for event in stub.RefreshStaleCaches(request)]


def calls_for(sandbox: SandboxProcess, user_id: int) -> int:
    return sum(sandbox.stats()["users"].get(str(user_id), {}).values())


async def test_a_revoked_rider_is_skipped_until_new_tokens_are_written_with_sql(
    stub: pb_grpc.TicketCacheServiceStub, sandbox: SandboxProcess, sync_server: ServerProcess
) -> None:
    user_id = sync_server.seed_user(sandbox)
    sandbox.call("POST", f"/_sandbox/users/{user_id}/revoke")

    result = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))).result
    assert result.outcome == pb.OUTCOME_NO_VALID_TOKEN
    status = await status_of(stub, user_id)
    assert status.state == pb.SYNC_STATE_AUTH_REQUIRED
    assert "invalid_grant" in status.last_error.message

    before = sandbox.stats()["total"]
    events = await refresh_run(stub, user_id)
    assert sandbox.stats()["total"] == before  # zero Bytemark calls for it
    assert [(e.user_id, e.skipped) for e in events] == [(user_id, pb.SKIP_REASON_AUTH_REQUIRED)]
    assert (events[-1].skipped_auth_required, events[-1].done, events[-1].failed) == (1, 1, 0)

    creds = sandbox.call("POST", f"/_sandbox/users/{user_id}/login")  # the rider logs in again ...
    sync_server.seed_token(user_id, creds["access_token"], creds["refresh_token"])  # ... the app stores it

    events = await refresh_run(stub, user_id)
    assert events[-1].result.outcome == pb.OUTCOME_BUILT
    assert calls_for(sandbox, user_id) > 0
    status = await status_of(stub, user_id)
    assert (status.state, status.consecutive_failures) == (pb.SYNC_STATE_OK, 0)
    assert status.cache_timestamp.seconds == events[-1].result.refreshed_at.seconds


async def test_a_rider_bytemark_fails_for_backs_off_then_recovers(
    stub: pb_grpc.TicketCacheServiceStub, sandbox: SandboxProcess, sync_server: ServerProcess
) -> None:
    user_id = sync_server.seed_user(sandbox)
    sandbox.add_faults({"endpoint": "v1", "kind": "500", "times": -1, "user_id": user_id})
    try:
        [event] = await refresh_run(stub, user_id)
        assert event.error.code == "UNAVAILABLE"
        status = await status_of(stub, user_id)
        assert (status.state, status.consecutive_failures) == (pb.SYNC_STATE_FAILING, 1)
        assert status.last_error.code == "UNAVAILABLE" and "500" in status.last_error.message
        assert 1 <= status.next_attempt_at.seconds - status.last_attempt_at.seconds <= BACKOFF_SECONDS

        calls = calls_for(sandbox, user_id)
        [skipped] = await refresh_run(stub, user_id)
        assert skipped.skipped == pb.SKIP_REASON_BACKOFF and skipped.skipped_backoff == 1
        assert calls_for(sandbox, user_id) == calls  # no call while backing off
    finally:
        sandbox.clear_faults()

    await asyncio.sleep(max(0.0, status.next_attempt_at.seconds - time.time() + 1.1))
    [event] = await refresh_run(stub, user_id)
    assert event.result.outcome == pb.OUTCOME_BUILT
    status = await status_of(stub, user_id)
    assert (status.state, status.consecutive_failures) == (pb.SYNC_STATE_OK, 0)
    assert not status.HasField("last_error") and not status.HasField("next_attempt_at")


async def test_an_explicit_call_tries_a_rider_in_backoff(
    stub: pb_grpc.TicketCacheServiceStub, sandbox: SandboxProcess, sync_server: ServerProcess
) -> None:
    user_id = sync_server.seed_user(sandbox)
    sandbox.add_faults({"endpoint": "v1", "kind": "500", "times": 1, "user_id": user_id})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await status_of(stub, user_id)).state == pb.SYNC_STATE_FAILING

    result = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))).result
    assert result.outcome == pb.OUTCOME_BUILT
    assert (await status_of(stub, user_id)).state == pb.SYNC_STATE_OK


async def test_a_rider_never_refreshed_has_no_sync_status(stub: pb_grpc.TicketCacheServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=987_654_321))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_every_status_page_holds_and_no_rider_is_lost_or_repeated(
    stub: pb_grpc.TicketCacheServiceStub, sandbox: SandboxProcess, sync_server: ServerProcess
) -> None:
    riders = [sync_server.seed_user(sandbox, passes=1, expired=0) for _ in range(23)]
    revoked = riders[5]
    sandbox.call("POST", f"/_sandbox/users/{revoked}/revoke")
    await refresh_run(stub)  # every rider with a token on this server
    expected = sorted(
        row[0] for row in sync_server.query("SELECT DISTINCT user_id FROM bytemark_tokens WHERE token <> ''")
    )

    seen: list[int] = []
    token = ""
    pages = 0
    while True:
        page = await stub.ListSyncStatuses(pb.ListSyncStatusesRequest(page_size=4, page_token=token))
        ids = [s.user_id for s in page.statuses]
        assert len(ids) <= 4 and ids == sorted(ids)
        assert not seen or not ids or ids[0] > seen[-1]
        seen += ids
        pages += 1
        if pages == 2:  # a rider changing state between pages moves in no page
            await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=riders[0]))
        token = page.next_page_token
        if not token:
            break
    assert seen == expected
    assert pages == -(-len(expected) // 4)

    auth = await stub.ListSyncStatuses(
        pb.ListSyncStatusesRequest(state=pb.SYNC_STATE_AUTH_REQUIRED, page_size=1000)
    )
    assert revoked in [s.user_id for s in auth.statuses]
    assert all(s.state == pb.SYNC_STATE_AUTH_REQUIRED for s in auth.statuses)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ListSyncStatuses(pb.ListSyncStatusesRequest(page_size=-1))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (raised.value.details() or "").startswith("page_size")


async def test_a_bytemark_outage_stops_the_run_and_backs_nobody_off(
    stub: pb_grpc.TicketCacheServiceStub, sandbox: SandboxProcess, sync_server: ServerProcess
) -> None:
    riders = [sync_server.seed_user(sandbox, passes=1, expired=0) for _ in range(40)]
    sandbox.add_faults({"endpoint": "v1", "kind": "500", "times": -1})  # Bytemark down for everyone
    try:
        request = pb.RefreshStaleCachesRequest(max_age_seconds=1, concurrency=4, user_ids=riders)
        events = [event async for event in stub.RefreshStaleCaches(request)]
    finally:
        sandbox.clear_faults()

    last = events[-1]
    assert last.user_id == 0 and "general outage" in last.stopped and "GET /passes" in last.stopped
    assert last.done < len(riders)  # it stopped starting riders
    for user_id in riders:  # nobody went into backoff: these riders were never refreshed before
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=user_id))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_token_about_to_expire_is_exchanged_before_fetching(
    stub: pb_grpc.TicketCacheServiceStub, sandbox: SandboxProcess, sync_server: ServerProcess
) -> None:
    user_id = sync_server.seed_user(sandbox)
    soon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 30))  # within the 60 s margin
    sync_server.query("UPDATE bytemark_tokens SET token_expires_at = ? WHERE user_id = ?", (soon, user_id))
    old_token = sync_server.query("SELECT token FROM bytemark_tokens WHERE user_id = ?", (user_id,))[0][0]

    result = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))).result

    assert result.outcome == pb.OUTCOME_BUILT
    # The sandbox still accepts the old access token, so only the margin can have caused the exchange.
    assert sandbox.stats()["users"][str(user_id)]["token"] == 1
    new_token = sync_server.query("SELECT token FROM bytemark_tokens WHERE user_id = ?", (user_id,))[0][0]
    assert new_token != old_token  # the rotated tokens were stored back
