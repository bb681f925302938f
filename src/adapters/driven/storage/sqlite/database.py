"""One aiosqlite connection per process for the embedded store (tokens, logs, caches in one file),
plus a read-only connection used on the loop's own thread for point reads (WAL mode only)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite

from adapters.driven.storage.group_commit import GroupCommit, IfCallerCancelled
from adapters.driven.storage.spans import store_operation_span, store_span
from adapters.driven.storage.sqlite.worker_thread import run_on_worker_thread
from application.errors import StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Works per group-committed transaction (bounds how long one holds the file's write lock).
_MAX_BATCH = 128
_READER_GENERATIONS = itertools.count(1)  # process-wide: no two readers share one
_SYSTEM = "sqlite"  # db.system.name of the store spans


class SqliteDatabase:
    """Owns the connection. Autocommit mode: a lone statement is its own transaction; a task that
    needs several in one transaction holds `transaction()`, and every other statement on the shared
    connection waits for it, so concurrent tasks never interleave inside a transaction."""

    def __init__(self, path: str, busy_timeout_ms: int = 5000) -> None:
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._conn: aiosqlite.Connection | None = None
        # (the aiosqlite connection it was opened beside, the read-only connection or None for
        # "not usable here": in-memory or URI databases, or a journal mode other than WAL)
        self._reader: tuple[object, sqlite3.Connection | None] | None = None
        self._reader_generation = 0
        self._lock = asyncio.Lock()
        # A batch waits its turn behind any transaction() holder and lone statement; nothing of a
        # cancelled caller's work is in the file before its batch is taken, so it is left out.
        self._batches: GroupCommit[Callable[[sqlite3.Connection], Any], Any] = GroupCommit(
            self._commit_batch, _MAX_BATCH, IfCallerCancelled.DROP_UNSENT, turn=self._lock
        )

    async def connect(self) -> None:
        try:
            conn = await aiosqlite.connect(self.path, isolation_level=None)
        except sqlite3.Error as exc:  # aiosqlite stops its own thread when the open fails
            raise StoreUnavailable("SQLite", f"cannot open {self.path}: {exc}") from exc
        try:
            await self._configure(conn)
        except BaseException as exc:
            # Its worker thread is not a daemon: left running, it would keep the process from
            # ever exiting (a GRPC_WORKERS worker that failed to start then hung, unreported).
            await asyncio.shield(conn.close())
            if isinstance(exc, sqlite3.Error):
                raise StoreUnavailable("SQLite", f"cannot open {self.path}: {exc}") from exc
            raise
        self._conn = conn

    async def _configure(self, conn: aiosqlite.Connection) -> None:
        """busy_timeout, WAL and synchronous=NORMAL. A process opening the file while another one
        is switching it to WAL or recovering its WAL can be told "database is locked" at once,
        without SQLite's busy handler: retry that within the busy timeout, as the handler would."""
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
                if self.path != ":memory:":
                    await self._use_wal(conn)
                await conn.execute("PRAGMA synchronous = NORMAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.02)

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
        if self._reader is not None and self._reader[1] is not None:
            self._reader[1].close()
        self._reader = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise StoreUnavailable("SQLite", "database is not connected")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTransaction]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises or is cancelled."""
        async with self._lock:
            tx = SqliteTransaction(self)
            try:
                with store_operation_span(_SYSTEM, "TRANSACTION"):
                    await tx.execute("BEGIN IMMEDIATE")
                    yield tx
                    await tx.execute("COMMIT")
            except BaseException:
                # A cancelled await leaves its statement queued on the worker thread (even the
                # BEGIN): the rollback is queued behind it, and survives a second cancel.
                await asyncio.shield(self._rollback_if_open())
                raise

    async def _rollback_if_open(self) -> None:
        def rollback(conn: sqlite3.Connection) -> None:
            if conn.in_transaction:
                conn.execute("ROLLBACK")

        try:
            await run_on_worker_thread(self.conn, rollback)
        except (sqlite3.Error, ValueError):  # ValueError: the connection is closed
            log.warning("SQLite rollback failed", exc_info=True)

    async def atomically(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` all or nothing on the worker thread; rolled back (alone) when it raises.

        Group commit: works submitted while another batch is on the worker thread wait for it and
        then go together, in one hop and one BEGIN IMMEDIATE ... COMMIT, each in its own savepoint,
        so one work's failure undoes only its own statements. A lone work is a batch of one (no
        added latency); under a bulk run's load one hop and one commit serve many riders."""
        with store_operation_span(_SYSTEM, "BATCH"):  # a group commit: waits for the batch it joined
            return await self._batches.submit(work)  # type: ignore[no-any-return]

    async def _commit_batch(self, works: Sequence[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
        """One hop to the worker thread (every statement on this connection runs there, one at a
        time, so nothing else can interleave with the batch); SQLite errors as StoreUnavailable."""
        try:
            outcomes = await run_on_worker_thread(self.conn, _run_batch, works)
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc
        return [
            StoreUnavailable("SQLite", f"{type(outcome).__name__}: {outcome}")
            if isinstance(outcome, sqlite3.Error)
            else outcome
            for outcome in outcomes
        ]

    async def execute(self, sql: str, params: Iterable[Any] = (), *, idempotent: bool = False) -> int:
        """Run one write statement; returns the affected row count. (`idempotent` matters only to
        networked stores, which may retry; a local file never loses a statement in flight.)"""
        async with self._lock:
            return await self._execute(sql, params)

    async def _execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        conn = self.conn
        try:
            with store_span(_SYSTEM, sql):
                # One hop to aiosqlite's worker thread (its execute + cursor close would be two).
                return await run_on_worker_thread(conn, _rowcount, sql, tuple(params))
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        async with self._lock:
            return await self._fetchall(sql, params)

    async def _fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row | tuple[Any, ...]]:
        try:
            with store_span(_SYSTEM, sql):
                async with self.conn.execute(sql, tuple(params)) as cursor:
                    return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetch_rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        """Run one query and fetch every row in a single hop to the worker thread (hot read paths)."""
        async with self._lock:
            return await self._fetch_rows(sql, params)

    async def _fetch_rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            with store_span(_SYSTEM, sql):
                return list(await self.conn.execute_fetchall(sql, tuple(params)))
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    async def read_rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """A short read (a primary-key or index lookup) on the loop's thread through the read-only
        connection, or through aiosqlite where that is not usable. In WAL mode a reader never waits
        for the writer and sees every committed write, so the result is the same either way; a
        thread hop costs far more than the lookup (bench/RESULTS.md, "Design notes")."""
        reader = self._read_connection()
        if reader is None:
            return await self.fetch_rows(sql, params)
        try:
            with store_span(_SYSTEM, sql):
                return reader.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc

    def read_version(self) -> tuple[int, int] | None:
        """A value that stays equal exactly while nobody (this process or another) commits to the
        file: PRAGMA data_version of the read-only connection, which never writes itself, with
        that connection's generation (versions of two connections are not comparable). None where
        there is no read-only connection. Take it before a read: a commit in between then shows
        as a changed version next time, never the other way round."""
        reader = self._read_connection()
        if reader is None:
            return None
        try:
            (version,) = reader.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc
        return self._reader_generation, int(version)

    def _read_connection(self) -> sqlite3.Connection | None:
        """The read-only connection, opened on first use beside the current aiosqlite connection."""
        owner = self.conn  # raises StoreUnavailable when the database is not connected
        if self._reader is not None and self._reader[0] is owner:
            return self._reader[1]
        if self._reader is not None and self._reader[1] is not None:
            self._reader[1].close()  # opened beside an earlier connection of this database
        self._reader = (owner, _open_reader(self.path))
        self._reader_generation = next(_READER_GENERATIONS)
        return self._reader[1]

    async def executescript(self, script: str) -> None:
        async with self._lock:
            await self._executescript(script)

    async def _executescript(self, script: str) -> None:
        try:
            await self.conn.executescript(script)
        except sqlite3.Error as exc:
            raise StoreUnavailable("SQLite", f"{type(exc).__name__}: {exc}") from exc


class SqliteTransaction:
    """The statements of one open transaction (the database's lock is held for it)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def execute(self, sql: str, params: Iterable[Any] = (), *, idempotent: bool = False) -> int:
        return await self._db._execute(sql, params)

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        return await self._db._fetch_rows(sql, params)

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        rows = await self._db._fetch_rows(sql, params)
        return rows[0] if rows else None


def _run_batch(conn: sqlite3.Connection, works: Sequence[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
    """On the worker thread: one transaction, one savepoint per work; its result or its exception
    per work. A failure that ends the transaction itself (SQLite rolls it back on I/O errors, a
    full disk, ...) or the COMMIT fails the whole batch: nothing of it was stored."""
    outcomes: list[Any] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            conn.execute("SAVEPOINT work")
            try:
                outcomes.append(work(conn))
            except Exception as exc:
                if not conn.in_transaction:
                    raise  # the whole transaction is gone, with the works before this one
                conn.execute("ROLLBACK TO work")
                outcomes.append(exc)
            conn.execute("RELEASE work")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes


def _rowcount(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    """On the worker thread: run one statement, close its cursor, return the affected rows."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def _open_reader(path: str) -> sqlite3.Connection | None:
    if path == ":memory:" or path.startswith("file:") or not path:
        return None
    try:
        reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        (mode,) = reader.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":  # a reader could then wait for the writer: stay async
            reader.close()
            return None
        reader.execute("PRAGMA query_only = 1")
    except sqlite3.Error:
        reader.close()
        return None
    return reader


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # extended code; its low byte is the primary one
    if isinstance(code, int):
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc)


def _is_read_only(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # extended code; its low byte is the primary one
    if isinstance(code, int):
        return code & 0xFF == sqlite3.SQLITE_READONLY
    return "readonly" in str(exc)
