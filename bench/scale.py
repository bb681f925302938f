"""Refresh-stale at 1,000, 10,000 and 100,000 riders: does the cost per rider stay flat?

Per size, a fresh sandbox (5 ms per call) and a fresh server process. Tokens go in MariaDB when it
answers on 127.0.0.1:3306 (a database of this run's own, dropped at the end), otherwise in the
server's SQLite file; caches are in SQLite. Seeding is bulk SQL straight into the stores (tokens,
and one stale, empty cache per rider), never RPCs. Then one RefreshStaleCaches over every rider,
and afterwards, through the same adapters or RPCs the service uses:

- the server's CPU per rider (psutil, all threads), wall time and peak RSS during the run;
- the token pages RefreshStaleCaches walks (the token store's own keyset iterator, 1,000 ids a
  page): time of the first page and of the last;
- ListSyncStatuses pages of 1,000 over every rider: the first page and the last;
- the change feed's retention sweep (the refresh wrote one event per pass), per 100,000 events;
- the store-freshness query behind the oldest-cache and stale-rider gauges (best of 5).

`--sizes 1000 10000` for a shorter run; `make bench` runs the three default sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
from common import CpuMeter, RssSampler, drain_bulk, emit, log, mb, running_sandbox, start_server

from adapters.driven.storage.crypto.token_cipher import TokenCipher
from adapters.driven.storage.mysql.database import MysqlDatabase
from adapters.driven.storage.mysql.token_store import MysqlTokenStore
from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
from adapters.driven.storage.sqlite.change_feed import SqliteChangeFeed
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.token_store import SqliteTokenStore
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc

MARIADB = ("127.0.0.1", 3306)
PAGE = 1000  # token ids per page (the store's default) and sync statuses per page (the maximum)
ROWS_PER_INSERT = 500
PASSES, EXPIRED = 4, 2


def mariadb_answers() -> bool:
    try:
        with socket.create_connection(MARIADB, timeout=1):
            return True
    except OSError:
        return False


@asynccontextmanager
async def own_mariadb_database() -> AsyncIterator[str]:
    """A database of this run's own on the local MariaDB; its URL, dropped on the way out."""
    import os

    name = f"bench_scale_{os.getpid()}"
    admin = MysqlDatabase(f"mysql://root@{MARIADB[0]}:{MARIADB[1]}/mysql", max_size=1)
    await admin.execute(f"CREATE DATABASE IF NOT EXISTS {name}")
    try:
        yield f"mysql://root@{MARIADB[0]}:{MARIADB[1]}/{name}"
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {name}")
        await admin.close()


def _chunks(rows: Sequence[tuple[Any, ...]]) -> Iterator[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), ROWS_PER_INSERT):
        yield rows[start : start + ROWS_PER_INSERT]


async def seed_mariadb_tokens(url: str, creds: Sequence[tuple[int, str, str]]) -> None:
    """Multi-row INSERTs of plain tokens, as an operator's import would."""
    db = MysqlDatabase(url, max_size=1)
    try:
        for chunk in _chunks(creds):
            values = ", ".join(["(%s, %s, %s, 1, NOW())"] * len(chunk))
            await db.execute(
                "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at)"
                f" VALUES {values}",
                [value for row in chunk for value in row],
            )
    finally:
        await db.close()


def seed_sqlite(path: Path, creds: Sequence[tuple[int, str, str]], tokens: bool) -> None:
    """One stale (timestamp 0), empty cache per rider, and the tokens unless they are in MariaDB."""
    with sqlite3.connect(path, timeout=30) as db:
        if tokens:
            db.executemany(
                "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at)"
                " VALUES (?, ?, ?, 1, datetime('now'))",
                creds,
            )
        db.executemany(
            "INSERT INTO bytemark_tickets_cache (user_id, timestamp, version, passes, passes4)"
            " VALUES (?, 0, 1, '[]', '[]')",
            [(user_id,) for user_id, _, _ in creds],
        )


