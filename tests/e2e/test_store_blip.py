"""A two-second MariaDB cut in the middle of a 200-rider refresh fails nobody: the bulk run pauses
new riders and retries those the cut caught, then carries on once the store answers again.

MariaDB (tokens, sync states) is reached through a TCP proxy the test cuts and restores; the
server's MySQL connect and query timeouts are short, so the cut is felt at once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncmy
import grpc
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_sandbox, start_server
from tests.e2e.reliability import TcpProxy

pytestmark = [pytest.mark.mysql, pytest.mark.timeout(300)]

RIDERS = 200
CONCURRENCY = 8
CUT_AFTER_RIDERS = 60
CUT_SECONDS = 2.0
MYSQL_ROOT = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@pytest.fixture(scope="module")
def sandbox(work_dir: Path) -> Iterator[SandboxProcess]:
    process = start_sandbox(work_dir, "--latency-ms", "30")  # a run long enough to cut in its middle
    yield process
    process.stop()


@pytest_asyncio.fixture
async def database() -> AsyncIterator[str]:
    name = f"store_blip_{uuid.uuid4().hex[:10]}"
    conn = await asyncmy.connect(**MYSQL_ROOT, autocommit=True)
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE {name}")
        yield name
        async with conn.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE {name}")
    finally:
        conn.close()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    relay = TcpProxy("127.0.0.1", 3306)
    yield relay
    relay.close()


@pytest_asyncio.fixture
async def server(
    sandbox: SandboxProcess, work_dir: Path, database: str, proxy: TcpProxy
) -> AsyncIterator[ServerProcess]:
    url = f"mysql://root@127.0.0.1:{proxy.port}/{database}?connect_timeout=1&query_timeout=1.5"
    process = start_server(sandbox, work_dir, MYSQL_URL=url, STORE_OUTAGE_GRACE_SECONDS="30")
    yield process
    process.stop()


async def seed_riders(sandbox: SandboxProcess, database: str) -> list[int]:
    riders = [sandbox.create_user(passes=2, expired=0) for _ in range(RIDERS)]
    conn = await asyncmy.connect(**MYSQL_ROOT, database=database, autocommit=True)
    try:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at)"
                " VALUES (%s, %s, %s, 1, NOW())",
                [(r["user_id"], r["access_token"], r["refresh_token"]) for r in riders],
            )
    finally:
        conn.close()
    return sorted(int(r["user_id"]) for r in riders)


async def test_a_two_second_mariadb_cut_mid_refresh_fails_no_rider(
    server: ServerProcess, sandbox: SandboxProcess, database: str, proxy: TcpProxy
) -> None:
    riders = await seed_riders(sandbox, database)
    request = pb.RefreshStaleCachesRequest(user_ids=riders, concurrency=CONCURRENCY)
    events: list[pb.RefreshStaleCachesResponse] = []
    restore = threading.Timer(CUT_SECONDS, proxy.restore)
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stream = pb_grpc.TicketCacheServiceStub(channel).RefreshStaleCaches(request, timeout=240)
            async for event in stream:
                events.append(event)
                if len(events) == CUT_AFTER_RIDERS:
                    proxy.cut()
                    restore.start()
    finally:
        restore.cancel()
        proxy.restore()

    failed = [(e.user_id, e.error.message) for e in events if e.HasField("error")]
    print(f"\nriders failed during the {CUT_SECONDS:g} s cut: {len(failed)} of {RIDERS}")
    logs = server.logs()
    assert "bulk run paused" in logs and "bulk run resumed" in logs  # the cut did hit the run
    assert failed == []
    assert events[-1].failed == 0 and events[-1].done == RIDERS and not events[-1].stopped
    assert sorted(e.user_id for e in events if e.HasField("result")) == riders
