"""Peak RSS of the server process over a refresh-stale run of 10,000 users, and of 1,000 users.

Per size: a sandbox and a server process; the caches are built by a bootstrap run, made stale
with plain SQL, and a *fresh* server process (so the bootstrap's heap does not count) runs
RefreshStaleCaches over every user while a thread samples its RSS every 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import RssSampler, drain_bulk, emit, log, mb, seed_tokens, start_sandbox, start_server, work_dir

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb


def measure(users: int, latency_ms: float, concurrency: int) -> dict[str, float]:
    directory = work_dir(f"memory-{users}")
    log(f"memory: {users} users, sandbox {latency_ms:g} ms per call")
    sandbox = start_sandbox(directory, users=users, latency_ms=latency_ms)
    try:
        server = start_server(sandbox, directory, BULK_CONCURRENCY=str(concurrency))
        try:
            seed_tokens(server.sqlite_path, sandbox.credentials())
            with RssSampler(server.pid) as bootstrap_rss:
                bootstrap = asyncio.run(
                    drain_bulk(
                        server.address,
                        "BuildCacheIfEmpty",
                        pb.BuildCacheIfEmptyRequest(concurrency=concurrency),
                    )
                )
            bootstrap.require_complete("bootstrap", users)
        finally:
            server.stop()
        server.query("UPDATE bytemark_tickets_cache SET timestamp = 0")
        log(f"memory: {users} caches built and made stale; refresh-stale run on a fresh server")
        server = start_server(
            sandbox, directory, sqlite_path=server.sqlite_path, BULK_CONCURRENCY=str(concurrency)
        )
        try:
            time.sleep(0.5)
            request = pb.RefreshStaleCachesRequest(max_age_seconds=3600, concurrency=concurrency)
            started = time.perf_counter()
            with RssSampler(server.pid) as refresh_rss:
                refresh = asyncio.run(drain_bulk(server.address, "RefreshStaleCaches", request))
            seconds = time.perf_counter() - started
            refresh.require_complete("refresh", users)
        finally:
            server.stop()
        result = {
            "peak_rss_mb": mb(refresh_rss.peak),
            "start_rss_mb": mb(refresh_rss.start_rss),
            "bootstrap_peak_rss_mb": mb(bootstrap_rss.peak),
            "seconds": round(seconds, 2),
        }
        log(f"memory: {users} users -> {result}")
        return result
    finally:
        sandbox.stop()


def run(users: int, small: int, latency_ms: float, concurrency: int) -> dict[str, object]:
    small_run = measure(small, latency_ms, concurrency)
    big_run = measure(users, latency_ms, concurrency)
    return emit(
        "memory",
        users=users,
        peak_rss_mb=big_run["peak_rss_mb"],
        **{f"peak_rss_mb_{small}_users": small_run["peak_rss_mb"]},
        growth_vs_small=round(big_run["peak_rss_mb"] / small_run["peak_rss_mb"] - 1, 3),
        start_rss_mb=big_run["start_rss_mb"],
        bootstrap_peak_rss_mb=big_run["bootstrap_peak_rss_mb"],
        **{f"bootstrap_peak_rss_mb_{small}_users": small_run["bootstrap_peak_rss_mb"]},
        refresh_seconds=big_run["seconds"],
        latency_ms=latency_ms,
        concurrency=concurrency,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    run(args.users, args.small, args.latency_ms, args.concurrency)


if __name__ == "__main__":
    main()
