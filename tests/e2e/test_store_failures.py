"""A store failing under a running server: MariaDB unreachable, the SQLite file locked or read-only.

Each failure must surface as UNAVAILABLE with a generic message and a request id (never a host,
user, path, driver class or password; the log line with that id holds the detail), in
seconds rather than a hang; the cache must be left as it was; and the server must recover by
itself once the store is back, without a restart.
"""

from __future__ import annotations

import asyncio
import sqlite3
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncmy
import grpc
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import (
    CLI,
    SandboxProcess,
    ServerProcess,
    free_port,
    held_to_file_modes,
    server_env,
    start_server,
)
from tests.e2e.reliability import (
    CACHE_ROW_SQL,
    LOG_COUNT_SQL,
    TcpProxy,
    assert_cache_matches_sandbox,
    assert_store_failure_says_what_not_where,
    change_passes,
    raw_cache_row,
    ticket_log_count,
)

MYSQL_HOST, MYSQL_PORT, MYSQL_DATABASE = "127.0.0.1", 3306, "test"
MYSQL_ROOT = {"host": MYSQL_HOST, "port": MYSQL_PORT, "user": "root", "database": MYSQL_DATABASE}
# A user of our own with a password, so "the message never shows the password" means something.
E2E_USER, E2E_PASSWORD = "bytemark_e2e", "s3cret-Pw-9f1c7d"
# Well clear of the ids other suites use in the shared MariaDB `test` database.
FIRST_MYSQL_USER_ID = 9_000_001
# The SQLite adapter's busy timeout (adapters.driven.storage.sqlite.database.SqliteDatabase).
SQLITE_BUSY_TIMEOUT_SECONDS = 5.0
PROMPTLY_SECONDS = 4.0
MYSQL_TIMEOUT_SECONDS = 1.5  # the server's MySQL connect and query timeouts, set in MYSQL_URL


async def check(stub: pb_grpc.TicketCacheServiceAsyncStub, user_id: int) -> pb.RefreshResult:
    response = await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)
    return response.result


async def check_fails(
    stub: pb_grpc.TicketCacheServiceAsyncStub, user_id: int
) -> tuple[grpc.aio.AioRpcError, float]:
    """The RPC error of a CheckTicketCache that must fail, and how long it took."""
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)
    return raised.value, time.monotonic() - started


# -- (a) MariaDB unreachable ------------------------------------------------------------------


async def mysql_root_execute(sql: str, params: tuple[object, ...] | None = None) -> None:
    conn = await asyncmy.connect(**MYSQL_ROOT, autocommit=True)
    try:
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
    finally:
        conn.close()


@dataclass
class MysqlServer:
    server: ServerProcess
    proxy: TcpProxy
    user_ids: list[int]


@pytest.fixture(scope="module")
def mysql_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[MysqlServer]:
    """A server whose token store is MariaDB reached through a proxy the test controls."""
    for host in ("127.0.0.1", "localhost"):
        asyncio.run(
            mysql_root_execute(
                f"CREATE USER IF NOT EXISTS '{E2E_USER}'@'{host}' IDENTIFIED BY '{E2E_PASSWORD}'"
            )
        )
        asyncio.run(
            mysql_root_execute(f"GRANT ALL PRIVILEGES ON {MYSQL_DATABASE}.* TO '{E2E_USER}'@'{host}'")
        )
    proxy = TcpProxy(MYSQL_HOST, MYSQL_PORT)
    url = (
        f"mysql://{E2E_USER}:{E2E_PASSWORD}@127.0.0.1:{proxy.port}/{MYSQL_DATABASE}"
        f"?connect_timeout={MYSQL_TIMEOUT_SECONDS}&query_timeout={MYSQL_TIMEOUT_SECONDS}"
    )
    state = MysqlServer(start_server(sandbox, work_dir, MYSQL_URL=url), proxy, [])  # migrates via the proxy
    try:
        yield state
    finally:
        state.server.stop()
        proxy.close()
        asyncio.run(forget_mysql_users(state.user_ids))


