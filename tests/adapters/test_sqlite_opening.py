"""Opening the embedded SQLite file while other processes open it too (GRPC_WORKERS, a `migrate`
Job beside `serve`): a "database is locked" told at once is retried within the busy timeout, and a
connection that fails to open never leaves aiosqlite's thread behind (the thread is not a daemon:
it kept a worker that could not start from ever exiting, so its parent waited for it forever)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from adapters.driven.storage.sqlite.database import SqliteDatabase
from application.errors import StoreUnavailable


def threads_alive() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.is_alive()}


async def test_a_lock_reported_at_once_while_switching_to_wal_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = SqliteDatabase(str(tmp_path / "cache.sqlite3"), busy_timeout_ms=2000)
    use_wal, refusals = db._use_wal, [0]  # noqa: SLF001

    async def locked_twice(conn):  # type: ignore[no-untyped-def]
        if refusals[0] < 2:  # what a second process saw while the first one switched the file
            refusals[0] += 1
            raise sqlite3.OperationalError("database is locked")
        await use_wal(conn)

    monkeypatch.setattr(db, "_use_wal", locked_twice)
    await db.connect()
    try:
        assert refusals[0] == 2
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    finally:
        await db.close()


async def test_a_file_locked_past_the_busy_timeout_fails_to_open_and_leaves_no_thread(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (a)")
    holder.execute("BEGIN EXCLUSIVE")  # switching to WAL needs the file to itself
    before = threads_alive()
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable, match="cannot open .*database is locked"):
            await SqliteDatabase(str(path), busy_timeout_ms=300).connect()
    finally:
        holder.rollback()
        holder.close()

    assert time.monotonic() - started >= 0.3  # it waited out the busy timeout first
    for _ in range(100):  # aiosqlite's thread ends once its connection is closed
        if threads_alive() <= before:
            break
        await asyncio.sleep(0.01)
    assert threads_alive() <= before, threads_alive() - before


async def test_a_lock_released_within_the_busy_timeout_lets_the_file_open_in_wal(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (a)")
    holder.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(0.3, holder.rollback)
    releaser.start()
    db = SqliteDatabase(str(path), busy_timeout_ms=5000)
    try:
        await db.connect()
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    finally:
        releaser.join()
        holder.close()
        await db.close()
