"""WatchChanges during a BuildCacheIfEmpty of N users against the sandbox at 50 ms per call.

One subscriber watches from "now" while the bootstrap runs. Events per second are counted over the
bootstrap; the latency of a rider's first event is measured from the moment the bulk stream
reported that rider's build done (the cache is written just before), to the event received.
Target: p99 <= 1 s. `--ferretdb` puts the caches on a FerretDB server, where the relay appends the
feed (not in `make bench`: FerretDB v1 scans its collections, see bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time

import grpc
from common import bulk_arguments, emit, running_sandbox, seeded_server, work_dir

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB

CLIENT = os.environ.get("MONGODB_CLIENT", "motor")
PROFILE = os.environ.get("MONGODB_PROFILE", "auto")  # the service's server profile (--ferretdb)


async def _measure(address: str, users: int, concurrency: int) -> dict[str, float]:
    built_at: dict[int, float] = {}
    first_event_at: dict[int, float] = {}
    events = 0
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        watch = stub.WatchChanges(pb.WatchChangesRequest())
        stream = aiter(watch)
        await anext(stream)  # subscribed: the first message carries the cursor of "now"
        expected = 0
        arrived = asyncio.Event()

        async def subscriber() -> None:
            nonlocal events
            async for response in stream:
                now = time.perf_counter()
                for event in response.events:
                    events += 1
                    first_event_at.setdefault(event.user_id, now)
                arrived.set()

        watching = asyncio.create_task(subscriber())
        started = time.perf_counter()
        bulk = stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(concurrency=concurrency))
        async for progress in bulk:
            if progress.HasField("result"):
                built_at[progress.user_id] = time.perf_counter()
                expected += progress.result.counts.passes + progress.result.counts.passes4
        bootstrap_seconds = time.perf_counter() - started
        try:
            async with asyncio.timeout(30):
                while events < expected:  # the last events of the bootstrap
                    arrived.clear()
                    await arrived.wait()
        except TimeoutError:
            pass
        all_seconds = time.perf_counter() - started
        watch.cancel()
        watching.cancel()
    if events != expected:
        raise RuntimeError(f"change feed: {events} events received, {expected} expected")
    latencies = sorted(max(0.0, first_event_at[u] - t) for u, t in built_at.items())
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "events": events,
        "bootstrap_seconds": round(bootstrap_seconds, 3),
        "events_per_s": round(events / all_seconds, 1),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "latency_p99_ms": round(quantiles[98] * 1000, 1),
        "latency_max_ms": round(latencies[-1] * 1000, 1),
    }


def run(
    users: int, latency_ms: float, concurrency: int, ferretdb: FerretDB | None = None
) -> dict[str, object]:
    """With `ferretdb`, the caches (and so the feed, appended by the relay) are on that server."""
    name = "change_feed" if ferretdb is None else "change_feed_mongo"
    env = (
        {}
        if ferretdb is None
        else {"MONGODB_URL": ferretdb.url("bench_feed"), "MONGODB_CLIENT": CLIENT, "MONGODB_PROFILE": PROFILE}
    )
    with (
        running_sandbox(name, users=users, latency_ms=latency_ms) as (sandbox, directory),
        seeded_server(sandbox, directory, concurrency=concurrency, **env) as server,
    ):
        figures = asyncio.run(_measure(server.address, users, concurrency))
        return emit(
            name,
            users=users,
            latency_ms=latency_ms,
            concurrency=concurrency,
            target_p99_ms=1000,
            **({} if ferretdb is None else {"mongodb_client": CLIENT, "mongodb_profile": PROFILE}),
            **figures,
        )


def main() -> None:
    parser = bulk_arguments(__doc__)
    parser.add_argument(
        "--ferretdb", action="store_true", help="caches and feed on a FerretDB server (try --users 300)"
    )
    args = parser.parse_args()
    if not args.ferretdb:
        run(args.users, args.latency_ms, args.concurrency)
        return
    ferretdb = FerretDB(work_dir("ferretdb_feed")).start()
    try:
        run(args.users, args.latency_ms, args.concurrency, ferretdb)
    finally:
        ferretdb.stop()


if __name__ == "__main__":
    main()
