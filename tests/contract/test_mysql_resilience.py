"""MariaDB-only: the pool survives what production throws at it (unreachable server, cancelled
queries, connections killed by the server) and never leaks the password into an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.mysql.database import MysqlDatabase
from adapters.driven.storage.mysql.token_store import MysqlTokenStore
from application.errors import StoreUnavailable
from devtools.ports import free_port
from tests.contract.conftest import MYSQL_URL, TEST_KEY, MysqlRawSql, mysql_target, open_raw_mysql

pytestmark = pytest.mark.mysql

SECRET = "s3cr3t-p@ss/word"


@pytest.fixture
async def raw() -> AsyncIterator[MysqlRawSql]:
    conn = await open_raw_mysql(mysql_target())
    try:
        yield MysqlRawSql(conn)
    finally:
        await conn.ensure_closed()


@pytest.fixture
async def single_connection_db() -> AsyncIterator[MysqlDatabase]:
    """One connection in the pool, so every call reuses it if it was (wrongly) kept."""
    db = MysqlDatabase(MYSQL_URL, min_size=1, max_size=1)
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


async def connection_id(db: MysqlDatabase) -> int:
    row = await db.fetchone("SELECT CONNECTION_ID()")
    assert row is not None
    return int(row[0])


async def test_closed_port_fails_fast_without_the_password() -> None:
    url = f"mysql://root:{quote(SECRET, safe='')}@127.0.0.1:{free_port()}/test"
    db = MysqlDatabase(url, connect_timeout=2.0)
    started = time.monotonic()

    with pytest.raises(StoreUnavailable) as on_connect:
        await db.connect()
    store = MysqlTokenStore(db, TokenCipher(TEST_KEY))
    with pytest.raises(StoreUnavailable) as on_use:  # lazily retried on use, and fails the same way
        await store.get_token(1)

    assert time.monotonic() - started < 6
    for caught in (on_connect, on_use):
        message = str(caught.value)
        assert caught.value.store == "MySQL"
        assert "127.0.0.1" in message
        assert SECRET not in message and quote(SECRET, safe="") not in message
    await db.close()


async def test_wrong_password_is_unavailable_without_the_password() -> None:
    target = mysql_target()
    url = f"mysql://{target.user}:{quote(SECRET, safe='')}@{target.host}:{target.port}/{target.database}"
    db = MysqlDatabase(url, connect_timeout=2.0)

    with pytest.raises(StoreUnavailable) as caught:
        await db.connect()

    assert SECRET not in str(caught.value)
    assert "Access denied" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["postgres://u@h/db", "mysql://u@h", "mysql://@h/db", "mysql://u:pw@h:99999/db"]
)
def test_bad_url_is_rejected_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError) as caught:
        MysqlDatabase(url)
    assert url not in str(caught.value) and "pw" not in str(caught.value)


async def test_password_is_url_decoded() -> None:
    db = MysqlDatabase(f"mysql://app:{quote(SECRET, safe='')}@db.internal:3307/tickets")

    assert db.target.password == SECRET
    assert (db.target.user, db.target.host, db.target.port, db.target.database) == (
        "app",
        "db.internal",
        3307,
        "tickets",
    )
    assert SECRET not in repr(db) and SECRET not in repr(db.target)


async def test_cancelled_query_does_not_poison_the_pool(single_connection_db: MysqlDatabase) -> None:
    """asyncmy#100: a query cancelled mid-flight must not leave its result for the next one."""
    sleeping = asyncio.create_task(single_connection_db.fetchone("SELECT SLEEP(5), 'stale'"))
    await asyncio.sleep(0.3)  # the query is on the server now
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping

    started = time.monotonic()
    first = await single_connection_db.fetchone("SELECT 42, 'fresh'")
    second = await single_connection_db.fetchone("SELECT 43")

    assert first == (42, "fresh")
    assert second == (43,)
    assert time.monotonic() - started < 3  # did not wait for the cancelled SLEEP