async def token_page_seconds(mysql_url: str | None, sqlite_path: Path, walks: int = 3) -> tuple[float, float]:
    """The token store's keyset iterator over every rider, `walks` times: the best time of its
    first page and of its last (each page's query runs when its first id is asked for)."""
    cipher = TokenCipher(None)
    if mysql_url is not None:
        db: Any = MysqlDatabase(mysql_url, max_size=1)
        store: Any = MysqlTokenStore(db, cipher)
    else:
        db = SqliteDatabase(str(sqlite_path))
        await db.connect()
        store = SqliteTokenStore(db, cipher)
    first, last = [], []
    try:
        for _ in range(walks):
            pages: list[float] = []
            count = 0
            waited = time.perf_counter()
            async for _ in store.iter_user_ids_with_token(batch_size=PAGE):
                if count % PAGE == 0:
                    pages.append(time.perf_counter() - waited)
                count += 1
                waited = time.perf_counter()
            first.append(pages[0])
            last.append(pages[-1])
    finally:
        await db.close()
    return min(first), min(last)


async def sync_status_page_seconds(address: str, repeats: int = 5) -> tuple[float, float, int]:
    """ListSyncStatuses over every rider in pages of 1,000; then the first and the last page
    again, alternately: their best times, and how many statuses the walk listed."""
    tokens = [""]
    seen = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)

        async def page_seconds(token: str) -> tuple[float, Any]:
            started = time.perf_counter()
            page = await stub.ListSyncStatuses(pb.ListSyncStatusesRequest(page_size=PAGE, page_token=token))
            return time.perf_counter() - started, page

        while True:
            _, page = await page_seconds(tokens[-1])
            seen += len(page.statuses)
            if not page.next_page_token:
                break
            tokens.append(page.next_page_token)
        first, last = [], []
        for _ in range(repeats):
            first.append((await page_seconds(tokens[0]))[0])
            last.append((await page_seconds(tokens[-1]))[0])
    return min(first), min(last), seen


async def freshness_seconds(sqlite_path: Path, repeats: int = 5) -> float:
    """Best time of the store-freshness query `serve` runs for its gauges (oldest cache, count
    older than an hour), on the caches the refresh just wrote."""
    db = SqliteDatabase(str(sqlite_path))
    await db.connect()
    store = SqliteCacheStore(db)
    timings = []
    try:
        for _ in range(repeats):
            started = time.perf_counter()
            await store.freshness(int(time.time()) - 3600)
            timings.append(time.perf_counter() - started)
    finally:
        await db.close()
    return min(timings)


async def sweep_seconds_per_100k(sqlite_path: Path) -> tuple[float, int]:
    """The feed's retention sweep over every event the refresh wrote: seconds per 100,000."""
    db = SqliteDatabase(str(sqlite_path))
    await db.connect()
    try:
        started = time.perf_counter()
        removed = await SqliteChangeFeed(db).sweep(older_than=2**62)
        seconds = time.perf_counter() - started
    finally:
        await db.close()
    return (seconds * 100_000 / removed if removed else 0.0), removed


def _ratio(last: float, first: float) -> float:
    return round(last / max(first, 0.01), 2)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


@contextmanager
def _tokens_home(use_mariadb: bool) -> Iterator[str | None]:
    """The MYSQL_URL for this size's tokens (a fresh MariaDB database), or None for SQLite."""
    if not use_mariadb:
        yield None
        return
    runner = asyncio.Runner()
    context = own_mariadb_database()
    try:
        yield runner.run(context.__aenter__())
    finally:
        runner.run(context.__aexit__(None, None, None))
        runner.close()


