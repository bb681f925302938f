"""Bootstrap and reads with the caches on FerretDB (a real MongoDB-wire server), each beside its
SQLite twin measured in the same run, with the same fields and limits as bootstrap.py and read.py.
Tokens stay in SQLite for both, so the ratio is the cost of the production cache store alone.

Bootstrap runs 300 users, not bootstrap.py's 2,000: FerretDB v1's SQLite backend pushes only
`_id` filters down to SQL and scans the whole collection for any other (`user_id`), so a bootstrap
is quadratic in the number of caches (2,000 users took over ten minutes for 351 caches). MongoDB
uses the unique `user_id` index; the ratio measures FerretDB, not production MongoDB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import psutil
from bootstrap import _full_run
from common import emit, log, seed_tokens, start_sandbox, start_server, work_dir
from read import VIEWS, _prebuilt, _qps

from devtools.ferretdb import FerretDB

CLIENT = os.environ.get("MONGODB_CLIENT", "motor")


def bootstrap(ferretdb: FerretDB, users: int, latency_ms: float, concurrency: int) -> dict[str, object]:
    directory = work_dir("bootstrap-mongo")
    log(f"bootstrap_mongo: sandbox with {users} users, {latency_ms:g} ms per call")
    sandbox = start_sandbox(directory, users=users, latency_ms=latency_ms)
    figures: dict[str, tuple[float, float]] = {}
    assert ferretdb.proc is not None
    ferretdb_process = psutil.Process(ferretdb.proc.pid)
    ferretdb_cpu = 0.0
    try:
        for store in ("sqlite", "mongo"):
            env = {"BULK_CONCURRENCY": str(concurrency)}
            if store == "mongo":
                env |= {"MONGODB_URL": ferretdb.url("bench_bootstrap"), "MONGODB_CLIENT": CLIENT}
            server = start_server(sandbox, directory, **env)
            try:
                seed_tokens(server.sqlite_path, sandbox.credentials())
                process = psutil.Process(server.pid)
                cpu_before = sum(process.cpu_times()[:2])
                ferretdb_before = sum(ferretdb_process.cpu_times()[:2])
                seconds, run = asyncio.run(_full_run(server.address, concurrency))
                if store == "mongo":
                    ferretdb_cpu = sum(ferretdb_process.cpu_times()[:2]) - ferretdb_before
                run.require_complete(f"bootstrap ({store})", users)
                figures[store] = (seconds, sum(process.cpu_times()[:2]) - cpu_before)
                log(f"bootstrap_mongo: {store} caches: {users / seconds:.0f} users/s")
            finally:
                server.stop()
    finally:
        sandbox.stop()
    (seconds, cpu), (sqlite_seconds, sqlite_cpu) = figures["mongo"], figures["sqlite"]
    return emit(
        "bootstrap_mongo",
        users=users,
        latency_ms=latency_ms,
        concurrency=concurrency,
        mongodb_client=CLIENT,
        seconds=round(seconds, 3),
        users_per_s=round(users / seconds, 1),
        sqlite_users_per_s=round(users / sqlite_seconds, 1),
        ratio_vs_sqlite=round(sqlite_seconds / seconds, 3),
        server_cpu_ms_per_user=round(cpu * 1000 / users, 3),
        sqlite_server_cpu_ms_per_user=round(sqlite_cpu * 1000 / users, 3),
        ferretdb_cpu_ms_per_user=round(ferretdb_cpu * 1000 / users, 3),
    )


def read(
    ferretdb: FerretDB, passes: int, expired: int, seconds: float, rounds: int, in_flight: int
) -> dict[str, object]:
    directory = work_dir("read-mongo")
    sandbox = start_sandbox(directory, users=0, latency_ms=0)
    servers = {}
    try:
        creds = sandbox.create_user(passes=passes, expired=expired)
        user_id = int(creds["user_id"])
        env = {"MONGODB_URL": ferretdb.url("bench_read"), "MONGODB_CLIENT": CLIENT}
        for store, extra in (("mongo", env), ("sqlite", {})):
            servers[store] = start_server(sandbox, directory, **extra)
            seed_tokens(
                servers[store].sqlite_path, [(user_id, creds["access_token"], creds["refresh_token"])]
            )
            total = asyncio.run(_prebuilt(servers[store].address, user_id, directory))
        best = {"mongo": 0.0, "sqlite": 0.0}
        cpu = {"mongo": 0.0, "sqlite": 0.0}
        for round_index in range(rounds):
            for store, server in servers.items():
                process = psutil.Process(server.pid)
                before = sum(process.cpu_times()[:2])
                qps = asyncio.run(_qps(server.address, user_id, VIEWS["FULL"], seconds, in_flight))
                used = (sum(process.cpu_times()[:2]) - before) / seconds
                log(f"read_mongo round {round_index + 1}: {store} {qps:.0f} qps (server cpu {used:.2f})")
                if qps > best[store]:
                    best[store], cpu[store] = qps, used
        return emit(
            "read_mongo",
            view="FULL",
            passes=total,
            mongodb_client=CLIENT,
            qps=round(best["mongo"], 1),
            sqlite_qps=round(best["sqlite"], 1),
            ratio_vs_sqlite=round(best["mongo"] / best["sqlite"], 3),
            server_cpu=round(cpu["mongo"], 2),
            sqlite_server_cpu=round(cpu["sqlite"], 2),
            in_flight=in_flight,
            seconds_per_round=seconds,
            rounds=rounds,
        )
    finally:
        for server in servers.values():
            server.stop()
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=300, help="see the module docstring")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--passes", type=int, default=150, help="v1 passes of the read user")
    parser.add_argument("--expired", type=int, default=50, help="EXPIRED passes of the read user")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()
    ferretdb = FerretDB(work_dir("ferretdb")).start()
    started = time.monotonic()
    try:
        bootstrap(ferretdb, args.users, args.latency_ms, args.concurrency)
        read(ferretdb, args.passes, args.expired, args.seconds, args.rounds, args.in_flight)
    finally:
        ferretdb.stop()
    log(f"mongo benchmarks done in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