async def forget_mysql_users(user_ids: list[int]) -> None:
    """Remove this module's rows and MariaDB account from the shared `test` database."""
    if user_ids:
        marks = ", ".join(["%s"] * len(user_ids))
        for table in ("bytemark_tokens", "bytemark_ticket_refresh_log"):
            await mysql_root_execute(f"DELETE FROM {table} WHERE user_id IN ({marks})", tuple(user_ids))
    for host in ("127.0.0.1", "localhost"):
        await mysql_root_execute(f"DROP USER IF EXISTS '{E2E_USER}'@'{host}'")


async def seed_mysql_user(mysql: MysqlServer, sandbox: SandboxProcess) -> int:
    user_id = FIRST_MYSQL_USER_ID + len(mysql.user_ids)
    mysql.user_ids.append(user_id)
    await mysql_root_execute("DELETE FROM bytemark_tokens WHERE user_id = %s", (user_id,))  # an old run's
    creds = sandbox.create_user(passes=3, expired=1, user_id=user_id)
    await mysql_root_execute(
        "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at)"
        " VALUES (%s, %s, %s, 1, NOW())",
        (user_id, creds["access_token"], creds["refresh_token"]),
    )
    return user_id


@pytest_asyncio.fixture
async def mysql_stub(mysql_server: MysqlServer) -> AsyncIterator[pb_grpc.TicketCacheServiceAsyncStub]:
    async with grpc.aio.insecure_channel(mysql_server.server.address) as channel:
        yield pb_grpc.TicketCacheServiceStub(channel)


@pytest.mark.mysql
@pytest.mark.parametrize("outage", ["cut", "stall"])
async def test_an_unreachable_mariadb_fails_the_refresh_promptly_and_the_next_call_after_it_returns_succeeds(
    outage: str,
    mysql_server: MysqlServer,
    mysql_stub: pb_grpc.TicketCacheServiceAsyncStub,
    sandbox: SandboxProcess,
) -> None:
    server, proxy = mysql_server.server, mysql_server.proxy
    user_id = await seed_mysql_user(mysql_server, sandbox)
    assert (await check(mysql_stub, user_id)).outcome == pb.OUTCOME_BUILT
    change_passes(sandbox, user_id)
    row_before, logs_before = raw_cache_row(server, user_id), ticket_log_count(server, user_id)

    proxy.cut() if outage == "cut" else proxy.stall()
    try:
        error, elapsed = await check_fails(mysql_stub, user_id)
        row_after_failure = raw_cache_row(server, user_id)
        logs_after_failure = ticket_log_count(server, user_id)
    finally:
        proxy.restore()
    recovered = await check(mysql_stub, user_id)

    details = error.details() or ""
    assert error.code() == grpc.StatusCode.UNAVAILABLE, details
    assert_store_failure_says_what_not_where(details, server.logs(), "MySQL unavailable")
    assert E2E_USER not in details and MYSQL_HOST not in details
    assert E2E_PASSWORD not in details and E2E_PASSWORD not in server.logs()
    assert elapsed < PROMPTLY_SECONDS
    assert (row_after_failure, logs_after_failure) == (row_before, logs_before)
    assert recovered.outcome == pb.OUTCOME_UPDATED
    assert_cache_matches_sandbox(server, sandbox, user_id)


# -- (b) SQLite locked ------------------------------------------------------------------------