def measure(users: int, latency_ms: float, concurrency: int, use_mariadb: bool) -> dict[str, Any]:
    with (
        running_sandbox(
            f"scale-{users}", users=users, latency_ms=latency_ms, passes=PASSES, expired=EXPIRED
        ) as (
            sandbox,
            directory,
        ),
        _tokens_home(use_mariadb) as mysql_url,
    ):
        env = {"BULK_CONCURRENCY": str(concurrency)} | ({"MYSQL_URL": mysql_url} if mysql_url else {})
        server = start_server(sandbox, directory, **env)
        try:
            started = time.perf_counter()
            creds = sandbox.credentials()
            if mysql_url is not None:
                asyncio.run(seed_mariadb_tokens(mysql_url, creds))
            seed_sqlite(server.sqlite_path, creds, tokens=mysql_url is None)
            log(f"scale: {users} riders seeded in {time.perf_counter() - started:.1f} s; refresh-stale")
            request = pb.RefreshStaleCachesRequest(
                max_age_seconds=3600, concurrency=concurrency, max_batch=64
            )
            cpu = CpuMeter(server.pid)
            started = time.perf_counter()
            with RssSampler(server.pid) as rss:
                refresh = asyncio.run(drain_bulk(server.address, "RefreshStaleCaches", request))
            seconds, used = time.perf_counter() - started, cpu.used()
            refresh.require_complete("refresh-stale", users)
            sync_first, sync_last, statuses = asyncio.run(sync_status_page_seconds(server.address))
            if statuses != users:
                raise RuntimeError(f"ListSyncStatuses listed {statuses} riders, not {users}")
        finally:
            server.stop()
        token_first, token_last = asyncio.run(token_page_seconds(mysql_url, server.sqlite_path))
        freshness = asyncio.run(freshness_seconds(server.sqlite_path))
        sweep, events = asyncio.run(sweep_seconds_per_100k(server.sqlite_path))
    result = {
        "users": users,
        "cpu_ms_per_rider": round(used * 1000 / users, 3),
        "seconds": round(seconds, 2),
        "peak_rss_mb": mb(rss.peak),
        "token_page_first_ms": _ms(token_first),
        "token_page_last_ms": _ms(token_last),
        "sync_page_first_ms": _ms(sync_first),
        "sync_page_last_ms": _ms(sync_last),
        "sweep_ms_per_100k_events": _ms(sweep),
        "feed_events": events,
        "freshness_query_ms": _ms(freshness),
    }
    log(f"scale: {result}")
    return result


def run(sizes: Sequence[int], latency_ms: float, concurrency: int) -> dict[str, object]:
    use_mariadb = mariadb_answers()
    log(f"scale: tokens in {'MariaDB' if use_mariadb else 'SQLite'}, caches in SQLite")
    results = [measure(users, latency_ms, concurrency, use_mariadb) for users in sizes]
    by_size = {row["users"]: row for row in results}
    return emit(
        "scale",
        tokens_store="mariadb" if use_mariadb else "sqlite",
        latency_ms=latency_ms,
        concurrency=concurrency,
        passes_per_rider=PASSES + EXPIRED,
        sizes=results,
        # the targets, against the size ten times smaller when both ran
        **_growth(by_size),
    )


def _growth(by_size: dict[int, dict[str, Any]]) -> dict[str, float]:
    sizes = sorted(by_size)
    if len(sizes) < 2:
        return {}
    small, big = by_size[sizes[-2]], by_size[sizes[-1]]
    return {
        "cpu_per_rider_growth": round(big["cpu_ms_per_rider"] / small["cpu_ms_per_rider"] - 1, 3),
        "peak_rss_growth": round(big["peak_rss_mb"] / small["peak_rss_mb"] - 1, 3),
        "token_page_last_vs_first": round(
            big["token_page_last_ms"] / max(big["token_page_first_ms"], 0.01), 2
        ),
        "sync_page_last_vs_first": round(big["sync_page_last_ms"] / max(big["sync_page_first_ms"], 0.01), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--latency-ms", type=float, default=5.0, help="the sandbox's delay per call")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    run(args.sizes, args.latency_ms, args.concurrency)


if __name__ == "__main__":
    main()
