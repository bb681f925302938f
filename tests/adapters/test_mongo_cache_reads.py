"""MongoCacheStore reads on a real FerretDB, under the suite's server profile: a read by the
remembered `_id` (profile `ferretdb`) or by user_id (profile `mongodb`) and the parsed-document
memo return exactly what a fresh read by user_id would, whatever changed the document meanwhile."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.database import CLIENT_FACTORIES
from devtools.ferretdb import FerretDB
from domain.model import TicketCache
from tests.contract.cache_fixtures import mongo_cache_store, mongo_database, profile_strategies

USER = 7


def a_cache(user_id: int, *uuids: str, timestamp: int = 1_700_000_000) -> TicketCache:
    passes = tuple(
        TicketCache.from_document(
            {"user_id": user_id, "passes": [{"pass_uuid": u, "payload": {"uuid": u}, "payload_hash": u}]}
        ).passes[0]
        for u in uuids
    )
    return TicketCache(user_id, timestamp, passes, ())


@pytest.fixture(params=tuple(CLIENT_FACTORIES))
async def store(request: pytest.FixtureRequest, ferretdb_server: FerretDB) -> AsyncIterator[MongoCacheStore]:
    db = mongo_database(ferretdb_server.url("admin"), request.param)
    await db.connect()
    caches = mongo_cache_store(db, await profile_strategies(db))
    await caches.create_schema()
    try:
        yield caches
    finally:
        await db.collection("bytemarkticketscaches").drop()
        await db.close()


def raw_collection(store: MongoCacheStore) -> Any:
    return store._collection()  # another writer's view: the same collection, outside the store


async def test_an_unchanged_document_is_read_as_the_same_cache_object(store: MongoCacheStore) -> None:
    await store.save(a_cache(USER, "a", "b"), None)
    first = await store.get(USER)
    assert first is not None and [p.pass_uuid for p in first.passes] == ["a", "b"]
    assert await store.get(USER) is first


async def test_a_document_changed_by_another_writer_keeping_its_version_is_read_afresh(
    store: MongoCacheStore,
) -> None:
    await store.save(a_cache(USER, "a"), None)
    assert (await store.get(USER)) is not None
    await raw_collection(store).update_one({"user_id": USER}, {"$set": {"passes.0.payload.uuid": "edited"}})
    again = await store.get(USER)
    assert again is not None and again.passes[0].payload == {"uuid": "edited"} and again.version == 1


async def test_a_document_deleted_and_recreated_under_a_new_id_is_found(store: MongoCacheStore) -> None:
    await store.save(a_cache(USER, "old"), None)
    assert (await store.get(USER)) is not None  # remembers the first document's _id
    await raw_collection(store).delete_many({"user_id": USER})
    assert await store.get(USER) is None
    await store.save(a_cache(USER, "new"), None)
    recreated = await store.get(USER)
    assert recreated is not None and [p.pass_uuid for p in recreated.passes] == ["new"]


async def test_a_remembered_id_now_holding_another_user_is_not_taken_for_this_user(
    store: MongoCacheStore,
) -> None:
    await store.save(a_cache(USER, "mine"), None)
    assert (await store.get(USER)) is not None
    # plain writes by another client: the document is given to user 8, user 7 gets a new one
    await raw_collection(store).update_one({"user_id": USER}, {"$set": {"user_id": 8}})
    await store.save(a_cache(USER, "fresh"), None)
    found = await store.get(USER)
    assert found is not None and found.user_id == USER and [p.pass_uuid for p in found.passes] == ["fresh"]


async def test_without_the_memo_reads_still_find_the_cache(ferretdb_server: FerretDB) -> None:
    db = mongo_database(ferretdb_server.url("admin"), "motor")
    await db.connect()
    try:
        caches = mongo_cache_store(db, await profile_strategies(db), read_memo_bytes=0)
        await caches.create_schema()
        await caches.save(a_cache(USER, "a"), None)
        first, second = await caches.get(USER), await caches.get(USER)
        assert first is not None and second is not None and first is not second and first == second
    finally:
        await db.collection("bytemarkticketscaches").drop()
        await db.close()


async def test_without_an_outbox_a_delete_removes_the_cache_once(store: MongoCacheStore) -> None:
    await store.save(a_cache(USER, "a"), None)
    assert (await store.get(USER)) is not None  # remembered, then forgotten by the delete
    assert await store.delete(USER) is True
    assert await store.get(USER) is None and await store.delete(USER) is False
    assert [user async for user in store.iter_user_ids()] == []
