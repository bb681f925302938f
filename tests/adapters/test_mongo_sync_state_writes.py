"""MongoSyncStateStore.put_many with profile `ferretdb`'s writes (replace by `_id`) on a real
FerretDB when another process changes the statuses between its read of the batch's `_id`s and its
write: the batch's statuses are stored all the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.driven.storage.mongo.capabilities import FERRETDB
from adapters.driven.storage.mongo.ferretdb.sync_state_writes import ReplacesById
from adapters.driven.storage.mongo.sync_state_store import MongoSyncStateStore
from devtools.ferretdb import FerretDB
from domain.sync_state import succeeded
from tests.contract.cache_fixtures import mongo_database


@pytest.fixture
async def store(ferretdb_server: FerretDB) -> AsyncIterator[MongoSyncStateStore]:
    db = mongo_database(ferretdb_server.url("admin"), "motor")
    await db.connect()
    assert FERRETDB.writes_per_bulk is not None
    states = MongoSyncStateStore(db, writes=ReplacesById(FERRETDB.writes_per_bulk))
    await states.create_schema()
    try:
        yield states
    finally:
        await states._collection().drop()
        await db.close()


def seen_ids(store: MongoSyncStateStore, ids: dict[int, Any]) -> None:
    """What the batch's read returned, before the other process's write."""

    async def stale(collection: Any, user_ids: list[int]) -> dict[int, Any]:
        return {u: ids[u] for u in user_ids if u in ids}

    store._writes._document_ids = stale  # type: ignore[attr-defined]


async def test_a_status_written_elsewhere_after_the_read_is_replaced_not_duplicated(
    store: MongoSyncStateStore,
) -> None:
    await store.put_many([succeeded(1, 100, 100)])
    seen_ids(store, {})  # rider 1 looked new when the batch was read
    await store.put_many([succeeded(1, 200, 200), succeeded(2, 200, 200)])
    assert await store._collection().count_documents({"user_id": 1}) == 1
    statuses = await store.get_many([1, 2])
    assert {u: s.last_attempt_at for u, s in statuses.items()} == {1: 200, 2: 200}


async def test_a_status_removed_elsewhere_after_the_read_is_written_again(store: MongoSyncStateStore) -> None:
    await store.put_many([succeeded(1, 100, 100)])
    document = await store._collection().find_one({"user_id": 1})
    await store._collection().delete_one({"user_id": 1})
    seen_ids(store, {1: document["_id"]})  # the batch saw rider 1's old document
    await store.put_many([succeeded(1, 200, 200)])
    status = await store.get(1)
    assert status is not None and status.last_attempt_at == 200


async def test_a_batch_rewriting_hundreds_of_known_riders_completes(store: MongoSyncStateStore) -> None:
    """FerretDB v1 holds a pool connection per update by `_id` until its command ends (100 in the
    pool): one bulk_write of 200 such updates never finished."""
    riders = range(1, 251)
    await store.put_many([succeeded(u, 100, 100) for u in riders])
    await asyncio.wait_for(store.put_many([succeeded(u, 200, 200) for u in riders]), 30)
    statuses = await store.get_many(list(riders))
    assert len(statuses) == 250 and {s.last_attempt_at for s in statuses.values()} == {200}
