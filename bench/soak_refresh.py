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
import re
import subprocess
import sys
import time
import urllib.request
from collections import Counter

from common import (
    drain_bulk,
    emit,
    free_port,
    log,
    seed_tokens,
    start_sandbox,
    start_server,
    stop_process,
    work_dir,
)

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

_HOG = "while True: pass"


_BUCKET = re.compile(r'^bytemark_request_duration_seconds_bucket\{endpoint="([^"]+)",le="([^"]+)"\} (\S+)$')
_SLOW = ("1.0", "2.5", "5.0", "10.0")


def _warnings(log_text: str) -> list[str]:
    return [line for line in log_text.splitlines() if '"WARNING"' in line or '"ERROR"' in line]


def _slow_attempts(metrics_url: str) -> Counter[str]:
    """Bytemark HTTP attempts slower than 1/2.5/5/10 s so far (near misses of the timeout),
    plus failed attempts by reason, from the server's own Prometheus metrics."""
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    buckets: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for line in text.splitlines():
        if match := _BUCKET.match(line):
            _, le, value = match.groups()
            if le == "+Inf":
                total["all"] += int(float(value))
            elif le in _SLOW:
                buckets[le] += int(float(value))
        elif line.startswith("bytemark_request_errors_total{"):
            labels, value = line.rsplit(" ", 1)
            total[f"error {labels[len('bytemark_request_errors_total') :]}"] += int(float(value))
    slow = Counter({f"over {le}s": total["all"] - buckets[le] for le in _SLOW})
    return (
        slow
        + Counter({key: value for key, value in total.items() if key.startswith("error")})
        + Counter({"attempts": total["all"]})
    )


def run(
    users: int,
    latency_ms: float,
    concurrency: int,
    seconds: float,
    rounds: int,
    hogs: int,
    reuse: bool,
    timeout_seconds: float = 10.0,
) -> int:
    directory = work_dir("soak")
    log(
        f"soak: {users} riders, sandbox {latency_ms:g} ms, C={concurrency}, {hogs} CPU hog(s), in {directory}"
    )
    sandbox = start_sandbox(directory, users=users, latency_ms=latency_ms)
    hog_procs: list[subprocess.Popen[bytes]] = []
    failures: list[tuple[int, int, str, str]] = []  # (round, user_id, code, message)
    refreshed = completed = 0
    started = time.monotonic()
    server = None
    try:
        hog_procs += [subprocess.Popen([sys.executable, "-c", _HOG]) for _ in range(hogs)]
        metrics_port = free_port()
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        env = {
            "BULK_CONCURRENCY": str(concurrency),
            "METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
            "BYTEMARK_TIMEOUT_SECONDS": str(timeout_seconds),
        }
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
            before = _slow_attempts(metrics_url)
            round_started = time.monotonic()
            result = asyncio.run(drain_bulk(server.address, "RefreshStaleCaches", request))
            completed += 1
            refreshed += result.done - result.failed
            failures += [(completed, *failure) for failure in result.failures]
            log(
                f"soak: round {completed}: done={result.done} failed={result.failed} in "
                f"{time.monotonic() - round_started:.1f}s (refreshed {refreshed}, failures {len(failures)})"
            )
            attempts = _slow_attempts(metrics_url)
            attempts.subtract(before)
            outcomes = sandbox.stats()["outcomes"]
            not_ok = {f"{where} {status}": n for where, by in outcomes.items() for status, n in by.items()}
            not_ok = {key: n for key, n in not_ok.items() if not key.endswith(" 200")}
            log(f"soak: round {completed}: Bytemark attempts {dict(+attempts)}; sandbox non-200: {not_ok}")
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
    parser.add_argument("--timeout-seconds", type=float, default=10.0, help="BYTEMARK_TIMEOUT_SECONDS")
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
            args.timeout_seconds,
        )  # fmt: skip
    )


if __name__ == "__main__":
    main()
