"""What a rider's sync state adds to a bulk run's store work, on the embedded SQLite store.

In one process and one file, alternating rounds so machine load hits both sides alike: the
cost per rider of the cache write a bootstrap makes (one compare-and-set insert of a cache with
PASSES current and EXPIRED expired passes) against the state work a bulk run adds per rider
(its share of one 200-rider status read and one 200-rider status upsert). Reported as CPU and
wall microseconds per rider and `state_vs_cache`, the state's cost as a fraction of the cache's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from common import emit, log

from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.sync_state_store import SqliteSyncStateStore
from domain.model import CachedPass, TicketCache
from domain.sync_state import succeeded

BATCH = 200  # SyncPolicy's read_batch and write_batch
NOW = 1_700_000_000


def cache_of(user_id: int, passes: int, expired: int) -> TicketCache:
    def entry(kind: str, i: int) -> CachedPass:
        payload = {
            "uuid": f"{kind}-{user_id}-{i}",
            "status": "USABLE",
            "time_created": "2026-11-20T14:05:32Z",
        }
        payload["product"] = {"name": "METRO Local 1-Ride", "fare": 1.25, "currency": "USD"}
        return CachedPass(f"{kind}-{user_id}-{i}", NOW, "USABLE", 0, payload, "0" * 32)

    return TicketCache(
        user_id,
        NOW,
        tuple(entry("p", i) for i in range(passes)),
        tuple(entry("x", i) for i in range(expired)),
    )


async def measure(users: int, rounds: int, passes: int, expired: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-sync-state-"))
    db = SqliteDatabase(str(work / "store.sqlite3"))
    await db.connect()
    caches, states = SqliteCacheStore(db), SqliteSyncStateStore(db)
    await caches.create_schema()
    await states.create_schema()
    cache_cpu, cache_wall, state_cpu, state_wall = [], [], [], []
    next_id = 1
    for round_number in range(rounds):
        ids = list(range(next_id, next_id + users))
        next_id += users
        documents = [cache_of(user_id, passes, expired) for user_id in ids]

        cpu, wall = time.process_time(), time.perf_counter()
        for cache in documents:
            await caches.save(cache, None)
        cache_cpu.append((time.process_time() - cpu) / users)
        cache_wall.append((time.perf_counter() - wall) / users)

        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, users, BATCH):
            chunk = ids[start : start + BATCH]
            await states.get_many(chunk)
            await states.put_many([succeeded(user_id, NOW, NOW) for user_id in chunk])
        state_cpu.append((time.process_time() - cpu) / users)
        state_wall.append((time.perf_counter() - wall) / users)
        log(f"round {round_number + 1}/{rounds}")
    await db.close()
    median = statistics.median
    return {
        "cache_write_cpu_us_per_rider": round(median(cache_cpu) * 1e6, 1),
        "cache_write_wall_us_per_rider": round(median(cache_wall) * 1e6, 1),
        "state_cpu_us_per_rider": round(median(state_cpu) * 1e6, 1),
        "state_wall_us_per_rider": round(median(state_wall) * 1e6, 1),
        "state_vs_cache": round(median(state_cpu) / median(cache_cpu), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--passes", type=int, default=4)
    parser.add_argument("--expired", type=int, default=2)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.users, args.rounds, args.passes, args.expired))
    emit("sync_state_cost", users=args.users, rounds=args.rounds, passes=args.passes, **figures)


if __name__ == "__main__":
    main()
