"""The SQLite cache store's read-path shortcuts: reads on the loop thread and the parsed-row memo.

A row is reused only while its stored text is exactly what was parsed: whatever changes the row
(this store, another connection, plain SQL that keeps the version) is seen on the next read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from adapters.sqlite.cache_store import SqliteCacheStore
from adapters.sqlite.database import SqliteDatabase
from domain.model import CachedPass, TicketCache

T0 = 1_700_000_000


def entry(uuid: str, fare: object = 1, digest: str = "h") -> CachedPass:
    return CachedPass(uuid, T0, "USABLE", 0, {"uuid": uuid, "fare": fare}, digest)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(str(tmp_path / "cache.sqlite3"))
    await database.connect()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def store(db: SqliteDatabase) -> SqliteCacheStore:
    cache_store = SqliteCacheStore(db)
    await cache_store.create_schema()
    return cache_store


async def test_an_unchanged_row_is_served_from_the_memo_as_the_same_object(store: SqliteCacheStore) -> None:
    await store.save(TicketCache(1, T0, passes=(entry("a"),)), None)

    first = await store.get(1)
    second = await store.get(1)

    assert first is not None and first is second


async def test_a_write_through_the_store_is_seen_by_the_next_read(store: SqliteCacheStore) -> None:
    stored = await store.save(TicketCache(1, T0, passes=(entry("a", fare=1),)), None)
    assert await store.get(1) is not None

    await store.save(TicketCache(1, T0 + 1, passes=(entry("a", fare=2, digest="h2"),)), stored.version)

    again = await store.get(1)
    assert again is not None and again.passes[0].payload["fare"] == 2 and again.timestamp == T0 + 1


async def test_a_payload_changed_by_plain_sql_with_the_same_version_and_hash_is_not_served_stale(
    store: SqliteCacheStore, db: SqliteDatabase
) -> None:
    await store.save(TicketCache(1, T0, passes=(entry("a", fare=1),)), None)
    before = await store.get(1)
    assert before is not None and before.passes[0].payload["fare"] == 1

    # Another writer (an operator, another process): same version, timestamp and hash.
    with sqlite3.connect(db.path) as other:
        text = orjson.dumps([entry("a", fare=1.0).to_document()]).decode()  # 1 -> 1.0 only
        other.execute("UPDATE bytemark_tickets_cache SET passes = ? WHERE user_id = 1", (text,))

    after = await store.get(1)
    assert after is not None and after is not before
    payload_fare = after.passes[0].payload["fare"]
    assert payload_fare == 1.0 and type(payload_fare) is float


async def test_a_deleted_row_is_gone_and_a_recreated_one_is_read_afresh(store: SqliteCacheStore) -> None:
    await store.save(TicketCache(1, T0, passes=(entry("a"),)), None)
    assert await store.get(1) is not None

    assert await store.delete(1)
    assert await store.get(1) is None

    await store.save(TicketCache(1, T0, passes=(entry("b"),)), None)
    recreated = await store.get(1)
    assert recreated is not None and [e.pass_uuid for e in recreated.passes] == ["b"]


async def test_the_memo_stays_within_its_byte_budget(db: SqliteDatabase) -> None:
    store = SqliteCacheStore(db, row_memo_bytes=2_000)
    await store.create_schema()
    for user_id in range(1, 30):
        await store.save(TicketCache(user_id, T0, passes=(entry(f"p{user_id}"),)), None)
        assert await store.get(user_id) is not None

    memo = store._memo  # noqa: SLF001
    assert 0 < len(memo.rows) < 29
    assert memo.size <= 2_000


async def test_a_disabled_memo_parses_every_read(db: SqliteDatabase) -> None:
    store = SqliteCacheStore(db, row_memo_bytes=0)
    await store.create_schema()
    await store.save(TicketCache(1, T0, passes=(entry("a"),)), None)

    first, second = await store.get(1), await store.get(1)

    assert first == second and first is not second


async def test_an_in_memory_database_reads_through_aiosqlite() -> None:
    database = SqliteDatabase(":memory:")
    await database.connect()
    try:
        store = SqliteCacheStore(database)
        await store.create_schema()
        await store.save(TicketCache(1, T0, passes=(entry("a"),)), None)
        cache = await store.get(1)
        assert cache is not None and cache.passes[0].pass_uuid == "a"
    finally:
        await database.close()
