"""CacheStore contract: every adapter (SQLite; FerretDB through motor and through PyMongo's async
client; a real MongoDB when MONGODB_URL is set) behaves the same, including compare-and-set on
`version`."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.database import ClientFactory, MongoDatabase
from application.errors import StoreUnavailable, WriteConflict
from devtools.ferretdb import FerretDB
from domain.model import CachedPass, TicketCache
from domain.payload_hash import payload_hash
from tests.contract.cache_fixtures import (
    MONGO_CLIENTS,
    Backend,
    SqliteBackend,
    assert_same_json,
    mongo_cache_store,
    mongo_database,
    open_backend,
    profile_strategies,
)

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def make_pass(uuid: str, payload: dict[str, Any] | None = None, timestamp: int = 1_700_000_000) -> CachedPass:
    return CachedPass(
        pass_uuid=uuid,
        timestamp=timestamp,
        status="USABLE",
        free_ticket_status=0,
        payload=payload if payload is not None else {"uuid": uuid, "status": "USABLE"},
        payload_hash="0" * 32,
    )


def make_cache(
    user_id: int, timestamp: int = 1_700_000_100, passes: int = 2, passes4: int = 1
) -> TicketCache:
    return TicketCache(
        user_id=user_id,
        timestamp=timestamp,
        passes=tuple(make_pass(f"p-{user_id}-{i}") for i in range(passes)),
        passes4=tuple(make_pass(f"x-{user_id}-{i}") for i in range(passes4)),
    )


RICH_PAYLOAD: dict[str, Any] = {
    "uuid": "8d3f2c1a-0000-4000-8000-000000000001",
    "product_uuid": "2417edb7-856c-43ee-b3df-c508b8be259b",
    "status": "USABLE",
    "time_created": "2024-03-01T10:00:00Z",
    "label": 'Zone A–B · Día 🚇 "quoted" \\ back\nline',
    "nothing": None,
    "flags": [True, False, None],
    "price": 2.5,
    "whole_float": 1.0,
    "tiny": 1.5e-7,
    "huge_float": 1e300,
    "beyond_double_precision": 2**53 + 1,
    "int64_edges": [INT64_MAX, INT64_MIN, 0, -1],
    # What FerretDB v1 cannot store (nested arrays, -0, ...) is in test_mongo_server_differences.py.
    "nested": {"b": {"deeper": [{"k": "v"}, {}]}, "a": 1, "10": "key order kept", "2": "as sent"},
    "empty_string": "",
}


async def test_get_of_a_user_without_cache_is_none(backend: Backend) -> None:
    assert await backend.cache_store.get(404) is None


async def test_inserted_cache_round_trips_the_exact_document_shape(backend: Backend) -> None:
    cache = TicketCache(
        user_id=7,
        timestamp=1_700_000_500,
        passes=(make_pass(RICH_PAYLOAD["uuid"], RICH_PAYLOAD), make_pass("second")),
        passes4=(
            CachedPass("expired", 1_600_000_000, None, 1, {"uuid": "expired", "status": None}, "f" * 32),
        ),
    )

    stored = await backend.cache_store.save(cache, expected_version=None)
    loaded = await backend.cache_store.get(7)

    assert stored.version == 1
    assert loaded is not None
    expected = {**cache.to_document(), "version": 1}
    assert_same_json(loaded.to_document(), expected)
    assert_same_json(stored.to_document(), expected)


async def test_integers_beyond_64_bits_stay_exact_or_become_doubles_as_node_stored_them(
    backend: Backend,
) -> None:
    big: dict[str, Any] = {"uuid": "big", "above": 2**64 + 1, "below": -(2**70) - 1, "u64": 2**64 - 1}
    await backend.cache_store.save(
        TicketCache(user_id=8, timestamp=1, passes=(make_pass("big", big),)), expected_version=None
    )

    loaded = await backend.cache_store.get(8)

    assert loaded is not None
    payload = loaded.passes[0].payload
    if backend.keeps_ints_beyond_int64:
        assert_same_json(payload, big)
    else:
        assert_same_json(
            payload, {key: float(value) if key != "uuid" else value for key, value in big.items()}
        )


async def test_a_lone_surrogate_is_stored_exactly_or_as_the_replacement_node_stored(
    backend: Backend,
) -> None:
    # Bytemark's JSON may carry "\\ud800"; the client keeps it, so the store must accept it.
    odd: dict[str, Any] = {"uuid": "odd", "name": "a\ud800b", "big": 2**64 + 1}
    node_hash = payload_hash(odd)  # of the value as received, "\\ud800" escaped as Node prints it
    entry = replace(make_pass("odd", odd), payload_hash=node_hash)
    await backend.cache_store.save(
        TicketCache(user_id=9, timestamp=1, passes=(entry,)), expected_version=None
    )

    loaded = await backend.cache_store.get(9)

    assert loaded is not None
    name = loaded.passes[0].payload["name"]
    assert name == ("a\ud800b" if backend.keeps_lone_surrogates else "a\ufffdb")
    assert loaded.passes[0].payload_hash == node_hash


async def test_inserting_a_cache_twice_is_a_write_conflict(backend: Backend) -> None:
    await backend.cache_store.save(make_cache(1), expected_version=None)

    with pytest.raises(WriteConflict):
        await backend.cache_store.save(make_cache(1, timestamp=99), expected_version=None)

    loaded = await backend.cache_store.get(1)
    assert loaded is not None and loaded.timestamp == make_cache(1).timestamp


async def test_update_with_the_current_version_succeeds_and_bumps_it(backend: Backend) -> None:
    first = await backend.cache_store.save(make_cache(2), expected_version=None)

    second = await backend.cache_store.save(
        make_cache(2, timestamp=1_800_000_000, passes=3, passes4=0), expected_version=first.version
    )

    assert second.version == 2
    loaded = await backend.cache_store.get(2)
    assert loaded == second
    assert len(loaded.passes) == 3 and loaded.passes4 == ()


async def test_stale_version_is_a_write_conflict_and_leaves_the_cache_unchanged(backend: Backend) -> None:
    await backend.cache_store.save(make_cache(3), expected_version=None)
    current = await backend.cache_store.save(make_cache(3, timestamp=2), expected_version=1)

    with pytest.raises(WriteConflict) as raised:
        await backend.cache_store.save(make_cache(3, timestamp=3, passes=0), expected_version=1)

    assert raised.value.user_id == 3 and raised.value.expected_version == 1
    assert await backend.cache_store.get(3) == current


async def test_update_of_a_cache_that_does_not_exist_is_a_write_conflict(backend: Backend) -> None:
    with pytest.raises(WriteConflict):
        await backend.cache_store.save(make_cache(4), expected_version=0)
    assert await backend.cache_store.get(4) is None


async def test_legacy_cache_without_version_reads_as_0_and_updates_with_expected_0(
    backend: Backend,
) -> None:
    legacy_entry = make_pass("legacy").to_document()
    await backend.insert_legacy_cache(42, 1_600_000_000, [legacy_entry])

    legacy = await backend.cache_store.get(42)
    assert legacy is not None
    assert legacy.version == 0
    assert legacy.timestamp == 1_600_000_000
    assert legacy.passes == (make_pass("legacy"),)
    assert [uid async for uid in backend.cache_store.iter_user_ids()] == [42]

    updated = await backend.cache_store.save(make_cache(42, timestamp=1_700_000_000), expected_version=0)

    assert updated.version == 1
    assert await backend.cache_store.get(42) == updated
    with pytest.raises(WriteConflict):
        await backend.cache_store.save(make_cache(42, timestamp=5), expected_version=0)


@pytest.mark.parametrize(
    "expected_version",
    [
        pytest.param(None, id="insert"),  # a unique index decides: atomic on FerretDB too
        pytest.param(1, id="update", marks=pytest.mark.needs_atomic_conditional_update),
    ],
)
async def test_concurrent_saves_with_the_same_expected_version_have_exactly_one_winner(
    backend: Backend, expected_version: int | None
) -> None:
    if expected_version is not None:
        await backend.cache_store.save(make_cache(5), expected_version=None)

    results = await asyncio.gather(
        *(backend.cache_store.save(make_cache(5, timestamp=1_000 + i), expected_version) for i in range(20)),
        return_exceptions=True,
    )

    winners = [r for r in results if isinstance(r, TicketCache)]
    assert len(winners) == 1
    assert all(isinstance(r, WriteConflict) for r in results if r is not winners[0])
    assert await backend.cache_store.get(5) == winners[0]
    assert winners[0].version == (expected_version or 0) + 1


async def test_is_empty_follows_inserts_and_deletes(backend: Backend) -> None:
    store = backend.cache_store
    assert await store.is_empty() is True

    for user_id in (10, 11, 12):
        await store.save(make_cache(user_id), expected_version=None)

    assert await store.is_empty() is False
    for user_id in (10, 11, 12):
        await store.delete(user_id)
    assert await store.is_empty() is True


async def test_iter_user_ids_is_ascending_across_batches_smaller_than_the_count(backend: Backend) -> None:
    user_ids = [9, 3, 27, 1, 15, 4, 100, 2, 8_000_000_000]
    random.Random(7).shuffle(user_ids)
    for user_id in user_ids:
        await backend.cache_store.save(make_cache(user_id, passes=0, passes4=0), expected_version=None)

    for batch_size in (1, 2, 3, 4, 1000):
        got = [uid async for uid in backend.cache_store.iter_user_ids(batch_size=batch_size)]
        assert got == sorted(user_ids), batch_size


async def test_iter_user_ids_of_an_empty_store_yields_nothing(backend: Backend) -> None:
    assert [uid async for uid in backend.cache_store.iter_user_ids(batch_size=2)] == []


async def test_delete_removes_only_that_users_cache(backend: Backend) -> None:
    await backend.cache_store.save(make_cache(20), expected_version=None)
    await backend.cache_store.save(make_cache(21), expected_version=None)

    assert await backend.cache_store.delete(20) is True
    assert await backend.cache_store.delete(20) is False
    assert await backend.cache_store.get(20) is None
    assert await backend.cache_store.get(21) is not None
    # A deleted user can be built again from scratch (on MongoDB over the delete's tombstone,
    # whose version it moves past, see test_change_feed_mongo.py).
    rebuilt = await backend.cache_store.save(make_cache(20), expected_version=None)
    assert await backend.cache_store.get(20) == rebuilt


async def test_creating_the_schema_again_is_harmless_and_keeps_data(backend: Backend) -> None:
    saved = await backend.cache_store.save(make_cache(30), expected_version=None)

    await backend.create_schema()
    await backend.create_schema()

    assert await backend.cache_store.get(30) == saved
    assert await backend.has_unique_user_id_key()


async def test_user_id_is_unique_after_schema_creation(backend: Backend) -> None:
    assert await backend.has_unique_user_id_key()


@pytest.mark.parametrize(
    "client_factory", [None, AsyncMongoClient], ids=["motor-default", "pymongo-async-client"]
)
async def test_an_unreachable_mongodb_raises_store_unavailable_quickly_without_the_password(
    client_factory: ClientFactory | None,
) -> None:
    db = MongoDatabase(
        "mongodb://reader:s3cr%40t@127.0.0.1:1/bytemark?serverSelectionTimeoutMS=300",
        client_factory=client_factory,
    )
    await db.connect()
    store = MongoCacheStore(db)
    started = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable) as raised:
            await store.get(1)
    finally:
        await db.close()

    assert time.monotonic() - started < 5
    assert raised.value.store == "MongoDB"
    assert "s3cr" not in str(raised.value)


@pytest.mark.parametrize("client", MONGO_CLIENTS)
async def test_unique_index_creation_over_legacy_duplicates_says_what_to_fix(
    ferretdb_server: FerretDB, client: str
) -> None:
    db = mongo_database(ferretdb_server.url("admin"), client)
    await db.connect()
    try:
        await db.collection("bytemarkticketscaches").insert_many([{"user_id": 1}, {"user_id": 1.0}])

        with pytest.raises(StoreUnavailable, match="several caches for one user_id"):
            await MongoCacheStore(db).create_schema()
    finally:
        await db.collection("bytemarkticketscaches").drop()
        await db.close()


@pytest.mark.parametrize("client", MONGO_CLIENTS)
async def test_unique_index_creation_over_a_legacy_non_unique_index_says_what_to_fix(
    ferretdb_server: FerretDB, client: str
) -> None:
    # FerretDB v1 answers "ok" to a unique index whose key matches an existing non-unique one and
    # keeps the non-unique index; MongoDB refuses. Both must end in the same clear error.
    db = mongo_database(ferretdb_server.url("admin"), client)
    await db.connect()
    try:
        await db.collection("bytemarkticketscaches").create_index([("user_id", 1)])

        # `auto`: the check that catches it is FerretDB's workaround, on the server that needs it
        store = mongo_cache_store(db, await profile_strategies(db, "auto"))
        with pytest.raises(StoreUnavailable, match="drop the conflicting index"):
            await store.create_schema()
    finally:
        await db.collection("bytemarkticketscaches").drop()
        await db.close()


def test_mongo_database_name_comes_from_the_argument_or_the_url_path() -> None:
    assert MongoDatabase("mongodb://h1:27017,h2:27017/from_url?replicaSet=rs").database_name == "from_url"
    assert MongoDatabase("mongodb://h/from_url", database_name="explicit").database_name == "explicit"
    with pytest.raises(ValueError, match="database name"):
        MongoDatabase("mongodb://h:27017/")


async def test_sqlite_rows_stay_plain_json_for_sql_readers(tmp_path: Path) -> None:
    async with open_backend("sqlite", tmp_path) as sqlite_backend:
        assert isinstance(sqlite_backend, SqliteBackend)
        db = sqlite_backend.db
        payload = {"uuid": "u", "big": 2**64 + 1, "name": "Día"}
        await sqlite_backend.cache_store.save(
            TicketCache(user_id=1, timestamp=5, passes=(make_pass("u", payload),)), expected_version=None
        )

        rows = await db.fetchall(
            "SELECT version, json_extract(passes, '$[0].payload.name'), json_array_length(passes4)"
            " FROM bytemark_tickets_cache WHERE user_id = 1"
        )

        assert [tuple(r) for r in rows] == [(1, "Día", 0)]
