"""Where FerretDB v1 (the server every `make test` runs) differs from MongoDB, and what the service
does about each (docs/storage.md, "FerretDB v1 differences"). Bytemark's JSON can carry all of these.

Each case writes a good cache first, then a cache whose payload holds the difference. The outcome
is deliberate: stored as is, stored normalised on every server, or refused with a typed error that
names the user (-> a clear gRPC status), leaving the old document exactly as it was.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.driven.storage.mongo.capabilities import FERRETDB
from adapters.driven.storage.mongo.ferretdb.write_lock import WriteLocks
from adapters.driven.storage.mongo.profiles import strategies_for
from application.errors import CacheNotStorable, CacheTooLarge, WriteConflict
from domain.model import CachedPass, TicketCache
from domain.payload_hash import payload_hash
from tests.contract.cache_fixtures import (
    CACHE_COLLECTION,
    MONGO_CLIENTS,
    MongoBackend,
    assert_same_json,
    mongo_cache_store,
    open_backend,
)

MONGO_KINDS = [f"ferretdb-{client}" for client in MONGO_CLIENTS] + (
    [f"mongodb-{client}" for client in MONGO_CLIENTS] if os.environ.get("MONGODB_URL") else []
)
USER = 77


@pytest.fixture(params=MONGO_KINDS)
async def mongo(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MongoBackend]:
    ferretdb_url = None
    if request.param.startswith("ferretdb"):
        ferretdb_url = request.getfixturevalue("ferretdb_server").url("admin")
    async with open_backend(request.param, tmp_path, ferretdb_url) as opened:
        assert isinstance(opened, MongoBackend)
        yield opened


def is_ferretdb(backend: MongoBackend) -> bool:
    return backend.name.startswith("ferretdb")


def cache_with(payload: dict[str, Any], timestamp: int = 1_700_000_100) -> TicketCache:
    entry = CachedPass("p-1", timestamp, "USABLE", 0, payload, payload_hash(payload))
    return TicketCache(user_id=USER, timestamp=timestamp, passes=(entry,))


async def stored_old_cache(backend: MongoBackend) -> TicketCache:
    return await backend.cache_store.save(cache_with({"uuid": "p-1", "fine": True}), expected_version=None)


async def assert_refused_and_old_cache_intact(
    backend: MongoBackend, old: TicketCache, payload: dict[str, Any], names: str
) -> None:
    with pytest.raises(CacheNotStorable) as refused:
        await backend.cache_store.save(cache_with(payload, timestamp=1_800_000_000), old.version)
    message = str(refused.value)
    assert f"user {USER}" in message and names in message and "nothing was written" in message
    assert backend.refusals == ["not_storable"]
    assert await backend.cache_store.get(USER) == old


async def assert_stored_as(
    backend: MongoBackend, old: TicketCache, payload: dict[str, Any], expected: Any
) -> None:
    await backend.cache_store.save(cache_with(payload, timestamp=1_800_000_000), old.version)
    loaded = await backend.cache_store.get(USER)
    assert loaded is not None and loaded.version == old.version + 1
    assert_same_json(loaded.passes[0].payload, expected)


async def test_a_key_containing_a_dot_is_refused_by_ferretdb_v1_and_stored_by_mongodb(
    mongo: MongoBackend,
) -> None:
    old = await stored_old_cache(mongo)
    payload = {"uuid": "p-1", "fare": {"zone.a": 2.5}}
    if is_ferretdb(mongo):
        await assert_refused_and_old_cache_intact(mongo, old, payload, "must not contain '.'")
    else:
        await assert_stored_as(mongo, old, payload, payload)


async def test_a_key_starting_with_a_dollar_is_refused_by_ferretdb_v1_and_stored_by_mongodb(
    mongo: MongoBackend,
) -> None:
    old = await stored_old_cache(mongo)
    payload = {"uuid": "p-1", "meta": {"$ref": "x"}}
    if is_ferretdb(mongo):
        await assert_refused_and_old_cache_intact(mongo, old, payload, "must not start with '$'")
    else:
        await assert_stored_as(mongo, old, payload, payload)


async def test_a_nested_array_is_refused_by_ferretdb_v1_and_stored_by_mongodb(mongo: MongoBackend) -> None:
    old = await stored_old_cache(mongo)
    payload = {"uuid": "p-1", "zones": [[1, 2], [3]]}
    if is_ferretdb(mongo):
        await assert_refused_and_old_cache_intact(mongo, old, payload, "nested arrays are not supported")
    else:
        await assert_stored_as(mongo, old, payload, payload)


async def test_infinity_is_refused_by_ferretdb_v1_and_stored_by_mongodb(mongo: MongoBackend) -> None:
    # JSON `1e400` parses to Infinity, and an integer beyond a double becomes one (as in JS).
    old = await stored_old_cache(mongo)
    payload = {"uuid": "p-1", "limit": float("inf")}
    if is_ferretdb(mongo):
        await assert_refused_and_old_cache_intact(mongo, old, payload, "infinity values are not allowed")
    else:
        await assert_stored_as(mongo, old, payload, payload)


async def test_nan_is_refused_before_sending_on_every_server_and_the_connection_stays_usable(
    mongo: MongoBackend,
) -> None:
    # FerretDB v1 closes the connection on NaN, which would look like an outage; JSON cannot
    # carry NaN, so the adapter refuses it everywhere.
    old = await stored_old_cache(mongo)
    await assert_refused_and_old_cache_intact(mongo, old, {"uuid": "p-1", "ratio": float("nan")}, "NaN")
    assert await mongo.cache_store.get(USER) == old  # the connection still answers


async def test_negative_zero_is_stored_as_zero_on_every_server_with_the_same_payload_hash(
    mongo: MongoBackend,
) -> None:
    # FerretDB v1 silently turns -0 into 0; the adapter does it for every server, so they agree.
    # JSON.stringify prints -0 as "0", so Node's hash of the payload is unchanged.
    old = await stored_old_cache(mongo)
    payload = {"uuid": "p-1", "balance": -0.0}

    await assert_stored_as(mongo, old, payload, {"uuid": "p-1", "balance": 0.0})

    loaded = await mongo.cache_store.get(USER)
    assert loaded is not None and loaded.passes[0].payload_hash == payload_hash({"uuid": "p-1", "balance": 0})


async def test_nul_in_a_string_is_stored_exactly_by_ferretdb_sqlite_and_mongodb(mongo: MongoBackend) -> None:
    # FerretDB's v1 differences page lists NUL in strings; that limit is its PostgreSQL backend's.
    old = await stored_old_cache(mongo)
    payload = {"uuid": "p-1", "label": "a\x00b"}
    await assert_stored_as(mongo, old, payload, payload)


async def test_nul_in_a_key_is_refused_by_the_driver_on_every_server(mongo: MongoBackend) -> None:
    old = await stored_old_cache(mongo)
    await assert_refused_and_old_cache_intact(mongo, old, {"uuid": "p-1", "a\x00b": 1}, "NULL byte")


async def test_a_cache_over_16_mib_is_refused_naming_user_and_size_and_counted_and_the_old_one_stays(
    mongo: MongoBackend,
) -> None:
    old = await stored_old_cache(mongo)
    huge = {"uuid": "p-1", "blob": "x" * (17 * 1024 * 1024)}

    with pytest.raises(CacheTooLarge) as refused:
        await mongo.cache_store.save(cache_with(huge, timestamp=1_800_000_000), old.version)

    assert refused.value.user_id == USER and refused.value.size_bytes > 17 * 1024 * 1024
    assert f"user {USER}" in str(refused.value) and f"{refused.value.size_bytes:,} bytes" in str(
        refused.value
    )
    assert mongo.refusals == ["too_large"]
    assert await mongo.cache_store.get(USER) == old


async def test_a_new_cache_over_16_mib_is_refused_and_nothing_is_stored(mongo: MongoBackend) -> None:
    with pytest.raises(CacheTooLarge):
        await mongo.cache_store.save(cache_with({"uuid": "p-1", "blob": "x" * (17 * 1024 * 1024)}), None)
    assert await mongo.cache_store.get(USER) is None


@pytest.mark.needs_atomic_conditional_update
async def test_compare_and_set_has_one_winner_and_leaves_no_lock_behind(mongo: MongoBackend) -> None:
    """FerretDB v1 runs a conditional replace as a query, then an update by _id: concurrent
    replace_one calls with one version filter can all "match" (10 of 20 did, through motor). On
    FerretDB the adapter therefore takes a per-user lock document around the compare-and-set."""
    store = mongo.cache_store
    first = await store.save(cache_with({"uuid": "p-1"}), None)

    results = await asyncio.gather(
        *(store.save(cache_with({"uuid": "p-1", "n": i}, 1_000 + i), first.version) for i in range(20)),
        return_exceptions=True,
    )

    assert sum(isinstance(result, TicketCache) for result in results) == 1
    assert all(isinstance(result, TicketCache | WriteConflict) for result in results)
    locks = mongo.db.collection("bytemarkticketscaches_locks")
    assert await locks.count_documents({}) == 0


async def test_a_lock_left_by_a_crashed_writer_is_broken_once_stale(mongo: MongoBackend) -> None:
    if not is_ferretdb(mongo):
        return  # MongoDB needs no lock: nothing to break (the lock collection is never used)
    # FerretDB's locks, whichever profile the suite runs under (they are what FerretDB needs)
    store = mongo_cache_store(mongo.db, strategies_for(FERRETDB, mongo.db, CACHE_COLLECTION))
    first = await store.save(cache_with({"uuid": "p-1"}), None)
    locks = mongo.db.collection("bytemarkticketscaches_locks")
    await locks.insert_one({"_id": USER, "token": "crashed", "at": 0.0})

    stored = await store.save(cache_with({"uuid": "p-1", "n": 2}), first.version)

    assert stored.version == 2 and await locks.count_documents({}) == 0


async def test_a_writer_waits_out_a_crashed_writers_fresh_lock(mongo: MongoBackend) -> None:
    """A pod killed mid-write leaves a fresh lock: the replacement pod's write waits, then lands."""
    if not is_ferretdb(mongo):
        return  # MongoDB needs no lock (the lock collection is never used)
    # FerretDB's locks, whichever profile the suite runs under (they are what FerretDB needs)
    store = mongo_cache_store(mongo.db, strategies_for(FERRETDB, mongo.db, CACHE_COLLECTION))
    first = await store.save(cache_with({"uuid": "p-1"}), None)
    locks = mongo.db.collection("bytemarkticketscaches_locks")
    writer = WriteLocks(mongo.db, "bytemarkticketscaches_locks", stale_after=0.5)
    await locks.insert_one({"_id": USER, "token": "crashed", "at": time.time()})

    started = time.monotonic()
    async with writer.held(USER, first.version):
        waited = time.monotonic() - started

    assert 0.4 < waited < 3.0
    assert await locks.count_documents({}) == 0


async def test_a_cache_just_over_16_mib_is_refused_though_the_driver_and_ferretdb_would_take_it(
    mongo: MongoBackend,
) -> None:
    # The driver allows a command 16 KiB over the limit and FerretDB v1 stores such a document;
    # MongoDB would refuse it. The adapter measures the encoded document itself.
    old = await stored_old_cache(mongo)
    just_over = {"uuid": "p-1", "blob": "x" * (16 * 1024 * 1024 - 100)}

    with pytest.raises(CacheTooLarge) as refused:
        await mongo.cache_store.save(cache_with(just_over, timestamp=1_800_000_000), old.version)

    assert 16 * 1024 * 1024 < refused.value.size_bytes < 16 * 1024 * 1024 + 16 * 1024
    assert await mongo.cache_store.get(USER) == old
