"""SqliteDatabase transactions on the shared connection: all or nothing, even when cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from adapters.sqlite.database import SqliteDatabase


@pytest.mark.parametrize("yields_before_cancel", range(8))
async def test_a_transaction_cancelled_at_any_point_is_all_or_nothing_and_the_next_one_works(
    tmp_path: Path, yields_before_cancel: int
) -> None:
    db = SqliteDatabase(str(tmp_path / "tx.sqlite3"))
    await db.connect()
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")

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
    finally:
        await db.close()


async def test_a_failed_atomic_write_rolls_back_every_statement(tmp_path: Path) -> None:
    db = SqliteDatabase(str(tmp_path / "tx.sqlite3"))
    await db.connect()
    try:
        await db.execute("CREATE TABLE t (x INTEGER)")

        def half(conn: object) -> None:
            conn.execute("INSERT INTO t VALUES (1)")  # type: ignore[attr-defined]
            raise RuntimeError("the second half failed")

        with pytest.raises(RuntimeError):
            await db.atomically(half)
        assert await db.fetchall("SELECT x FROM t") == []
    finally:
        await db.close()