async def test_query_timeout_then_next_query_is_correct(single_connection_db: MysqlDatabase) -> None:
    """The same through asyncio.timeout, the way a gRPC deadline cancels a store call."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await single_connection_db.fetchall("SELECT SLEEP(5)")

    assert await single_connection_db.fetchall("SELECT 1 UNION ALL SELECT 2") == [(1,), (2,)]


async def test_killed_connection_recovers_on_the_next_call(
    single_connection_db: MysqlDatabase, raw: MysqlRawSql
) -> None:
    before = await connection_id(single_connection_db)

    await raw.execute(f"KILL CONNECTION {before}")
    after = await connection_id(single_connection_db)

    assert after != before


async def test_killed_connection_recovers_through_the_store(
    single_connection_db: MysqlDatabase, raw: MysqlRawSql
) -> None:
    await raw.execute("DROP TABLE IF EXISTS bytemark_tokens")
    store = MysqlTokenStore(single_connection_db, TokenCipher(TEST_KEY))
    await store.create_schema()
    await store.save_tokens(1, "access", None, None)

    for _ in range(3):  # repeatedly, so recovery does not depend on luck with timing
        await raw.execute(f"KILL CONNECTION {await connection_id(single_connection_db)}")
        token = await store.get_token(1)
        assert token is not None and token.access_token == "access"
        await store.save_tokens(1, "access", None, None)  # an idempotent write recovers too


async def test_read_killed_mid_query_is_retried_on_a_fresh_connection(
    single_connection_db: MysqlDatabase, raw: MysqlRawSql
) -> None:
    """What a server restart does to an in-flight read: the connection dies under the query.
    A read is safe to run again, so the caller sees the answer, not the error."""
    before = await connection_id(single_connection_db)
    reading = asyncio.create_task(single_connection_db.fetchone("SELECT SLEEP(1), CONNECTION_ID()"))
    await asyncio.sleep(0.3)

    await raw.execute(f"KILL CONNECTION {before}")
    row = await reading

    assert row is not None and row[1] != before


async def test_write_killed_mid_statement_is_not_repeated(
    single_connection_db: MysqlDatabase, raw: MysqlRawSql
) -> None:
    """A non-idempotent write that loses its connection fails (StoreUnavailable), since running it
    again could apply it twice; the pool still works afterwards."""
    before = await connection_id(single_connection_db)
    writing = asyncio.create_task(single_connection_db.execute("DO SLEEP(1)"))
    await asyncio.sleep(0.3)

    await raw.execute(f"KILL CONNECTION {before}")
    with pytest.raises(StoreUnavailable, match="query failed"):
        await writing

    assert await connection_id(single_connection_db) != before


async def test_server_side_idle_timeout_recovers(single_connection_db: MysqlDatabase) -> None:
    """The server drops a connection idle past wait_timeout; the next call must not fail."""
    before = await connection_id(single_connection_db)
    await single_connection_db.execute("SET SESSION wait_timeout = 1")
    await asyncio.sleep(2.5)

    assert await connection_id(single_connection_db) != before


class RestartableProxy:
    """TCP proxy in front of MariaDB that can go down (dropping every connection, refusing new
    ones) and come back on the same port: a server restart without touching the shared server."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await self._server.wait_closed()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.transport.abort()
            return
        self._transports.update({client_writer.transport, server_writer.transport})
        await asyncio.gather(
            self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer)
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.transport.abort()
            self._transports.discard(writer.transport)


async def test_server_restart_fails_fast_then_recovers() -> None:
    target = mysql_target()
    proxy = RestartableProxy(target.host, target.port)
    await proxy.start()
    db = MysqlDatabase(
        f"mysql://{target.user}@127.0.0.1:{proxy.port}/{target.database}", max_size=2, connect_timeout=2.0
    )
    try:
        await db.connect()
        assert await db.fetchone("SELECT 1") == (1,)

        await proxy.stop()  # the server goes away: pooled connections die, new ones are refused
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await db.fetchone("SELECT 2")
        assert time.monotonic() - started < 6

        await proxy.start()  # back on the same port
        assert await db.fetchone("SELECT 3") == (3,)
        assert await db.fetchone("SELECT 4") == (4,)
    finally:
        await db.close()
        await proxy.stop()
