"""asyncmy connection pool with error translation and one retry after a dropped connection."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncmy
from asyncmy.connection import Connection
from asyncmy.cursors import Cursor
from asyncmy.errors import InterfaceError, InternalError, MySQLError

from adapters.driven.storage.mysql.url import MysqlTarget, parse_mysql_url
from adapters.driven.storage.spans import store_operation_span, store_span
from application.errors import StoreUnavailable

T = TypeVar("T")
Params = Sequence[Any] | None

STORE_NAME = "MySQL"
_SYSTEM = "mysql"  # db.system.name of the store spans

# Client/server error numbers that mean "this connection is gone", not "this statement is wrong".
_CONNECTION_ERRNOS = frozenset(
    {
        1053,  # ER_SERVER_SHUTDOWN
        1927,  # ER_CONNECTION_KILLED (MariaDB)
        2006,  # CR_SERVER_GONE_ERROR
        2013,  # CR_SERVER_LOST
        2055,  # CR_SERVER_LOST_EXTENDED
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8 closes idle sessions with it)
    }
)
_MAX_REASON = 300
_CLOSE_GRACE_SECONDS = 5.0
DEFAULT_CONNECT_TIMEOUT = 5.0
#: Bounds one statement. Without it a black-holed network (packets dropped, no reset) hangs every
#: call that reads a token until the caller's deadline, and a bulk run without one forever.
DEFAULT_QUERY_TIMEOUT = 10.0
# Server syntax errors quote the statement "near '...'": the quoted part could hold a value.
_NEAR_FRAGMENT = re.compile(r"near '.*?' at line", re.DOTALL)


class MysqlDatabase:
    """Owns the asyncmy pool (autocommit). Every helper raises StoreUnavailable on failure.

    The pool is created by `connect()` or lazily on first use, so a server that is down at start-up
    is retried on the next call rather than never. Idempotent calls are retried once on a fresh
    connection when the first one turns out dead (server restart, KILL, wait_timeout).

    Opening a connection is bounded by `connect_timeout`, each statement by `query_timeout`
    (seconds); the URL's `?connect_timeout=` / `?query_timeout=` options override both."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        pool_recycle: int = 280,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        query_timeout: float = DEFAULT_QUERY_TIMEOUT,
    ) -> None:
        self.target: MysqlTarget = parse_mysql_url(url)
        self._min_size = min_size
        self._max_size = max_size
        # Below the server's wait_timeout (often cut to 300 s by operators), so the pool retires a
        # connection before the server silently drops it.
        self._pool_recycle = pool_recycle
        self._connect_timeout = self.target.connect_timeout or connect_timeout
        self._query_timeout = self.target.query_timeout or query_timeout
        if self._connect_timeout <= 0 or self._query_timeout <= 0:
            raise ValueError("MySQL timeouts must be > 0 seconds")
        self._pool: asyncmy.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"MysqlDatabase({self.target.describe()})"

    async def connect(self) -> None:
        await self._ensure_pool()

    async def close(self) -> None:
        """Close the pool; connections still checked out after a grace period are cut off."""
        self._closed = True  # so a task still running cannot open a new pool behind our back
        pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.close()
        try:
            async with asyncio.timeout(_CLOSE_GRACE_SECONDS):
                await pool.wait_closed()
        except TimeoutError:
            pool.terminate()

    async def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        """A read: retried once on a fresh connection after a connection-level error."""

        async def work(cur: Cursor) -> list[tuple[Any, ...]]:
            await cur.execute(sql, _args(params))
            return [tuple(row) for row in await cur.fetchall()]

        with store_span(_SYSTEM, sql):
            return await self._run(work, retry=True)

    async def fetchone(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Params = None, *, idempotent: bool = False) -> int:
        """A write; returns the affected row count. Only retried when the caller says running it
        twice is harmless: after a lost connection we cannot know whether the first one landed."""

        async def work(cur: Cursor) -> int:
            return int(await cur.execute(sql, _args(params)))

        with store_span(_SYSTEM, sql):
            return await self._run(work, retry=idempotent)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MysqlTransaction]:
        """Statements on one connection between BEGIN and COMMIT. When the block raises, the
        connection is closed instead of reused, and the server rolls the transaction back."""
        pool, conn = await self._acquire()
        tx = MysqlTransaction(self, conn)
        try:
            with store_operation_span(_SYSTEM, "TRANSACTION"):
                await tx.run(conn.begin())
                yield tx
                await tx.run(conn.commit())
        except BaseException:
            conn.close()
            raise
        finally:
            pool.release(conn)

    async def _ensure_pool(self) -> asyncmy.Pool:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._closed:
                raise StoreUnavailable(STORE_NAME, f"database {self.target.describe()} is closed")
            if self._pool is None:
                try:
                    # the driver's connect_timeout covers TCP only; this also bounds the handshake
                    async with asyncio.timeout(self._connect_timeout):
                        self._pool = await asyncmy.create_pool(
                            minsize=self._min_size,
                            maxsize=self._max_size,
                            pool_recycle=self._pool_recycle,
                            host=self.target.host,
                            port=self.target.port,
                            user=self.target.user,
                            password=self.target.password,
                            database=self.target.database,
                            connect_timeout=self._connect_timeout,
                            autocommit=True,
                            charset="utf8mb4",
                        )
                except (MySQLError, OSError, TimeoutError) as exc:
                    raise self._unavailable("cannot connect", exc) from None
            return self._pool

    async def _acquire(self) -> tuple[asyncmy.Pool, Connection]:
        pool = await self._ensure_pool()
        try:
            # acquire may open a connection; bound it like connect() so a dead server never hangs us
            async with asyncio.timeout(self._connect_timeout):
                conn: Connection = await pool.acquire()
        except (MySQLError, OSError, TimeoutError, RuntimeError) as exc:  # RuntimeError: pool closing
            raise self._unavailable("cannot get a connection", exc) from None
        return pool, conn

    async def _run(self, work: Callable[[Cursor], Awaitable[T]], *, retry: bool) -> T:
        attempts = 2 if retry else 1
        for attempt in range(1, attempts + 1):
            pool, conn = await self._acquire()
            try:
                try:
                    async with asyncio.timeout(self._query_timeout):
                        cursor = conn.cursor()
                        result = await work(cursor)
                        await cursor.close()
                except TimeoutError:
                    raise _QueryTimeout(self._query_timeout) from None
            except BaseException as exc:
                # A timed-out statement is abandoned mid-stream, like a cancelled one: the
                # connection is unusable (its reply may still arrive) and is dropped below.
                dead = isinstance(exc, asyncio.CancelledError) or _is_connection_error(exc)
                if dead:
                    # A cancelled or failed read leaves the stream in an unknown state: never hand
                    # it back to the pool (asyncmy#100), close it so release() drops it.
                    conn.close()
                pool.release(conn)
                if not isinstance(exc, MySQLError | OSError):
                    raise
                # A fresh connection helps after a dead one, not after a full timeout (that would
                # double the wait, and a slow server is no faster the second time).
                if dead and attempt < attempts and not isinstance(exc, _QueryTimeout):
                    continue
                raise self._unavailable("query failed", exc) from None
            pool.release(conn)
            return result
        raise AssertionError("unreachable")  # the loop returns or raises

    def _unavailable(self, what: str, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(STORE_NAME, f"{what} ({self.target.describe()}): {self._reason(exc)}")

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, _QueryTimeout):
            return str(exc)
        if isinstance(exc, TimeoutError) and not str(exc):
            return f"timed out after {self._connect_timeout:g}s"
        text = _NEAR_FRAGMENT.sub("near '...' at line", str(exc))
        if self.target.password:
            text = text.replace(self.target.password, "***")
        return f"{type(exc).__name__}: {text}"[:_MAX_REASON]


