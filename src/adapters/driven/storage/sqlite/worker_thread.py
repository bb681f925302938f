"""A whole function on aiosqlite's worker thread, in one hop, in turn with the connection's other
statements. aiosqlite's public API runs one statement per hop; this relies on its private
`Connection._execute` (queue a callable) and `Connection._conn` (the sqlite3 connection), here
alone: tests/adapters/test_sqlite_worker_thread.py fails when a new aiosqlite changes either."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import aiosqlite

T = TypeVar("T")


async def run_on_worker_thread(conn: aiosqlite.Connection, work: Callable[..., T], *args: Any) -> T:
    """`work(sqlite3_connection, *args)` on the worker thread, after every statement queued before
    it. Raises ValueError when the connection is closed."""
    sqlite_conn: sqlite3.Connection = conn._conn
    result: T = await conn._execute(work, sqlite_conn, *args)  # type: ignore[no-untyped-call]
    return result
