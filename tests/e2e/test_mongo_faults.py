"""Faults of the real MongoDB-wire server under a real service process: FerretDB killed mid-refresh,
restarted, missing at start-up, down during a bulk run; and two processes racing on one rider."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB
from devtools.harness import CLI, SandboxProcess, free_port, server_env
from tests.e2e.mongo_topology import MONGO_OPTIONS, Topology
from tests.e2e.reliability import (
    assert_no_duplicate_uuids,
    assert_store_failure_says_what_not_where,
    change_passes,
    sandbox_passes,
)
from tests.e2e.test_security import SlackStandIn

pytestmark = pytest.mark.mysql

CLIENTS = ["motor", "pymongo"]
# For tests whose client-specific part (a write conflict between two writers; an unreachable
# server's error) the contract suites assert on both clients: the default client only.
DEFAULT_CLIENT_ONLY = pytest.mark.parametrize("topology", ["motor"], indirect=True)


@pytest.fixture(params=CLIENTS)
def topology(
    request: pytest.FixtureRequest, ferretdb_process: FerretDB, sandbox: SandboxProcess, work_dir: Path
) -> Iterator[Topology]:
    """Its own FerretDB process (the test may kill it) and its own databases."""
    topo = Topology(ferretdb_process, sandbox, work_dir, client=request.param)
    try:
        yield topo
    finally:
        if not ferretdb_process.running:
            ferretdb_process.start()  # so the databases can be dropped
        topo.close()


def set_latency(sandbox: SandboxProcess, milliseconds: float) -> None:
    sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": milliseconds})


async def update(address: str, user_id: int) -> pb.RefreshResult | grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        try:
            return (
                await stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user_id), timeout=30)
            ).result
        except grpc.aio.AioRpcError as error:
            return error


async def build(address: str, user_id: int) -> pb.RefreshResult:
    result = await update_or_build(address, user_id, build=True)
    assert isinstance(result, pb.RefreshResult) and result.outcome == pb.OUTCOME_BUILT, result
    return result


async def update_or_build(address: str, user_id: int, build: bool = False) -> Any:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        if build:
            return (
                await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id), timeout=30)
            ).result
        return (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)).result


async def test_ferretdb_killed_mid_refresh_gives_unavailable_with_a_request_id_and_no_partial_document(
    topology: Topology, sandbox: SandboxProcess
) -> None:
    server = topology.start_server()
    user_id = topology.seed_user(passes=3, expired=1)
    await build(server.address, user_id)
    before, logs_before = topology.cache_document(user_id), topology.log_documents(user_id)
    change_passes(sandbox, user_id)

    set_latency(sandbox, 1500)  # the refresh is fetching when FerretDB dies
    try:
        in_flight = asyncio.create_task(update(server.address, user_id))
        await asyncio.sleep(0.7)
        topology.ferretdb.kill()
        answer = await in_flight
    finally:
        set_latency(sandbox, 0)

    assert isinstance(answer, grpc.aio.AioRpcError), answer
    assert answer.code() == grpc.StatusCode.UNAVAILABLE
    assert_store_failure_says_what_not_where(answer.details() or "", server.logs(), "MongoDB unavailable")
    topology.ferretdb.start()
    assert topology.cache_document(user_id) == before  # not one field of the update was written
    assert topology.log_documents(user_id) == logs_before


async def test_after_ferretdb_restarts_the_next_call_works_without_restarting_the_service(
    topology: Topology, sandbox: SandboxProcess
) -> None:
    server = topology.start_server()
    user_id = topology.seed_user(passes=3, expired=1)
    await build(server.address, user_id)
    topology.ferretdb.kill()
    down = await update(server.address, user_id)
    assert isinstance(down, grpc.aio.AioRpcError) and down.code() == grpc.StatusCode.UNAVAILABLE

    topology.ferretdb.start()
    change_passes(sandbox, user_id)
    answer = await update(server.address, user_id)

    assert isinstance(answer, pb.RefreshResult) and answer.outcome == pb.OUTCOME_UPDATED, answer
    assert server.proc.poll() is None  # the same process
    document = topology.cache_document(user_id)
    assert document is not None and document["version"] == 2


def test_ferretdb_unreachable_at_start_up_is_a_one_line_error_and_exit_1(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    options = "&".join(f"{key}={value}" for key, value in MONGO_OPTIONS.items())
    env = server_env(
        sandbox,
        work_dir / "unreachable.sqlite3",
        f"127.0.0.1:{free_port()}",
        MONGODB_URL=f"mongodb://{closed}/ticketcache?{options}",
        LOG_FORMAT="text",
        LOG_LEVEL="WARNING",
    )

    done = subprocess.run([CLI, "serve"], env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: MongoDB unavailable") and closed in lines[0]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.timeout(300)  # two server processes start; slow on a loaded machine
@DEFAULT_CLIENT_ONLY  # pymongo: test_concurrent_saves_with_the_same_expected_version_have_exactly_one_winner
@pytest.mark.needs_atomic_conditional_update  # two processes' compare-and-sets on one document
async def test_two_server_processes_updating_one_rider_keep_one_consistent_document(
    topology: Topology, sandbox: SandboxProcess
) -> None:
    first, second = topology.start_server(), topology.start_server()
    user_id = topology.seed_user(passes=60, expired=20)
    await build(first.address, user_id)

    for _ in range(2):
        change_passes(sandbox, user_id)  # one changed and two new entries
        version_before = topology.cache_document(user_id)["version"]  # type: ignore[index]
        logs_before = len(topology.log_documents(user_id))
        set_latency(sandbox, 300)  # both are fetching before either writes
        try:
            answers = await asyncio.gather(update(first.address, user_id), update(second.address, user_id))
        finally:
            set_latency(sandbox, 0)

        codes = [a.code() if isinstance(a, grpc.aio.AioRpcError) else grpc.StatusCode.OK for a in answers]
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.ABORTED}, answers
        documents = list(topology.collection("bytemarkticketscaches").find({"user_id": user_id}))
        assert len(documents) == 1
        document = documents[0]
        assert document["version"] > version_before
        assert_no_duplicate_uuids(document["passes"], document["passes4"])
        upstream = {p["uuid"]: p for p in sandbox_passes(sandbox, user_id) if p["status"] != "EXPIRED"}
        assert {e["pass_uuid"]: e["payload"] for e in document["passes"]} == upstream
        assert len(topology.log_documents(user_id)) - logs_before == 3  # each change logged once
    # The outbox relay takes the rider's lock for milliseconds after each write; a lock left
    # behind would stay until it turns stale (10 s), so it must be gone well before that.
    await wait_until_no_write_lock(topology, within=5.0)


async def wait_until_no_write_lock(topology: Topology, within: float) -> None:
    locks = topology.collection("bytemarkticketscaches_locks")
    deadline = asyncio.get_running_loop().time() + within
    while locks.count_documents({}):
        assert asyncio.get_running_loop().time() < deadline, list(locks.find({}))
        await asyncio.sleep(0.05)


@DEFAULT_CLIENT_ONLY  # pymongo: the killed-mid-refresh test above and the contract's unreachable-MongoDB test
async def test_ferretdb_down_during_a_bulk_run_fails_those_riders_and_the_summary_reports_it(
    topology: Topology, sandbox: SandboxProcess
) -> None:
    slack = SlackStandIn()
    try:
        server = topology.start_server(
            SLACK_BOT_TOKEN="xoxb-e2e-bulk", SLACK_CHANNEL_ID="C0E2E", SLACK_API_URL=slack.url
        )
        riders = sorted(topology.seed_user(passes=2, expired=1) for _ in range(4))
        events: list[pb.RefreshStaleCachesResponse] = []
        set_latency(sandbox, 400)
        try:
            async with grpc.aio.insecure_channel(server.address) as channel:
                stub = pb_grpc.TicketCacheServiceStub(channel)
                request = pb.RefreshStaleCachesRequest(max_age_seconds=3600, concurrency=1, user_ids=riders)
                async for event in stub.RefreshStaleCaches(request, timeout=60):
                    events.append(event)
                    if len(events) == 1:
                        topology.ferretdb.kill()
        finally:
            set_latency(sandbox, 0)
        # the run's notice cannot go through the outbox (its store is down): it is posted at once
        deadline = asyncio.get_running_loop().time() + 10
        while not any("Bulk run" in m.get("text", "") for m in slack.messages):
            assert asyncio.get_running_loop().time() < deadline, slack.messages
            await asyncio.sleep(0.05)
        messages = [m.get("text", "") for m in slack.messages]
    finally:
        slack.stop()

    assert events[0].WhichOneof("event") == "result" and events[0].result.outcome == pb.OUTCOME_BUILT
    failures = [e for e in events if e.WhichOneof("event") == "error"]
    assert failures and all(e.error.code == "UNAVAILABLE" for e in failures)
    for failure in failures:
        assert_store_failure_says_what_not_where(failure.error.message, server.logs(), "MongoDB unavailable")
    assert events[-1].failed == len(failures)
    summaries = [m for m in messages if "Bulk run" in m]
    assert len(summaries) == 1, messages
    assert f"{len(failures)} failed" in summaries[0] and "StoreUnavailable" in summaries[0]
