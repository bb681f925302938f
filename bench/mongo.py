"""Bootstrap and reads with the caches on FerretDB (a real MongoDB-wire server), each beside its
SQLite twin measured in the same run, with the same fields and limits as bootstrap.py and read.py.
Tokens stay in SQLite for both, so the ratio is the cost of the production cache store alone.

Bootstrap runs 300 users, not bootstrap.py's 2,000: FerretDB v1's SQLite backend answers a filter
of `_id` alone from its primary key and scans and decodes the whole collection for any other
(`user_id`: about 0.5 ms per document). Builds no longer read before they insert, and cache reads
go by the remembered `_id`, but each rider's sync-state upsert (`ReplaceOne` by user_id) still
scans its collection, so a bootstrap stays quadratic on FerretDB (bench/RESULTS.md, round 4).
MongoDB answers all of these from the unique `user_id` indexes: the ratio measures FerretDB, not
production MongoDB. read_mongo reports FerretDB's own CPU per read beside the server's.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import ExitStack

from bootstrap import _full_run
from common import CpuMeter, bulk_arguments, emit, log, running_sandbox, seeded_server, work_dir
from read import VIEWS, _prebuilt, _qps

from devtools.ferretdb import FerretDB

CLIENT = os.environ.get("MONGODB_CLIENT", "motor")
#: The server profile the service runs under (bench/mongo_profiles.py runs both side by side).
PROFILE = os.environ.get("MONGODB_PROFILE", "auto")


def bootstrap(ferretdb: FerretDB, users: int, latency_ms: float, concurrency: int) -> dict[str, object]:
    figures: dict[str, tuple[float, float]] = {}
    assert ferretdb.proc is not None
    ferretdb_cpu = 0.0
    with running_sandbox("bootstrap_mongo", users=users, latency_ms=latency_ms) as (sandbox, directory):
        for store in ("sqlite", "mongo"):
            env = (
                {
                    "MONGODB_URL": ferretdb.url("bench_bootstrap"),
                    "MONGODB_CLIENT": CLIENT,
                    "MONGODB_PROFILE": PROFILE,
                }
                if store == "mongo"
                else {}
            )
            with seeded_server(sandbox, directory, concurrency=concurrency, **env) as server:
                server_cpu, ferretdb_meter = CpuMeter(server.pid), CpuMeter(ferretdb.proc.pid)
                seconds, run = asyncio.run(_full_run(server.address, concurrency))
                if store == "mongo":
                    ferretdb_cpu = ferretdb_meter.used()
                run.require_complete(f"bootstrap ({store})", users)
                figures[store] = (seconds, server_cpu.used())
                log(f"bootstrap_mongo: {store} caches: {users / seconds:.0f} users/s")
    (seconds, cpu), (sqlite_seconds, sqlite_cpu) = figures["mongo"], figures["sqlite"]
    return emit(
        "bootstrap_mongo",
        users=users,
        latency_ms=latency_ms,
        concurrency=concurrency,
        mongodb_client=CLIENT,
        mongodb_profile=PROFILE,
        seconds=round(seconds, 3),
        users_per_s=round(users / seconds, 1),
        sqlite_users_per_s=round(users / sqlite_seconds, 1),
        ratio_vs_sqlite=round(sqlite_seconds / seconds, 3),
        server_cpu_ms_per_user=round(cpu * 1000 / users, 3),
        sqlite_server_cpu_ms_per_user=round(sqlite_cpu * 1000 / users, 3),
        server_cpu_vs_sqlite=round(cpu / sqlite_cpu, 2),
        ferretdb_cpu_ms_per_user=round(ferretdb_cpu * 1000 / users, 3),
    )


def read(
    ferretdb: FerretDB, passes: int, expired: int, seconds: float, rounds: int, in_flight: int
) -> dict[str, object]:
    assert ferretdb.proc is not None
    env = {"MONGODB_URL": ferretdb.url("bench_read"), "MONGODB_CLIENT": CLIENT, "MONGODB_PROFILE": PROFILE}
    with (
        running_sandbox("read_mongo", users=0, latency_ms=0) as (sandbox, directory),
        ExitStack() as servers_up,
    ):
        creds = sandbox.create_user(passes=passes, expired=expired)
        user_id = int(creds["user_id"])
        rider = [(user_id, creds["access_token"], creds["refresh_token"])]
        servers = {
            store: servers_up.enter_context(seeded_server(sandbox, directory, credentials=rider, **extra))
            for store, extra in (("mongo", env), ("sqlite", {}))
        }
        for server in servers.values():
            total = asyncio.run(_prebuilt(server.address, user_id, directory))
        best = {"mongo": 0.0, "sqlite": 0.0}
        cpu = {"mongo": 0.0, "sqlite": 0.0}
        ferretdb_ms_per_read = 0.0
        for round_index in range(rounds):
            for store, server in servers.items():
                server_cpu, ferretdb_cpu = CpuMeter(server.pid), CpuMeter(ferretdb.proc.pid)
                qps = asyncio.run(_qps(server.address, user_id, VIEWS["FULL"], seconds, in_flight))
                used = server_cpu.used() / seconds
                log(f"read_mongo round {round_index + 1}: {store} {qps:.0f} qps (server cpu {used:.2f})")
                if qps > best[store]:
                    best[store], cpu[store] = qps, used
                    if store == "mongo":
                        ferretdb_ms_per_read = ferretdb_cpu.used() * 1000 / (qps * seconds)
        return emit(
            "read_mongo",
            view="FULL",
            passes=total,
            mongodb_client=CLIENT,
            mongodb_profile=PROFILE,
            qps=round(best["mongo"], 1),
            sqlite_qps=round(best["sqlite"], 1),
            ratio_vs_sqlite=round(best["mongo"] / best["sqlite"], 3),
            server_cpu=round(cpu["mongo"], 2),
            sqlite_server_cpu=round(cpu["sqlite"], 2),
            server_cpu_ms_per_read=round(cpu["mongo"] * 1000 / best["mongo"], 3),
            sqlite_server_cpu_ms_per_read=round(cpu["sqlite"] * 1000 / best["sqlite"], 3),
            ferretdb_cpu_ms_per_read=round(ferretdb_ms_per_read, 3),
            in_flight=in_flight,
            seconds_per_round=seconds,
            rounds=rounds,
        )


def main() -> None:
    parser = bulk_arguments(__doc__, users=300)
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
