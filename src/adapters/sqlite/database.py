"""One aiosqlite connection per process for the embedded store (tokens, logs, caches in one file)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from typing import Any

import aiosqlite

from application.errors import StoreUnavailable

log = logging.getLogger(__name__)


class SqliteDatabase:
    """Owns the connection. Autocommit mode: every write is one statement, so concurrent tasks
    sharing the connection never interleave inside a transaction."""

    def __init__(self, path: str, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None

    async def connect(self) -> None:
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
            await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            if self.path != ":memory:":
                await self._use_wal(conn)
            await conn.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"cannot open {self.path}: {exc}") from exc
        self._conn = conn

    async def _use_wal(self, conn: aiosqlite.Connection) -> None:
        """WAL, unless the file is read-only (switching is a write). Then keep its journal mode:
        reads are still served, and every write fails with StoreUnavailable ("readonly")."""
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:
            if not _is_read_only(exc):
                raise
            log.warning(
                "SQLite file is read-only: serving reads, writes will fail", extra={"path": self.path}
            )

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreUnavailable("SQLite", "database is not connected")
        return self._conn

    async def execute(self, sql: str, params: Iterable[Any] = (), *, idempotent: bool = False) -> int:
        """Run one write statement; returns the affected row count. (`idempotent` matters only to
        networked stores, which may retry; a local file never loses a statement in flight.)"""
        try:
            cursor = await self.conn.execute(sql, tuple(params))
            rowcount = cursor.rowcount
            await cursor.close()
            return rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        try:
            async with self.conn.execute(sql, tuple(params)) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        try:
            async with self.conn.execute(sql, tuple(params)) as cursor:
                return await cursor.fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def fetch_rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Run one query and fetch every row in a single hop to the worker thread (hot read paths)."""
        try:
            return list(await self.conn.execute_fetchall(sql, tuple(params)))
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def executescript(self, script: str) -> None:
        try:
            await self.conn.executescript(script)
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc


def _is_read_only(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # extended code; its low byte is the primary one
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_READONLY
    return "readonly" in str(exc)
