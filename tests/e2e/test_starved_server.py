"""A bulk refresh on a server process that stops getting the CPU: no rider may fail for it.

The server is stopped (SIGSTOP) for longer than its per-attempt Bytemark timeout while dozens
of requests are in flight, as a starved pod or a long pause would; the sandbox answers them on
time meanwhile. One attempt per call, so a timeout that counted our own stopped time would fail
riders at once (it did: "UNAVAILABLE Bytemark GET /passes: timeout after 1 attempts")."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server

RIDERS = 64
CONCURRENCY = 16
TIMEOUT_SECONDS = 2.0  # generous: the sandbox shares this busy machine
STOPPED_SECONDS = 4.5  # well past the timeout


@pytest.fixture(scope="module")
def starved_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        BYTEMARK_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        BYTEMARK_MAX_ATTEMPTS="1",
        LOG_LEVEL="WARNING",
    )
    yield process
    os.kill(process.pid, signal.SIGCONT)  # never leave it stopped
    process.stop()


def stop_for(pid: int, seconds: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


async def test_riders_in_flight_while_the_server_was_stopped_do_not_fail(
    starved_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    for _ in range(RIDERS):
        starved_server.seed_user(sandbox, passes=3, expired=1)
    sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": 100})  # keeps requests in flight
    failures: list[str] = []
    done = stops = 0
    try:
        async with grpc.aio.insecure_channel(starved_server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            request = pb.BuildCacheIfEmptyRequest(concurrency=CONCURRENCY)
            async for event in stub.BuildCacheIfEmpty(request, timeout=120):
                done = event.done
                if event.HasField("error"):
                    failures.append(f"user {event.user_id}: {event.error.code} {event.error.message}")
                if done in (8, 32):  # twice, with the run well under way
                    await asyncio.to_thread(stop_for, starved_server.pid, STOPPED_SECONDS)
                    stops += 1
    finally:
        sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": 0})

    assert stops == 2
    assert failures == []
    assert done == RIDERS
