"""MysqlDatabase bounds every statement (query_timeout) and takes its timeouts from the URL.

The pool is a stand-in here: a connection whose reply never comes is what a black-holed network
(packets dropped, no reset) looks like. The E2E suite does the same through a real proxy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from adapters.driven.storage.mysql.database import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_QUERY_TIMEOUT,
    MysqlDatabase,
)
from adapters.driven.storage.mysql.url import parse_mysql_url
from application.errors import StoreUnavailable

SECRET = "pa55-w0rd"


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self._conn = conn

    async def execute(self, sql: str, args: Any = None) -> int:
        self._conn.statements.append(sql)
        behaviour = self._conn.behaviours.pop(0)
        if behaviour == "hang":
            await asyncio.Event().wait()
        if behaviour == "dead":
            raise ConnectionResetError("connection reset by peer")
        return 1

    async def fetchall(self) -> list[tuple[Any, ...]]:
        return [(1,)]

    async def close(self) -> None:
        return None


class FakeConnection:
    def __init__(self, behaviours: list[str]) -> None:
        self.behaviours = behaviours
        self.statements: list[str] = []
        self.closed = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def close(self) -> None:
        self.closed = True


class FakePool:
    def __init__(self, behaviours: list[str]) -> None:
        self.connections: list[FakeConnection] = []
        self.released: list[FakeConnection] = []
        self._behaviours = behaviours

    async def acquire(self) -> FakeConnection:
        conn = FakeConnection([self._behaviours.pop(0)])
        self.connections.append(conn)
        return conn

    def release(self, conn: FakeConnection) -> None:
        self.released.append(conn)


def database_with(pool: FakePool, url: str = f"mysql://app:{SECRET}@db:3306/tickets") -> MysqlDatabase:
    db = MysqlDatabase(url, query_timeout=0.05)
    db._pool = pool  # type: ignore[assignment]  # the pool under test is a stand-in
    return db


async def test_a_statement_that_never_gets_a_reply_fails_unavailable_after_the_query_timeout() -> None:
    pool = FakePool(["hang", "ok"])
    db = database_with(pool)

    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as raised:
        await db.fetchone("SELECT token FROM bytemark_tokens WHERE user_id = %s", (7,))
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert elapsed < 1.0
    assert message.startswith("MySQL unavailable: query failed (app@db:3306/tickets)")
    assert "query timed out after 0.05s" in message and SECRET not in message
    # The abandoned connection is closed (its late reply must never reach another caller), and the
    # read is not retried: a second full timeout would only double the wait.
    assert [c.closed for c in pool.connections] == [True]
    assert pool.released == pool.connections


async def test_a_write_that_never_gets_a_reply_fails_unavailable_too() -> None:
    pool = FakePool(["hang"])
    db = database_with(pool)

    with pytest.raises(StoreUnavailable, match="query timed out"):
        await db.execute("UPDATE bytemark_tokens SET token = %s WHERE id = %s", ("t", 1))

    assert pool.connections[0].closed


async def test_a_read_on_a_dead_pooled_connection_is_still_retried_once_on_a_fresh_one() -> None:
    pool = FakePool(["dead", "ok"])
    db = database_with(pool)

    assert await db.fetchone("SELECT 1") == (1,)
    assert [c.closed for c in pool.connections] == [True, False]


def test_timeouts_default_when_the_url_has_no_options() -> None:
    db = MysqlDatabase("mysql://app@db/tickets")

    assert (db._connect_timeout, db._query_timeout) == (DEFAULT_CONNECT_TIMEOUT, DEFAULT_QUERY_TIMEOUT)


def test_url_options_set_the_connect_and_query_timeouts_and_others_are_left_alone() -> None:
    url = f"mysql://app:{SECRET}@db/tickets?charset=utf8mb4&connect_timeout=2&query_timeout=7.5"

    target = parse_mysql_url(url)
    db = MysqlDatabase(url)

    assert (target.connect_timeout, target.query_timeout) == (2.0, 7.5)
    assert (db._connect_timeout, db._query_timeout) == (2.0, 7.5)
    assert target.database == "tickets" and target.password == SECRET


@pytest.mark.parametrize("value", ["0", "-1", "soon", "", "nan", "inf"])
@pytest.mark.parametrize("option", ["connect_timeout", "query_timeout"])
def test_a_bad_timeout_option_is_rejected_by_name_without_echoing_the_url(option: str, value: str) -> None:
    with pytest.raises(ValueError) as raised:
        MysqlDatabase(f"mysql://app:{SECRET}@db/tickets?{option}={value}")

    assert option in str(raised.value)
    assert SECRET not in str(raised.value)