class MysqlTransaction:
    """The statements of one open transaction; any failure is StoreUnavailable (never retried:
    the caller's transaction is gone with it)."""

    def __init__(self, db: MysqlDatabase, conn: Connection) -> None:
        self._db = db
        self._conn = conn

    async def run(self, step: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._db._query_timeout):
                return await step
        except TimeoutError:
            raise self._db._unavailable("query failed", _QueryTimeout(self._db._query_timeout)) from None
        except (MySQLError, OSError) as exc:
            raise self._db._unavailable("query failed", exc) from None

    async def execute(self, sql: str, params: Params = None, *, idempotent: bool = False) -> int:
        async def work() -> int:
            cursor = self._conn.cursor()
            try:
                return int(await cursor.execute(sql, _args(params)))
            finally:
                await cursor.close()

        with store_span(_SYSTEM, sql):
            return await self.run(work())

    async def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        async def work() -> list[tuple[Any, ...]]:
            cursor = self._conn.cursor()
            try:
                await cursor.execute(sql, _args(params))
                return [tuple(row) for row in await cursor.fetchall()]
            finally:
                await cursor.close()

        with store_span(_SYSTEM, sql):
            return await self.run(work())

    async def fetchone(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None


class _QueryTimeout(TimeoutError):
    """A statement outlived `query_timeout`. A TimeoutError, hence an OSError: connection-level."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"query timed out after {seconds:g}s")


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError | InterfaceError):
        return True
    if isinstance(exc, MySQLError) and exc.args and exc.args[0] in _CONNECTION_ERRNOS:
        return True
    # "Packet sequence number wrong": the stream is out of step, the connection is unusable
    return isinstance(exc, InternalError) and "sequence" in str(exc)


def _args(params: Params) -> tuple[Any, ...] | None:
    # None, not (): with args the driver %-formats the SQL, so a literal % would need escaping
    return tuple(params) if params else None
