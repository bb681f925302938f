"""Token reads on the loop's thread (read-only WAL connection): what another connection commits
is seen at once, an uncommitted write is neither seen nor waited for, and a reconnect keeps working."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.token_store import SqliteTokenStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "tokens.sqlite3"


@pytest.fixture
async def db(path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(str(path))
    await database.connect()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def tokens(db: SqliteDatabase) -> SqliteTokenStore:
    store = SqliteTokenStore(db, TokenCipher(None))
    await store.create_schema()
    return store


def seed(path: Path, user_id: int, token: str) -> None:
    with sqlite3.connect(path) as conn:  # an operator's plain SQL, another connection
        conn.execute("INSERT INTO bytemark_tokens (user_id, token) VALUES (?, ?)", (user_id, token))


async def test_a_token_committed_by_another_connection_is_read_at_once(
    tokens: SqliteTokenStore, path: Path
) -> None:
    assert await tokens.get_token(7) is None  # opens the read-only connection
    seed(path, 7, "first")
    assert (found := await tokens.get_token(7)) is not None and found.access_token == "first"
    seed(path, 7, "second")
    assert (found := await tokens.get_token(7)) is not None and found.access_token == "second"


async def test_a_write_held_open_elsewhere_is_not_seen_and_does_not_stall_the_read(
    tokens: SqliteTokenStore, path: Path
) -> None:
    seed(path, 7, "committed")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO bytemark_tokens (user_id, token) VALUES (7, 'uncommitted')")
        started = time.monotonic()
        found = await asyncio.wait_for(tokens.get_token(7), timeout=2)
        assert time.monotonic() - started < 0.5
        assert found is not None and found.access_token == "committed"
    finally:
        writer.execute("ROLLBACK")
        writer.close()


async def test_reads_keep_working_after_a_reconnect(
    db: SqliteDatabase, tokens: SqliteTokenStore, path: Path
) -> None:
    seed(path, 7, "before")
    assert (found := await tokens.get_token(7)) is not None and found.access_token == "before"
    await db.close()
    await db.connect()
    seed(path, 7, "after")
    assert (found := await tokens.get_token(7)) is not None and found.access_token == "after"


async def test_an_in_memory_database_reads_tokens_through_aiosqlite() -> None:
    database = SqliteDatabase(":memory:")
    await database.connect()
    try:
        store = SqliteTokenStore(database, TokenCipher(None))
        await store.create_schema()
        await store.save_tokens(7, "access", "refresh", None)
        found = await store.get_token(7)
        assert found is not None and (found.access_token, found.refresh_token) == ("access", "refresh")
    finally:
        await database.close()