async def test_a_locked_sqlite_file_fails_the_refresh_unchanged_and_it_recovers_once_released(
    server: ServerProcess, sandbox: SandboxProcess, stub: pb_grpc.TicketCacheServiceAsyncStub
) -> None:
    user_id = server.seed_user(sandbox)
    assert (await check(stub, user_id)).outcome == pb.OUTCOME_BUILT
    change_passes(sandbox, user_id)
    row_before, logs_before = raw_cache_row(server, user_id), ticket_log_count(server, user_id)

    holder = sqlite3.connect(server.sqlite_path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN EXCLUSIVE")  # held past the server's busy timeout
        error, elapsed = await check_fails(stub, user_id)
        row_while_locked = holder.execute(CACHE_ROW_SQL, (user_id,)).fetchone()
        logs_while_locked = holder.execute(LOG_COUNT_SQL, (user_id,)).fetchone()[0]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    recovered = await check(stub, user_id)

    details = error.details() or ""
    assert error.code() == grpc.StatusCode.UNAVAILABLE, details
    assert_store_failure_says_what_not_where(details, server.logs(), "SQLite unavailable", "locked")
    assert elapsed < SQLITE_BUSY_TIMEOUT_SECONDS + PROMPTLY_SECONDS  # waits out the busy timeout, no more
    assert row_while_locked == row_before
    assert logs_while_locked == logs_before
    assert ticket_log_count(server, user_id) - logs_before == len(LOGGED_CHANGES)
    assert recovered.outcome == pb.OUTCOME_UPDATED
    assert_cache_matches_sandbox(server, sandbox, user_id)


# change_passes makes three log-worthy changes; they are logged once, by the refresh that stored them.
LOGGED_CHANGES = ("changed current pass", "new current pass", "new expired pass")


# -- (c) SQLite read-only ---------------------------------------------------------------------


def read_only_copy(source: Path, directory: Path) -> Path:
    """A consistent copy of the server's database, made read-only (file and directory), in the
    rollback-journal mode a read-only file needs (a WAL file cannot be read without its -shm)."""
    target = directory / "read-only.sqlite3"
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    with sqlite3.connect(target, isolation_level=None) as dst:
        dst.execute("PRAGMA journal_mode = DELETE")
    dst.close()
    target.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    directory.chmod(0o555)
    return target


def start_server_without_write_access(
    sandbox: SandboxProcess, sqlite_path: Path, log_dir: Path
) -> ServerProcess:
    """`serve` on an existing database, without `migrate`. The tests run as root here, and root
    writes through any file mode; so the server gives up that privilege first, and then a
    read-only file is as read-only to it as to any other process."""
    listen = f"127.0.0.1:{free_port()}"
    env = server_env(sandbox, sqlite_path, listen)
    log_path = log_dir / f"server-ro-{listen.rsplit(':', 1)[1]}.log"
    proc = subprocess.Popen(
        held_to_file_modes([CLI, "serve"]), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env
    )
    server = ServerProcess(listen, sqlite_path, proc, log_path, env)
    deadline = time.monotonic() + 30
    while "listening on" not in server.logs():
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"read-only server did not start:\n{server.logs()[-3000:]}")
        time.sleep(0.05)
    return server


async def test_a_read_only_sqlite_file_still_serves_reads_but_fails_refreshes_without_writing(
    server: ServerProcess,
    sandbox: SandboxProcess,
    stub: pb_grpc.TicketCacheServiceAsyncStub,
    work_dir: Path,
) -> None:
    user_id = server.seed_user(sandbox)
    assert (await check(stub, user_id)).outcome == pb.OUTCOME_BUILT
    stored = await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_RAW))
    change_passes(sandbox, user_id)
    read_only_dir = work_dir / f"read-only-{user_id}"
    read_only_dir.mkdir()
    path = read_only_copy(server.sqlite_path, read_only_dir)
    file_before = path.read_bytes()

    read_only = start_server_without_write_access(sandbox, path, work_dir)
    try:
        async with grpc.aio.insecure_channel(read_only.address) as channel:
            ro_stub = pb_grpc.TicketCacheServiceStub(channel)
            read = await ro_stub.GetTicketCache(
                pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_RAW), timeout=30
            )
            error, elapsed = await check_fails(ro_stub, user_id)
            read_again = await ro_stub.GetTicketCache(
                pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_RAW), timeout=30
            )
    finally:
        read_only.stop()
        read_only_dir.chmod(0o755)

    details = error.details() or ""
    assert read.cache == stored.cache == read_again.cache
    assert error.code() == grpc.StatusCode.UNAVAILABLE, details
    assert_store_failure_says_what_not_where(details, read_only.logs(), "SQLite unavailable", "readonly")
    assert str(path) not in details
    assert elapsed < PROMPTLY_SECONDS
    assert path.read_bytes() == file_before
    assert "SQLite file is read-only" in read_only.logs()  # the operator is told at start-up
    assert sorted(p.name for p in read_only_dir.iterdir()) == [path.name]  # no journal left behind
