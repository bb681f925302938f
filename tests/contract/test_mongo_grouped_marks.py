"""FerretDB's grouped marks (profile `ferretdb`, on FerretDB): a rider whose remembered cache `_id`
no longer holds its cache, or who is marked twice in one group, is still marked exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.driven.storage.mongo.capabilities import FERRETDB
from adapters.driven.storage.mongo.profiles import strategies_for
from application.outbox import free_ticket_reward_record
from devtools.ferretdb import FerretDB
from domain.model import TicketCache
from tests.contract.cache_fixtures import CACHE_COLLECTION, MongoBackend, mongo_database

NOW = 1_700_000_000


@pytest.fixture
async def mongo(ferretdb_server: FerretDB) -> AsyncIterator[MongoBackend]:
    db = mongo_database(ferretdb_server.url("admin"), "motor")
    await db.connect()
    backend = MongoBackend("ferretdb-motor", db, strategies_for(FERRETDB, db, CACHE_COLLECTION))
    await backend.create_schema()
    try:
        yield backend
    finally:
        await backend.drop_collections()
        await db.collection(f"{CACHE_COLLECTION}_locks").drop()
        await db.close()


async def cache_with_records(mongo: MongoBackend, user_id: int, count: int) -> list:
    first = await mongo.cache_store.save(TicketCache(user_id, NOW), None)
    records = [free_ticket_reward_record(user_id, NOW + n) for n in range(count)]
    await mongo.cache_store.save(TicketCache(user_id, NOW + 1), first.version, records)
    return records


async def test_a_cache_moved_to_a_new_id_since_the_write_is_marked_by_user_id(mongo: MongoBackend) -> None:
    records = await cache_with_records(mongo, 5, 1)
    caches = mongo.db.collection(CACHE_COLLECTION)
    document = await caches.find_one({"user_id": 5})
    await caches.delete_one({"_id": document["_id"]})  # another client rewrote it under a new `_id`
    del document["_id"]
    await caches.insert_one(document)

    await mongo.outbox.mark_delivered(records)

    assert await mongo.outbox.pending(100) == []
    assert await caches.count_documents({"user_id": 5}) == 1


async def test_a_rider_marked_twice_in_one_group_ends_with_nothing_pending(mongo: MongoBackend) -> None:
    records = await cache_with_records(mongo, 6, 2)
    others = [await cache_with_records(mongo, user, 1) for user in (7, 8)]

    await asyncio.gather(
        mongo.outbox.mark_delivered(others[0]),  # on the wire first: the rest queue up behind it
        mongo.outbox.mark_delivered([records[0]]),
        mongo.outbox.mark_delivered([records[1]]),
        mongo.outbox.mark_delivered(others[1]),
    )

    assert await mongo.outbox.pending(100) == []


async def test_a_deleted_cache_is_removed_once_its_records_are_marked(mongo: MongoBackend) -> None:
    records = await cache_with_records(mongo, 9, 1)
    await mongo.cache_store.delete(9)  # a tombstone: it goes once every record is delivered

    await mongo.outbox.mark_delivered(records)
    await mongo.outbox.mark_delivered(await mongo.outbox.pending_for_user(9))

    assert await mongo.db.collection(CACHE_COLLECTION).count_documents({"user_id": 9}) == 0
