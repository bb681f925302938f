"""SyncStateStore contract: every backend (SQLite, Mongo) keeps, lists and counts rider sync
statuses the same way, and the Mongo one never touches the cache documents."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.driven.storage.mongo.sync_state_store import DEFAULT_COLLECTION
from adapters.driven.storage.sqlite.sync_state_store import SqliteSyncStateStore
from application.ports import SyncStateStore
from domain.sync_state import SyncError, SyncState, SyncStatus
from tests.contract.cache_fixtures import CACHE_COLLECTION, Backend, SqliteBackend

NOW = 1_700_000_000

# `backend` (tests/contract/conftest.py): SQLite, FerretDB through motor and PyMongo, MONGODB_URL.


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[SyncStateStore]:
    if isinstance(backend, SqliteBackend):
        sqlite_store = SqliteSyncStateStore(backend.db)
        await sqlite_store.create_schema()
        await sqlite_store.create_schema()  # idempotent
        yield sqlite_store
        return
    mongo_store = backend.sync_state_store()
    await mongo_store.create_schema()
    await mongo_store.create_schema()
    try:
        yield mongo_store
    finally:
        await backend.db.collection(DEFAULT_COLLECTION).drop()


def ok(user_id: int, at: int = NOW) -> SyncStatus:
    return SyncStatus(user_id, SyncState.OK, last_attempt_at=at, last_success_at=at, cache_timestamp=at)


def failing(user_id: int, failures: int = 1) -> SyncStatus:
    return SyncStatus(
        user_id,
        SyncState.FAILING,
        last_attempt_at=NOW,
        last_success_at=NOW - 3600,
        consecutive_failures=failures,
        last_error=SyncError("UNAVAILABLE", "Bytemark GET /passes: HTTP 500 after 3 attempts"),
        next_attempt_at=NOW + 60,
        cache_timestamp=NOW - 3600,
    )


def auth_required(user_id: int) -> SyncStatus:
    return SyncStatus(
        user_id,
        SyncState.AUTH_REQUIRED,
        last_attempt_at=NOW,
        consecutive_failures=1,
        last_error=SyncError("FAILED_PRECONDITION", "refresh token rejected (invalid_grant)"),
        token_fingerprint="0123456789abcdef",
    )


async def test_a_rider_never_seen_has_no_status(store: SyncStateStore) -> None:
    assert await store.get(42) is None
    assert await store.get_many([42, 43]) == {}


async def test_every_field_comes_back_as_written(store: SyncStateStore) -> None:
    statuses = [ok(1), failing(2, failures=3), auth_required(3), SyncStatus(4, SyncState.FAILING, NOW)]
    await store.put_many(statuses)
    for status in statuses:
        assert await store.get(status.user_id) == status
    assert await store.get_many([1, 2, 3, 4, 5]) == {s.user_id: s for s in statuses}


async def test_a_new_status_replaces_the_old_one(store: SyncStateStore) -> None:
    await store.put_many([failing(7, failures=2)])
    await store.put_many([ok(7, at=NOW + 10)])
    assert await store.get(7) == ok(7, at=NOW + 10)


async def test_the_last_status_of_a_rider_in_one_batch_wins(store: SyncStateStore) -> None:
    await store.put_many([failing(8), ok(8, at=NOW + 5)])
    assert await store.get(8) == ok(8, at=NOW + 5)


async def test_an_empty_batch_writes_nothing(store: SyncStateStore) -> None:
    await store.put_many([])
    assert await store.list_after(0, 10) == []


async def test_a_large_batch_is_written_whole(store: SyncStateStore) -> None:
    await store.put_many([ok(user_id) for user_id in range(1, 122)])
    assert len(await store.get_many(list(range(1, 122)))) == 121
    assert (await store.count_by_state())[SyncState.OK] == 121


async def test_listing_pages_by_user_id_with_an_optional_state(store: SyncStateStore) -> None:
    await store.put_many([ok(5), failing(3), auth_required(9), failing(1), ok(2**62)])
    assert [s.user_id for s in await store.list_after(0, 10)] == [1, 3, 5, 9, 2**62]
    assert [s.user_id for s in await store.list_after(3, 2)] == [5, 9]
    assert [s.user_id for s in await store.list_after(0, 10, SyncState.FAILING)] == [1, 3]
    assert [s.user_id for s in await store.list_after(1, 10, SyncState.FAILING)] == [3]
    assert await store.list_after(2**62, 10) == []


async def test_counts_by_state_include_empty_states(store: SyncStateStore) -> None:
    assert await store.count_by_state() == {SyncState.OK: 0, SyncState.FAILING: 0, SyncState.AUTH_REQUIRED: 0}
    await store.put_many([ok(1), ok(2), failing(3), auth_required(4)])
    assert await store.count_by_state() == {SyncState.OK: 2, SyncState.FAILING: 1, SyncState.AUTH_REQUIRED: 1}


async def test_statuses_leave_the_cache_documents_alone(backend: Backend, store: SyncStateStore) -> None:
    await backend.insert_legacy_cache(11, NOW, [])
    await store.put_many([ok(11)])
    if isinstance(backend, SqliteBackend):
        return  # separate table by construction; the column check is the cache suite's
    document = await backend.db.collection(CACHE_COLLECTION).find_one({"user_id": 11}, {"_id": 0})
    assert sorted(document) == ["passes", "passes4", "timestamp", "user_id"]


async def test_deleting_riders_removes_only_their_statuses_and_counts_those_that_existed(
    store: SyncStateStore,
) -> None:
    await store.put_many([ok(1), failing(2), auth_required(3), auth_required(4)])

    removed = await store.delete_many([2, 3, 99])  # 99 never had a status
    again = await store.delete_many([2, 3])

    assert (removed, again) == (2, 0)
    assert sorted(await store.get_many([1, 2, 3, 4])) == [1, 4]
    assert (await store.count_by_state())[SyncState.AUTH_REQUIRED] == 1
