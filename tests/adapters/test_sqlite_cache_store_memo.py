"""The SQLite cache store's read-path shortcuts: reads on the loop thread and the parsed-row memo.

A row is reused only while its stored text is exactly what was parsed: whatever changes the row
(this store, another connection, another process, plain SQL that keeps the version) is seen on the
next read. While nothing at all was committed to the file (PRAGMA data_version), the row is not
even fetched again.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.database import SqliteDatabase
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


async def test_empty_caches_do_not_overfill_the_memos_byte_budget(db: SqliteDatabase) -> None:
    """An empty cache's text is 4 bytes, its parsed entry hundreds: a refresh over many riders
    with empty caches once held every one of them (about 530 bytes a rider at 100,000)."""
    budget = 20_000
    store = SqliteCacheStore(db, row_memo_bytes=budget)
    await store.create_schema()
    for user_id in range(1, 301):
        await store.save(TicketCache(user_id, T0), None)

    tracemalloc.start()
    try:
        for user_id in range(1, 301):
            assert await store.get(user_id) is not None
        holding = tracemalloc.get_traced_memory()[0]
        store._memo.rows.entries.clear()  # noqa: SLF001  what the memo alone kept alive is freed
        held_bytes = holding - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held_bytes <= budget


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


def count_row_reads(db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    read_rows = db.read_rows

    async def counted(sql: str, params: tuple[object, ...] = ()) -> list[object]:
        reads.append(sql)
        return await read_rows(sql, params)

    monkeypatch.setattr(db, "read_rows", counted)
    return reads


async def test_while_nothing_is_committed_the_row_is_not_fetched_again(
    store: SqliteCacheStore, db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.save(TicketCache(1, T0, passes=(entry("a"),)), None)
    await store.save(TicketCache(2, T0, passes=(entry("b"),)), None)
    reads = count_row_reads(db, monkeypatch)
    first = await store.get(1)
    assert len(reads) == 1

    assert await store.get(1) is first and await store.get(1) is first
    assert len(reads) == 1  # nothing committed anywhere: the text was not read again

    stored_2 = await store.get(2)
    assert stored_2 is not None
    await store.save(TicketCache(2, T0 + 1, passes=(entry("b2"),)), stored_2.version)  # another rider
    assert await store.get(1) is first  # read again (a commit happened), same text: same object
    assert len(reads) == 3
    assert await store.get(1) is first
    assert len(reads) == 3


async def test_a_change_committed_by_another_process_is_seen_at_once(
    store: SqliteCacheStore, db: SqliteDatabase
) -> None:
    await store.save(TicketCache(1, T0, passes=(entry("a", fare=1),)), None)
    assert (await store.get(1)) is not None and (await store.get(1)) is not None

    text = orjson.dumps([entry("a", fare=7).to_document()]).decode()
    script = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
        " c.execute('UPDATE bytemark_tickets_cache SET passes = ? WHERE user_id = 1', (sys.argv[2],));"
        " c.commit()"
    )
    other = await asyncio.create_subprocess_exec(sys.executable, "-c", script, db.path, text)
    assert await asyncio.wait_for(other.wait(), 30) == 0

    after = await store.get(1)
    assert after is not None and after.passes[0].payload["fare"] == 7


async def test_a_row_changed_while_the_database_was_reconnecting_is_read_afresh(tmp_path: Path) -> None:
    """A new read-only connection counts data_version afresh, so versions seen by the old one
    must never match: here both would read 1."""
    db = SqliteDatabase(str(tmp_path / "cache.sqlite3"))
    await db.connect()
    store = SqliteCacheStore(db)
    await store.create_schema()
    await store.save(TicketCache(1, T0, passes=(entry("a", fare=1),)), None)
    try:
        assert (await store.get(1)) is not None
        await db.close()
        with sqlite3.connect(db.path) as other:
            text = orjson.dumps([entry("a", fare=2).to_document()]).decode()
            other.execute("UPDATE bytemark_tickets_cache SET passes = ? WHERE user_id = 1", (text,))
        await db.connect()

        after = await store.get(1)
        assert after is not None and after.passes[0].payload["fare"] == 2
    finally:
        await db.close()
