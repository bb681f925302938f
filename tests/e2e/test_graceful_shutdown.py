"""SIGTERM as Kubernetes sends it, to a real server process: health turns NOT_SERVING at once,
new calls are refused, unary calls in flight finish, bulk streams end with UNAVAILABLE, and
the process exits before the chart's terminationGracePeriodSeconds (preStop sleep excluded)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_sandbox, start_server

VALUES = Path(__file__).resolve().parents[2] / "deploy/helm/bytemark-ticket-cache/values.yaml"
CHART_GRPC = yaml.safe_load(VALUES.read_text())["grpc"]
SERVICE = "bytemark.ticketcache.v1.TicketCacheService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(scope="module")
def sandbox(work_dir: Path) -> Iterator[SandboxProcess]:
    process = start_sandbox(work_dir, "--latency-ms", "150")
    yield process
    process.stop()


async def read_until_error(stream: grpc.aio.UnaryStreamCall) -> tuple[int, grpc.aio.AioRpcError | None]:
    """Read a stream as a caller does, to its end: (messages read, the error that ended it)."""
    read = 0
    try:
        while await stream.read() is not grpc.aio.EOF:
            read += 1
    except grpc.aio.AioRpcError as error:
        return read, error
    return read, None


async def exit_seconds(server: ServerProcess, since: float, limit: float) -> float:
    await asyncio.to_thread(server.proc.wait, limit)
    return time.monotonic() - since


async def test_sigterm_drains_within_the_grace_the_chart_gives(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    grace = CHART_GRPC["shutdownGraceSeconds"]
    server = start_server(sandbox, work_dir, GRPC_SHUTDOWN_GRACE_SECONDS=str(grace), BULK_CONCURRENCY="2")
    try:
        slow = server.seed_user(sandbox)
        bulk = [server.seed_user(sandbox, passes=1, expired=0) for _ in range(30)]
        # The slow rider's first passes call hangs until BYTEMARK_TIMEOUT_SECONDS (2 s), then succeeds.
        sandbox.add_faults({"endpoint": "v1", "kind": "timeout", "user_id": slow, "times": 1})
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
            assert (await watch.read()).status == SERVING
            stream = stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=bulk, concurrency=2))
            reader = asyncio.ensure_future(read_until_error(stream))
            request = pb.CheckTicketCacheRequest(user_id=slow)
            in_flight = asyncio.ensure_future(stub.CheckTicketCache(request))
            await asyncio.sleep(0.5)

            sigterm = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            after = await asyncio.wait_for(watch.read(), 2)
            watch.cancel()
            async with grpc.aio.insecure_channel(server.address) as fresh:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await health_pb2_grpc.HealthStub(fresh).Check(health_pb2.HealthCheckRequest(), timeout=3)
            read, ended = await reader
            finished = await in_flight
        took = await exit_seconds(server, sigterm, grace + 10)
    finally:
        server.stop()

    assert after.status == NOT_SERVING
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert 0 < read < len(bulk) and ended is not None
    assert ended.code() == grpc.StatusCode.UNAVAILABLE
    assert f"server shutting down: RefreshStaleCaches stopped after {read} riders" in (ended.details() or "")
    assert finished.result.outcome == pb.OUTCOME_BUILT
    assert server.proc.returncode == 0
    assert took < grace + CHART_GRPC["terminationMarginSeconds"]
    assert "shutting down" in server.logs() and "gRPC server stopped" in server.logs()


async def test_a_call_outlasting_the_grace_is_cut_and_the_process_still_exits(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    server = start_server(sandbox, work_dir, GRPC_SHUTDOWN_GRACE_SECONDS="1", BYTEMARK_TIMEOUT_SECONDS="30")
    try:
        stuck = server.seed_user(sandbox)
        sandbox.add_faults({"endpoint": "v1", "kind": "timeout", "user_id": stuck, "times": -1})
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            in_flight = asyncio.ensure_future(
                stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=stuck))
            )
            await asyncio.sleep(0.5)
            sigterm = time.monotonic()
            os.kill(server.pid, signal.SIGTERM)
            with pytest.raises(grpc.aio.AioRpcError) as cut:
                await in_flight
        took = await exit_seconds(server, sigterm, 15)
    finally:
        sandbox.clear_faults()
        server.stop()

    assert cut.value.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
    assert server.proc.returncode == 0
    assert took < 5
