"""What the SQLite store relies on from aiosqlite's private API (`Connection._execute`,
`Connection._conn`), through the one wrapper that uses it: a new aiosqlite that changes it
fails here, not silently in the group commit or a rollback."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator

import aiosqlite
import pytest

from adapters.driven.storage.sqlite.worker_thread import run_on_worker_thread


@pytest.fixture
async def conn() -> AsyncIterator[aiosqlite.Connection]:
    connection = await aiosqlite.connect(":memory:", isolation_level=None)
    await connection.execute("CREATE TABLE t (v INTEGER)")
    try:
        yield connection
    finally:
        await connection.close()


async def test_the_work_gets_the_connections_own_sqlite3_connection_on_its_worker_thread(
    conn: aiosqlite.Connection,
) -> None:
    await conn.execute("BEGIN")

    def inspect(sqlite_conn: sqlite3.Connection, value: int) -> tuple[bool, int, int]:
        sqlite_conn.execute("INSERT INTO t VALUES (?)", (value,))  # check_same_thread holds
        return sqlite_conn.in_transaction, threading.get_ident(), value

    in_transaction, thread, value = await run_on_worker_thread(conn, inspect, 7)
    await conn.execute("COMMIT")

    assert in_transaction and value == 7
    assert thread != threading.get_ident()
    assert await conn.execute_fetchall("SELECT v FROM t") == [(7,)]


async def test_the_work_runs_after_the_statements_queued_before_it(conn: aiosqlite.Connection) -> None:
    inserts = [asyncio.ensure_future(conn.execute("INSERT INTO t VALUES (?)", (v,))) for v in range(5)]
    await asyncio.sleep(0)  # the inserts are queued on the worker thread

    count = await run_on_worker_thread(conn, lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0])
    await asyncio.gather(*inserts)

    assert count == 5


async def test_a_failure_inside_the_work_is_raised_to_the_caller(conn: aiosqlite.Connection) -> None:
    with pytest.raises(sqlite3.OperationalError):
        await run_on_worker_thread(conn, lambda c: c.execute("SELECT * FROM missing"))


async def test_a_closed_connection_raises_value_error() -> None:
    connection = await aiosqlite.connect(":memory:")
    await connection.close()

    with pytest.raises(ValueError):
        await run_on_worker_thread(connection, lambda c: None)
