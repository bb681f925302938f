"""The change feed on the embedded SQLite file: a purge records the removal of what it deletes,
even when a refresh replaced the cache after the purge looked at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.change_feed import SqliteChangeFeed
from adapters.driven.storage.sqlite.database import SqliteDatabase
from domain.changes import ChangeKind, cache_changes
from domain.model import CachedPass, TicketCache

NOW = 1_700_000_000


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    db = SqliteDatabase(str(tmp_path / "feed.sqlite3"))
    await db.connect()
    try:
        yield db
    finally:
        await db.close()


def cache(user_id: int, *uuids_and_hashes: tuple[str, str]) -> TicketCache:
    passes = tuple(CachedPass(uuid, NOW, "USABLE", 0, {"uuid": uuid}, h) for uuid, h in uuids_and_hashes)
    return TicketCache(user_id=user_id, timestamp=NOW, passes=passes)


async def test_a_write_racing_a_delete_keeps_the_feed_equal_to_the_store(sqlite: SqliteDatabase) -> None:
    store, feed, user = SqliteCacheStore(sqlite), SqliteChangeFeed(sqlite), 42
    await store.create_schema()
    old = cache(user, ("a", "1"))
    v1 = await store.save(old, None, (), cache_changes(user, None, old, NOW))
    stale_removals = cache_changes(user, v1, None, NOW + 2)  # what the purge read before the write
    new = cache(user, ("a", "2"), ("b", "1"))
    await store.save(new, v1.version, (), cache_changes(user, v1, new, NOW + 1))

    assert await store.delete(user, stale_removals)  # removes what is stored now, not what was read

    page = await feed.read_after(0, 100, frozenset())
    passes: dict[str, str] = {}
    for event in page.events:
        if event.change.kind is ChangeKind.REMOVED:
            assert passes.pop(event.change.pass_uuid) == event.change.payload_hash
            assert event.change.changed_at == NOW + 2
        else:
            passes[event.change.pass_uuid] = event.change.payload_hash
    assert passes == {} and await store.get(user) is None
    assert not await store.delete(user, ())  # nothing left to remove, nothing more in the feed
    assert (await feed.read_after(page.position, 100, frozenset())).events == ()
