"""Concurrent refreshes of one rider through real server processes: the in-process single flight,
and two replicas sharing one SQLite file racing on the compare-and-set of the cache version."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server
from tests.e2e.reliability import (
    assert_cache_matches_sandbox,
    assert_no_duplicate_uuids,
    change_passes,
    stored_lists,
    ticket_log_count,
)

CONCURRENT_CALLS = 50
RACE_ROUNDS = 5
# Enough passes that diffing and serialising takes a while, which widens the read-to-write window.
RACE_PASSES, RACE_EXPIRED = 400, 100
LOGGED_CHANGES_PER_ROUND = 3  # change_passes: one changed and two new entries
RACE_LOST = "cache write race lost"


def set_latency(sandbox: SandboxProcess, milliseconds: float) -> None:
    sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": milliseconds})


def user_calls(sandbox: SandboxProcess, user_id: int) -> dict[str, int]:
    return dict(sandbox.stats()["users"].get(str(user_id), {}))


async def test_fifty_concurrent_checks_of_a_user_without_a_cache_fetch_each_list_once_and_store_one_cache(
    server: ServerProcess, sandbox: SandboxProcess, stub: pb_grpc.TicketCacheServiceAsyncStub
) -> None:
    user_id = server.seed_user(sandbox, passes=6, expired=3)
    set_latency(sandbox, 1000)  # the first fetch is still running when the last call arrives
    try:
        answers = await asyncio.gather(
            *(
                stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)
                for _ in range(CONCURRENT_CALLS)
            ),
            return_exceptions=True,
        )
    finally:
        set_latency(sandbox, 0)

    failures = [a for a in answers if isinstance(a, BaseException)]
    assert failures == []
    assert {a.result.outcome for a in answers if not isinstance(a, BaseException)} == {pb.OUTCOME_BUILT}
    assert user_calls(sandbox, user_id) == {"v1": 1, "v4": 1}
    assert server.query("SELECT COUNT(*) FROM bytemark_tickets_cache WHERE user_id = ?", (user_id,)) == [(1,)]
    passes, passes4 = stored_lists(server, user_id)
    assert (len(passes), len(passes4)) == (6, 3)
    assert_no_duplicate_uuids(passes, passes4)


async def test_a_build_sent_while_an_update_of_the_rider_is_in_flight_answers_built_after_its_own_fetch(
    server: ServerProcess, sandbox: SandboxProcess, stub: pb_grpc.TicketCacheServiceAsyncStub
) -> None:
    user_id = server.seed_user(sandbox, passes=4, expired=1)
    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id), timeout=30)
    set_latency(sandbox, 1000)  # the update is still fetching when the build arrives
    try:
        update = asyncio.ensure_future(
            stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user_id), timeout=30)
        )
        await asyncio.sleep(0.3)
        built = await stub.BuildTicketCache(
            pb.BuildTicketCacheRequest(user_id=user_id, include_cache=True), timeout=30
        )
        updated = await update
    finally:
        set_latency(sandbox, 0)

    assert updated.result.outcome == pb.OUTCOME_UNCHANGED
    assert built.result.outcome == pb.OUTCOME_BUILT
    assert (len(built.result.cache.passes), len(built.result.cache.passes4)) == (4, 1)
    assert user_calls(sandbox, user_id) == {"v1": 3, "v4": 3}  # the first build, the update, this build


@pytest.fixture(scope="module")
def replica(sandbox: SandboxProcess, server: ServerProcess, work_dir: Path) -> Iterator[ServerProcess]:
    """A second server process on the first one's SQLite file."""
    process = start_server(sandbox, work_dir, SQLITE_PATH=str(server.sqlite_path))
    yield process
    process.stop()


async def check_on(address: str, user_id: int) -> pb.RefreshResult | grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        try:
            response = await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)
        except grpc.aio.AioRpcError as error:
            return error
        return response.result


def entries_by_uuid(entries: list[dict[str, Any]]) -> dict[str, str]:
    return {e["pass_uuid"]: json.dumps(e, sort_keys=True) for e in entries}


async def test_two_replicas_updating_one_user_at_once_store_one_consistent_cache_and_log_each_change_once(
    server: ServerProcess, replica: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=RACE_PASSES, expired=RACE_EXPIRED)
    first = await check_on(server.address, user_id)
    assert isinstance(first, pb.RefreshResult) and first.outcome == pb.OUTCOME_BUILT
    rounds: list[dict[str, Any]] = []

    for _ in range(RACE_ROUNDS):
        change_passes(sandbox, user_id)
        version_before = server.query(
            "SELECT version FROM bytemark_tickets_cache WHERE user_id = ?", (user_id,)
        )
        before = [entries_by_uuid(lst) for lst in stored_lists(server, user_id)]
        logs_before = ticket_log_count(server, user_id)
        lost_before = server.logs().count(RACE_LOST) + replica.logs().count(RACE_LOST)
        calls_before = user_calls(sandbox, user_id)
        set_latency(sandbox, 300)  # both replicas are fetching before either one writes
        try:
            answers = await asyncio.gather(
                check_on(server.address, user_id), check_on(replica.address, user_id)
            )
        finally:
            set_latency(sandbox, 0)

        codes = [a.code() if isinstance(a, grpc.aio.AioRpcError) else grpc.StatusCode.OK for a in answers]
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}, [str(a) for a in answers]
        assert user_calls(sandbox, user_id)["v1"] - calls_before["v1"] == 2  # each replica fetched
        version_after = server.query(
            "SELECT version FROM bytemark_tickets_cache WHERE user_id = ?", (user_id,)
        )
        assert version_after[0][0] > version_before[0][0]
        assert_cache_matches_sandbox(server, sandbox, user_id)
        # What one update alone would store: untouched entries keep their old document (timestamp
        # and free-ticket flag included); exactly the three changes are new, and logged once.
        after = [entries_by_uuid(lst) for lst in stored_lists(server, user_id)]
        kept = sum(after[i].get(u) == doc for i in (0, 1) for u, doc in before[i].items())
        assert kept == len(before[0]) + len(before[1]) - 1  # the one pass whose status changed
        assert sum(len(a) for a in after) - sum(len(b) for b in before) == 2
        assert ticket_log_count(server, user_id) - logs_before == LOGGED_CHANGES_PER_ROUND
        outcomes = sorted(a.outcome for a in answers if isinstance(a, pb.RefreshResult))
        rounds.append(
            {
                "conflict_retries": server.logs().count(RACE_LOST)
                + replica.logs().count(RACE_LOST)
                - lost_before,
                "aborted": codes.count(grpc.StatusCode.ABORTED),
                "outcomes": [pb.Outcome.Name(o) for o in outcomes],
                "versions": version_after[0][0] - version_before[0][0],
            }
        )

    fresh = await check_on(server.address, user_id)  # a further update finds nothing to change
    assert isinstance(fresh, pb.RefreshResult) and fresh.outcome == pb.OUTCOME_UNCHANGED
    print(f"\nreplica race rounds: {rounds}")
    # The winner reports the update; a loser re-diffs against the winner's cache and finds it done.
    assert all("OUTCOME_UPDATED" in r["outcomes"] for r in rounds)
