"""Shared fixtures for the token-store and refresh-log contract suites.

Each suite runs once per engine: the embedded SQLite file and the real MariaDB server. The MariaDB
run FAILS (never skips) when the server is unreachable: a silently skipped production adapter is
how regressions ship. Tests seed and inspect rows with plain SQL through `RawSql`, written with `?`
placeholders for both engines, the way an operator would.

The MariaDB tests drop and recreate their tables, so each test process (an xdist worker, or another
developer's run on the same server) gets a database of its own, created on first use and dropped at
the end; the E2E suites' rows in the shared `test` database are never touched. TEST_MYSQL_URL names
a database to use instead, as it is.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncmy
import pytest

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.mysql.database import MysqlDatabase
from adapters.driven.storage.mysql.refresh_log import MysqlRefreshLog
from adapters.driven.storage.mysql.token_store import MysqlTokenStore
from adapters.driven.storage.mysql.url import MysqlTarget, parse_mysql_url
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.refresh_log import SqliteRefreshLog
from adapters.driven.storage.sqlite.token_store import SqliteTokenStore
from tests.contract.cache_fixtures import BACKEND_KINDS, Backend, open_backend

OWN_DATABASE = "TEST_MYSQL_URL" not in os.environ
MYSQL_URL = os.environ.get("TEST_MYSQL_URL", f"mysql://root@127.0.0.1:3306/contract_{os.getpid()}")
TEST_KEY = bytes(range(32))
OTHER_KEY = bytes(range(100, 132))
TABLES = ("bytemark_tokens", "bytemark_ticket_refresh_log", "bytemark_outbox_delivered")

ENGINES = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)]


class RawSql(Protocol):
    """Plain SQL beside the adapter under test, with `?` placeholders on every engine."""

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


class SqliteRawSql:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        await self._db.execute(sql, params)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in await self._db.fetchall(sql, params)]


class MysqlRawSql:
    """Its own connection, outside the pool under test, with sql_mode relaxed so that legacy
    data such as zero dates can be seeded the way old MySQL servers accepted it."""

    def __init__(self, conn: asyncmy.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        async with self.conn.cursor() as cur:
            await cur.execute(_pyformat(sql), tuple(params) or None)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.conn.cursor() as cur:
            await cur.execute(_pyformat(sql), tuple(params) or None)
            return [tuple(row) for row in await cur.fetchall()]


def _pyformat(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


@dataclass
class StoreEngine:
    """One database, opened and emptied for one test, plus factories for the adapters on it."""

    name: str
    raw: RawSql
    sqlite_db: SqliteDatabase | None = None
    mysql_db: MysqlDatabase | None = None

    def token_store(self, cipher: TokenCipher) -> SqliteTokenStore | MysqlTokenStore:
        if self.sqlite_db is not None:
            return SqliteTokenStore(self.sqlite_db, cipher)
        assert self.mysql_db is not None
        return MysqlTokenStore(self.mysql_db, cipher)

    def refresh_log(self) -> SqliteRefreshLog | MysqlRefreshLog:
        if self.sqlite_db is not None:
            return SqliteRefreshLog(self.sqlite_db)
        assert self.mysql_db is not None
        return MysqlRefreshLog(self.mysql_db)


def mysql_target() -> MysqlTarget:
    return parse_mysql_url(MYSQL_URL)


async def open_raw_mysql(target: MysqlTarget) -> asyncmy.Connection:
    """A direct connection; a test FAILS with a clear message when MariaDB is not reachable."""
    return await _connect(
        target, database=target.database, autocommit=True, init_command="SET SESSION sql_mode = ''"
    )


async def _connect(target: MysqlTarget, **options: Any) -> asyncmy.Connection:
    try:
        return await asyncmy.connect(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password,
            connect_timeout=5,
            **options,
        )
    except Exception as exc:  # any failure here is the environment, say so plainly
        pytest.fail(f"MariaDB at {target.describe()} is not reachable (set TEST_MYSQL_URL): {exc}")


@pytest.fixture(scope="session")
def contract_mysql_database() -> Iterator[str]:
    """This process's database, created once; every MariaDB test needs it before it connects."""
    target = mysql_target()
    if OWN_DATABASE:
        _run_as_root(target, f"CREATE DATABASE IF NOT EXISTS {target.database}")
    yield target.database
    if OWN_DATABASE:
        _run_as_root(target, f"DROP DATABASE IF EXISTS {target.database}")


def _run_as_root(target: MysqlTarget, sql: str) -> None:
    async def run() -> None:
        conn = await _connect(target)  # no database: it may not exist yet
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql)
        finally:
            await conn.ensure_closed()

    with ThreadPoolExecutor(1) as thread:  # a loop of its own: callable beside a running test loop
        thread.submit(asyncio.run, run()).result()


@pytest.fixture(autouse=True)
def _mysql_database_first(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("mysql") is not None:
        request.getfixturevalue("contract_mysql_database")


@pytest.fixture(params=ENGINES)
async def store_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreEngine]:
    if request.param == "sqlite":
        sqlite_db = SqliteDatabase(str(tmp_path / "store.sqlite3"))
        await sqlite_db.connect()
        try:
            yield StoreEngine("sqlite", SqliteRawSql(sqlite_db), sqlite_db=sqlite_db)
        finally:
            await sqlite_db.close()
        return

    target = mysql_target()
    conn = await open_raw_mysql(target)
    raw = MysqlRawSql(conn)
    for table in TABLES:  # each test starts from no tables at all, so create_schema is exercised too
        await raw.execute(f"DROP TABLE IF EXISTS {table}")
    mysql_db = MysqlDatabase(MYSQL_URL, max_size=4)
    try:
        await mysql_db.connect()
        yield StoreEngine("mariadb", raw, mysql_db=mysql_db)
    finally:
        await mysql_db.close()
        await conn.ensure_closed()


@pytest.fixture
def token_cipher() -> TokenCipher:
    return TokenCipher(TEST_KEY)


@pytest.fixture
async def token_store(
    store_engine: StoreEngine, token_cipher: TokenCipher
) -> SqliteTokenStore | MysqlTokenStore:
    store = store_engine.token_store(token_cipher)
    await store.create_schema()
    return store


@pytest.fixture
async def refresh_log(store_engine: StoreEngine) -> SqliteRefreshLog | MysqlRefreshLog:
    log = store_engine.refresh_log()
    await log.create_schema()
    return log


@pytest.fixture(params=BACKEND_KINDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each cache-store / ticket-log backend, empty; FerretDB starts once per session when needed."""
    ferretdb_url = None
    if request.param.startswith("ferretdb"):
        ferretdb_url = request.getfixturevalue("ferretdb_server").url("admin")
    async with open_backend(request.param, tmp_path, ferretdb_url) as opened:
        yield opened
