"""SqliteDatabase transactions on the shared connection: all or nothing, even when cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adapters.driven.storage.sqlite.database import SqliteDatabase
from application.errors import StoreUnavailable


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    """A connected database with one table, t (x INTEGER)."""
    database = SqliteDatabase(str(tmp_path / "tx.sqlite3"))
    await database.connect()
    try:
        await database.execute("CREATE TABLE t (x INTEGER)")
        yield database
    finally:
        await database.close()


@pytest.mark.parametrize("yields_before_cancel", range(8))
async def test_a_transaction_cancelled_at_any_point_is_all_or_nothing_and_the_next_one_works(
    db: SqliteDatabase, yields_before_cancel: int
) -> None:
    async def pair() -> None:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO t VALUES (1)")
            await tx.execute("INSERT INTO t VALUES (2)")

    task = asyncio.create_task(pair())
    for _ in range(yields_before_cancel):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t VALUES (3)")

    values = sorted(row[0] for row in await db.fetchall("SELECT x FROM t"))
    assert values in ([3], [1, 2, 3])


async def test_a_failed_atomic_write_rolls_back_every_statement(db: SqliteDatabase) -> None:
    def half(conn: object) -> None:
        conn.execute("INSERT INTO t VALUES (1)")  # type: ignore[attr-defined]
        raise RuntimeError("the second half failed")

    with pytest.raises(RuntimeError):
        await db.atomically(half)
    assert await db.fetchall("SELECT x FROM t") == []


async def test_concurrent_atomic_writes_commit_together_but_a_failing_one_rolls_back_alone(
    db: SqliteDatabase,
) -> None:
    def insert(value: int) -> Callable[[sqlite3.Connection], int]:
        def work(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (?)", (value,))
            conn.execute("INSERT INTO t VALUES (?)", (-value,))
            if value == 5:
                raise RuntimeError("rider 5 failed after writing")
            return value

        return work

    outcomes = await asyncio.gather(*(db.atomically(insert(v)) for v in range(1, 11)), return_exceptions=True)

    assert [o if isinstance(o, int) else str(o) for o in outcomes] == [
        1, 2, 3, 4, "rider 5 failed after writing", 6, 7, 8, 9, 10,
    ]  # fmt: skip
    stored = sorted(row[0] for row in await db.fetchall("SELECT x FROM t"))
    assert stored == sorted([v for v in range(1, 11) if v != 5] + [-v for v in range(1, 11) if v != 5])


async def test_when_the_shared_transaction_is_lost_no_write_of_the_batch_is_reported_stored(
    db: SqliteDatabase,
) -> None:
    def first(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (1)")

    def second(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES (2)")
        conn.execute("ROLLBACK")  # as SQLite itself does on a full disk or an I/O error
        raise sqlite3.OperationalError("disk I/O error")

    outcomes = await asyncio.gather(db.atomically(first), db.atomically(second), return_exceptions=True)

    assert all(isinstance(o, StoreUnavailable) and "disk I/O error" in str(o) for o in outcomes)
    assert await db.fetchall("SELECT x FROM t") == []
    await db.atomically(first)  # the connection is usable again
    assert await db.fetchall("SELECT x FROM t") == [(1,)]
