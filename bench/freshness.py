"""The store-freshness query `serve` runs every SYNC_GAUGES_REFRESH_SECONDS (CacheStore.freshness:
the oldest cache and the count older than the max age), at 100,000 riders, beside the same answer
read without the timestamp index (SQLite's `NOT INDEXED`: what a scan of the caches costs).

SQLite: the adapter on a file of `--riders` caches, timestamps spread over two hours so a quarter
are stale. FerretDB: `--ferretdb-riders` documents (FerretDB v1 on SQLite plans no secondary index,
so its figure is a scan; bench/RESULTS.md says why). MongoDB too when MONGODB_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import emit, log, work_dir

from adapters.driven.storage.mongo.cache_store import MongoCacheStore
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.database import SqliteDatabase
from devtools.ferretdb import FerretDB

NOW = 1_800_000_000
MAX_AGE = 3600
PASSES_TEXT = '[{"uuid": "%s", "status": "USABLE", "payload": {"x": "%s"}}]'


def _timestamps(riders: int) -> list[int]:
    """Over the last 75 minutes: the ones older than an hour (a fifth) are stale."""
    generator = random.Random(7)
    return [NOW - generator.randrange(0, 75 * 60) for _ in range(riders)]


async def _best_ms(read: Callable[[], Awaitable[object]], repeats: int) -> float:
    await read()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        await read()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 3)


async def sqlite_figures(riders: int, repeats: int) -> dict[str, object]:
    path = work_dir("freshness") / "caches.sqlite3"
    db = SqliteDatabase(str(path))
    await db.connect()
    try:
        store = SqliteCacheStore(db)
        await store.create_schema()
        _fill_sqlite(path, riders)
        moment = NOW - MAX_AGE
        found = await store.freshness(moment)
        indexed = await _best_ms(lambda: store.freshness(moment), repeats)
        scan_sql = store.freshness_sql.replace(
            '"bytemark_tickets_cache"', '"bytemark_tickets_cache" NOT INDEXED'
        )
        scanned = await _best_ms(lambda: db.fetch_rows(scan_sql, (moment,)), repeats)
        plan = [row[3] for row in await db.fetchall("EXPLAIN QUERY PLAN " + store.freshness_sql, (moment,))]
        return {
            "riders": riders,
            "stale_riders": found.written_before,
            "query_ms": indexed,
            "baseline_scan_ms": scanned,
            "speedup_vs_scan": round(scanned / indexed, 1),
            "plan": " | ".join(str(step) for step in plan),
        }
    finally:
        await db.close()


def _fill_sqlite(path: Path, riders: int) -> None:
    started = time.monotonic()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO bytemark_tickets_cache (user_id, timestamp, version, passes, passes4)"
            " VALUES (?, ?, 1, ?, '[]')",
            (
                (user_id, timestamp, PASSES_TEXT % (user_id, "p" * 400))
                for user_id, timestamp in enumerate(_timestamps(riders), start=1)
            ),
        )
    log(f"freshness: {riders} SQLite caches written in {time.monotonic() - started:.1f}s")


async def mongo_figures(url: str, database: str, riders: int, repeats: int) -> dict[str, object]:
    db = MongoDatabase(url, database)
    await db.connect()
    try:
        store = MongoCacheStore(db)
        collection = db.collection("bytemarkticketscaches")
        await collection.drop()
        await store.create_schema()
        started = time.monotonic()
        documents = [
            {
                "user_id": user_id,
                "timestamp": timestamp,
                "version": 1,
                "passes": [{"x": "p" * 400}],
                "passes4": [],
            }
            for user_id, timestamp in enumerate(_timestamps(riders), start=1)
        ]
        for first in range(0, riders, 1000):
            await collection.insert_many(documents[first : first + 1000], ordered=False)
        log(f"freshness: {riders} documents inserted in {time.monotonic() - started:.1f}s")
        moment = NOW - MAX_AGE
        found = await store.freshness(moment)
        took = await _best_ms(lambda: store.freshness(moment), repeats)
        explained = await collection.find(MongoCacheStore.stale_filter(moment)).explain()
        return {
            "riders": riders,
            "stale_riders": found.written_before,
            "query_ms": took,
            "query_ms_per_1000_riders": round(took / riders * 1000, 3),
            "pushdown": explained.get("filterPushdown", "n/a (MongoDB plans itself)"),
        }
    finally:
        await collection.drop()
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--riders", type=int, default=100_000)
    parser.add_argument("--ferretdb-riders", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    emit("freshness", store="sqlite", **asyncio.run(sqlite_figures(args.riders, args.repeats)))
    if os.environ.get("MONGODB_URL"):
        figures = asyncio.run(
            mongo_figures(os.environ["MONGODB_URL"], "bench_freshness", args.riders, args.repeats)
        )
        emit("freshness_mongo", store="mongodb", **figures)
    if args.ferretdb_riders:
        ferretdb = FerretDB(work_dir("ferretdb")).start()
        try:
            figures = asyncio.run(
                mongo_figures(ferretdb.url("bench_freshness"), "bench_freshness", args.ferretdb_riders, 2)
            )
        finally:
            ferretdb.stop()
        emit("freshness_ferretdb", store="ferretdb", **figures)


if __name__ == "__main__":
    main()
