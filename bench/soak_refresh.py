"""Soak: RefreshStaleCaches over every rider, again and again, reporting each failed rider.

One sandbox (50 ms per call by default) and one bootstrap; then each round makes every cache
stale with plain SQL, starts a fresh server process (as bench/memory.py does) and drains a
refresh run at C=64. Every failed rider is printed with its BulkError code and message and the
server's warnings of that round. `--cpu-hog N` keeps N busy processes on the CPU meanwhile.
Bounded by `--seconds` and `--rounds`; exits 1 naming every failure if there was one.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from collections import Counter

from common import drain_bulk, emit, log, seed_tokens, start_sandbox, start_server, stop_process, work_dir

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

_HOG = "while True: pass"


def _warnings(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if '"WARNING"' in line or '"ERROR"' in line]


def run(
    users: int, latency_ms: float, concurrency: int, seconds: float, rounds: int, hogs: int, reuse: bool
) -> int:
    directory = work_dir("soak")
    log(
        f"soak: {users} riders, sandbox {latency_ms:g} ms, C={concurrency}, {hogs} CPU hog(s), in {directory}"
    )
    hog_procs = [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(hogs)]
    sandbox = start_sandbox(directory, users=users, latency_ms=latency_ms)
    failures: list[tuple[int, int, str, str]] = []  # (round, user_id, code, message)
    refreshed = completed = 0
    started = time.monotonic()
    server = None
    try:
        env = {"BULK_CONCURRENCY": str(concurrency)}
        server = start_server(sandbox, directory, **env)
        seed_tokens(server.sqlite_path, sandbox.credentials())
        built = asyncio.run(
            drain_bulk(
                server.address, "BuildCacheIfEmpty", pb.BuildCacheIfEmptyRequest(concurrency=concurrency)
            )
        )
        failures += [(0, *failure) for failure in built.failures]
        log(f"soak: bootstrap done={built.done} failed={built.failed} in {time.monotonic() - started:.0f}s")
        sqlite_path = server.sqlite_path
        request = pb.RefreshStaleCachesRequest(max_age_seconds=3600, concurrency=concurrency)
        while completed < rounds and time.monotonic() - started < seconds:
            if not reuse:
                server.stop()
            server.query("UPDATE bytemark_tickets_cache SET timestamp = 0")
            if not reuse:
                server = start_server(sandbox, directory, sqlite_path=sqlite_path, **env)
                time.sleep(0.5)
            log_start = len(server.logs())
            round_started = time.monotonic()
            result = asyncio.run(drain_bulk(server.address, "RefreshStaleCaches", request))
            completed += 1
            refreshed += result.done - result.failed
            failures += [(completed, *failure) for failure in result.failures]
            log(
                f"soak: round {completed}: done={result.done} failed={result.failed} in "
                f"{time.monotonic() - round_started:.1f}s (refreshed {refreshed}, failures {len(failures)})"
            )
            if result.failed or result.done != users:
                for line in _warnings(server.logs()[log_start:])[:40]:
                    log(f"soak: server log: {line}")
    finally:
        if server is not None:
            server.stop()
        sandbox.stop()
        for proc in hog_procs:
            stop_process(proc)
    by_message = Counter(f"{code} {message}" for _, _, code, message in failures)
    emit(
        "soak_refresh",
        users=users,
        rounds=completed,
        riders_refreshed=refreshed,
        failures=len(failures),
        failures_by_message=dict(by_message),
        seconds=round(time.monotonic() - started),
        latency_ms=latency_ms,
        concurrency=concurrency,
        cpu_hogs=hogs,
    )
    for round_no, user_id, code, message in failures:
        print(f"FAILED round {round_no} user {user_id}: {code} {message}", file=sys.stderr)
    return 1 if failures else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=300.0, help="start no round after this")
    parser.add_argument("--rounds", type=int, default=1_000_000)
    parser.add_argument("--cpu-hog", type=int, default=0, help="busy processes beside the server")
    parser.add_argument("--reuse-server", action="store_true", help="one server for every round")
    args = parser.parse_args()
    sys.exit(
        run(
            args.users,
            args.latency_ms,
            args.concurrency,
            args.seconds,
            args.rounds,
            args.cpu_hog,
            args.reuse_server,
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
