"""CacheStore.freshness on every backend: the oldest cache and the count of stale ones, as the
freshness gauges of `serve` read them; and on SQLite and MongoDB, proof that both come from the
timestamp index rather than a scan of the caches."""

from __future__ import annotations

from typing import Any

from application.ports import CacheFreshness
from tests.contract.cache_fixtures import CACHE_COLLECTION, Backend, MongoBackend, SqliteBackend
from tests.contract.test_cache_store import make_cache


async def test_an_empty_store_has_no_oldest_cache_and_nothing_stale(backend: Backend) -> None:
    assert await backend.cache_store.freshness(2_000_000_000) == CacheFreshness(None, 0)


async def test_the_oldest_timestamp_and_the_caches_written_strictly_before_the_moment(
    backend: Backend,
) -> None:
    for user_id, timestamp in ((1, 1_700_000_300), (2, 1_700_000_100), (3, 1_700_000_200)):
        await backend.cache_store.save(make_cache(user_id, timestamp=timestamp), None)

    store = backend.cache_store
    assert await store.freshness(1_700_000_200) == CacheFreshness(1_700_000_100, 1)
    assert await store.freshness(1_700_000_201) == CacheFreshness(1_700_000_100, 2)
    assert await store.freshness(1_600_000_000) == CacheFreshness(1_700_000_100, 0)


async def test_a_refreshed_or_deleted_cache_no_longer_counts_as_old(backend: Backend) -> None:
    store = backend.cache_store
    await store.save(make_cache(1, timestamp=1_700_000_100), None)
    old = await store.save(make_cache(2, timestamp=1_700_000_050), None)
    await store.save(make_cache(3, timestamp=1_700_000_000), None)

    await store.save(make_cache(2, timestamp=1_700_000_900), old.version)
    assert await store.delete(3)

    assert await store.freshness(1_700_000_500) == CacheFreshness(1_700_000_100, 1)


async def test_caches_the_old_service_wrote_count_by_their_timestamp(backend: Backend) -> None:
    await backend.insert_legacy_cache(7, 1_600_000_000, [])  # a double on MongoDB, as Mongoose wrote

    assert await backend.cache_store.freshness(1_700_000_000) == CacheFreshness(1_600_000_000, 1)


async def test_sqlite_answers_both_from_the_timestamp_index(backend: Backend) -> None:
    if not isinstance(backend, SqliteBackend):
        return  # each server's own plan: the next test
    plan = await backend.db.fetchall(
        "EXPLAIN QUERY PLAN " + backend.cache_store.freshness_sql, (1_700_000_000,)
    )
    steps = [str(row[3]) for row in plan]

    # MIN() reads the first index entry, the count a range of it: neither reads the table's rows.
    assert sum("COVERING INDEX idx_bytemark_tickets_cache_timestamp" in step for step in steps) == 2, steps
    assert not [step for step in steps if step.startswith("SCAN bytemark_tickets_cache")], steps


async def test_mongodb_answers_both_from_the_timestamp_index_and_ferretdb_v1_scans(
    backend: Backend,
) -> None:
    if not isinstance(backend, MongoBackend):
        return  # SQLite's plan: the test above
    collection = backend.db.collection(CACHE_COLLECTION)
    indexes = await collection.index_information()
    store = type(backend.cache_store)
    oldest = await collection.find(store.oldest_filter(), sort=[("timestamp", 1)], limit=1).explain()
    stale = await collection.find(store.stale_filter(1_700_000_000)).explain()

    assert [("timestamp", 1)] in [list(index["key"]) for index in indexes.values()]
    if "ferretdbVersion" in oldest.get("serverInfo", {}):
        # FerretDB v1 on SQLite pushes no filter or sort down: a scan, whatever the index
        # (docs/metrics.md, "Freshness"; bench/freshness.py measures it).
        for plan in (oldest, stale):
            assert plan["filterPushdown"] is False and "SCAN" in str(plan["queryPlanner"]["Plan"])
        return
    assert "IXSCAN" in _stages(oldest) and "COLLSCAN" not in _stages(oldest), oldest
    assert "IXSCAN" in _stages(stale) and "COLLSCAN" not in _stages(stale), stale


def _stages(explained: dict[str, Any]) -> list[str]:
    stages, plan = [], explained["queryPlanner"]["winningPlan"]
    plan = plan.get("queryPlan", plan)  # the slot-based engine nests it
    while plan:
        stages.append(plan["stage"])
        plan = plan.get("inputStage")
    return stages
