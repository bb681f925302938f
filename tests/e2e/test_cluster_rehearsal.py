"""A local rehearsal of the chart's cluster, with real processes and no Kubernetes.

Three server replicas share one MariaDB (tokens, refresh log) and one FerretDB (caches, ticket
log). Callers use the client package: round_robin over the three addresses and gRPC's
retryPolicy for UNAVAILABLE. After a bootstrap, every rider gains a free-ticket pass; then the
hourly refresh runs as the chart's Indexed Job runs it: three `bytemark-ticket-cache run
refresh-stale --shard-count 3` processes, each given its JOB_COMPLETION_INDEX; one is SIGKILLed
mid-run and started again with the same index, as Kubernetes replaces a failed pod. Then one server is killed
under load. Nothing may be logged twice or lost, and no call may fail.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncmy
import grpc
import pymongo
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from devtools.ferretdb import FerretDB
from devtools.harness import (
    CLI,
    SandboxProcess,
    ServerProcess,
    free_port,
    server_env,
    start_sandbox,
    stop_process,
    wait_until,
)
from ticket_cache_client.client import TicketCacheClient

pytestmark = [pytest.mark.mysql, pytest.mark.timeout(400)]

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3
SHARDS = 3
# Sized for a shared 2-core machine: FerretDB v1 on SQLite scans every cache for a `find`.
RIDERS = 60  # riders with a token
TOKENLESS = 6  # riders whose token row is empty: never refreshed
PASSES, EXPIRED = 2, 1  # per rider at first; each then gains one free-ticket pass
LOAD_CALLS, LOAD_WORKERS = 160, 6
POD_CONCURRENCY = 4  # riders a shard pod refreshes at once
KILL_SHARD, KILL_AFTER_RIDERS = 1, 5
DELIVERY_SECONDS = 60  # the relay tries every second; FerretDB on a loaded machine is slow


@pytest.fixture(scope="module")
def sandbox(work_dir: Path) -> Iterator[SandboxProcess]:
    process = start_sandbox(work_dir, "--latency-ms", "40")
    yield process
    process.stop()


@pytest_asyncio.fixture
async def mysql_url() -> AsyncIterator[str]:
    """A database of its own on the shared MariaDB, dropped afterwards."""
    name = f"rehearsal_{uuid.uuid4().hex[:10]}"
    conn = await asyncmy.connect(host="127.0.0.1", port=3306, user="root", password="")
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE {name}")
        yield f"mysql://root@127.0.0.1:3306/{name}"
        async with conn.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE {name}")
    finally:
        conn.close()


def start_replicas(sandbox: SandboxProcess, work_dir: Path, stores: dict[str, str]) -> list[ServerProcess]:
    """`migrate` once (the chart's pre-install hook), then the replicas start side by side."""
    env = server_env(sandbox, work_dir / "unused.sqlite3", "127.0.0.1:0", **stores)
    subprocess.run([CLI, "migrate"], env=env, check=True, capture_output=True, timeout=180)
    servers = []
    for _ in range(REPLICAS):
        listen = f"127.0.0.1:{free_port()}"
        env = server_env(sandbox, work_dir / "unused.sqlite3", listen, **stores)
        log = work_dir / f"replica-{listen.rsplit(':', 1)[1]}.log"
        proc = subprocess.Popen([CLI, "serve"], env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
        servers.append(ServerProcess(listen, work_dir / "unused.sqlite3", proc, log, env))
    for server in servers:
        wait_until(lambda s=server: "listening on" in s.logs(), 180, "replica", server.proc, server.log_path)
    return servers


async def seed_tokens(mysql_url: str, sandbox: SandboxProcess) -> tuple[list[int], list[int]]:
    """Riders as an operator loads them: sandbox accounts, token rows by plain SQL."""
    riders = [sandbox.create_user(passes=PASSES, expired=EXPIRED) for _ in range(RIDERS + TOKENLESS)]
    rows = [(int(r["user_id"]), r["access_token"], r["refresh_token"]) for r in riders[:RIDERS]]
    rows += [(int(r["user_id"]), None, None) for r in riders[RIDERS:]]
    conn = await asyncmy.connect(
        host="127.0.0.1", port=3306, user="root", password="", db=mysql_url.rsplit("/", 1)[1]
    )
    try:
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status) VALUES (%s, %s, %s, 1)",
                rows,
            )
        await conn.commit()
    finally:
        conn.close()
    return [row[0] for row in rows[:RIDERS]], [row[0] for row in rows[RIDERS:]]


def start_shard(
    index: int, stores_env: dict[str, str], work_dir: Path, attempt: int
) -> tuple[subprocess.Popen[bytes], Path]:
    """One Indexed Job pod, as the chart's CronJob runs it: Kubernetes sets JOB_COMPLETION_INDEX."""
    log = work_dir / f"shard-{index}-{attempt}.log"
    command = [
        CLI,
        "run",
        "refresh-stale",
        "--json",
        "--shard-count",
        str(SHARDS),
        "--max-age",
        "1",
        "--concurrency",
        str(POD_CONCURRENCY),
    ]
    env = {**stores_env, "JOB_COMPLETION_INDEX": str(index), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    errors = open(work_dir / f"shard-{index}-{attempt}.stderr", "wb")
    proc = subprocess.Popen(command, env=env, stdout=open(log, "wb"), stderr=errors)
    return proc, log


def progress_lines(log: Path) -> int:
    """Riders the pod has reported (one JSON line each)."""
    text = log.read_text() if log.exists() else ""
    return sum(1 for line in text.splitlines() if line.startswith("{") and '"done"' in line)


async def wait_exit(proc: subprocess.Popen[bytes], seconds: float) -> int:
    return await asyncio.to_thread(proc.wait, seconds)


async def run_indexed_job(stores_env: dict[str, str], work_dir: Path) -> dict[str, Any]:
    pods = {index: start_shard(index, stores_env, work_dir, 0) for index in range(SHARDS)}
    killed_proc, killed_log = pods[KILL_SHARD]
    deadline = time.monotonic() + 120
    while progress_lines(killed_log) < KILL_AFTER_RIDERS:
        assert killed_proc.poll() is None, killed_log.read_text()
        assert time.monotonic() < deadline, "shard made no progress"
        await asyncio.sleep(0.05)
    killed_proc.send_signal(signal.SIGKILL)
    await wait_exit(killed_proc, 10)
    done_before_kill = progress_lines(killed_log)
    pods[KILL_SHARD] = start_shard(KILL_SHARD, stores_env, work_dir, 1)  # the replacement pod, same index
    codes = {index: await wait_exit(proc, 180) for index, (proc, _) in pods.items()}
    logs = {index: log.read_text() for index, (_, log) in pods.items()}
    assert codes == dict.fromkeys(range(SHARDS), 0), logs
    return {
        "killed_shard_done_before_kill": done_before_kill,
        "riders_reported_by_final_pods": sum(progress_lines(log) for _, log in pods.values()),
    }


async def load_with_a_server_killed(target: str, riders: list[int], victim: ServerProcess) -> dict[str, int]:
    """Reads from many callers; one replica is SIGKILLed a quarter of the way through."""
    calls = iter(range(LOAD_CALLS))
    failures: Counter[str] = Counter()
    completed = 0

    async def caller(client: TicketCacheClient) -> None:
        nonlocal completed
        for n in calls:
            user_id = riders[n % len(riders)]
            try:
                if n % 2:
                    await client.get(user_id, view=pb.CACHE_VIEW_SUMMARY, deadline=20)
                else:
                    await client.check_timeout(user_id, max_age_seconds=86400, deadline=20)
            except grpc.aio.AioRpcError as error:
                failures[error.code().name] += 1
            completed += 1
            if completed == LOAD_CALLS // 4:
                victim.proc.send_signal(signal.SIGKILL)

    async with TicketCacheClient(target) as client:
        await client.wait_ready(10)
        await asyncio.gather(*(caller(client) for _ in range(LOAD_WORKERS)))
    await wait_exit(victim.proc, 10)
    return {
        "load_calls": completed,
        "failed_calls": sum(failures.values()),
        **{f"failed_{k}": v for k, v in failures.items()},
    }


async def recheck_all(target: str, riders: list[int]) -> Counter[str]:
    """Every cache against Bytemark now: UNCHANGED means the stored cache is exactly Bytemark's data."""
    outcomes: Counter[str] = Counter()
    queue = iter(riders)
    async with TicketCacheClient(target) as client:

        async def worker() -> None:
            for user_id in queue:
                result = await client.check(user_id, deadline=30)
                outcomes[pb.Outcome.Name(result.outcome)] += 1

        await asyncio.gather(*(worker() for _ in range(16)))
    return outcomes


def mongo_state(ferretdb: FerretDB, database: str) -> tuple[set[int], Counter[tuple[Any, ...]]]:
    """(riders with a cache, ticket-log rows counted by what they record)."""
    with pymongo.MongoClient(ferretdb.url(database)) as client:
        db = client[database]
        cached = {doc["user_id"] for doc in db["bytemarkticketscaches"].find({}, {"user_id": 1})}
        rows = Counter(
            (d["user_id"], d["pass_uuid"], d["list"], d["change"], d["payload_hash"])
            for d in db["bytemarkticketslogs"].find({}, {"_id": 0, "payload": 0})
        )
    return cached, rows


async def refresh_log_rows(mysql_url: str) -> Counter[tuple[int, int]]:
    """Refresh-log rows (free tickets seen) counted by (user, activity)."""
    conn = await asyncmy.connect(
        host="127.0.0.1", port=3306, user="root", password="", db=mysql_url.rsplit("/", 1)[1]
    )
    try:
        async with conn.cursor() as cursor:
            await cursor.execute("SELECT user_id, activity_type FROM bytemark_ticket_refresh_log")
            return Counter((int(user), int(activity)) for user, activity in await cursor.fetchall())
    finally:
        conn.close()


async def delivered_state(
    ferretdb: FerretDB, database: str, mysql_url: str
) -> tuple[set[int], Counter[tuple[Any, ...]], Counter[tuple[int, int]]]:
    """The stores once the replicas' relays have delivered what the shard pods left in the outbox
    (a SIGKILLed pod's riders included): one ticket-log and one refresh-log row per rider, or
    what there is after DELIVERY_SECONDS."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while True:
        cached, log_rows = mongo_state(ferretdb, database)
        refresh_rows = await refresh_log_rows(mysql_url)
        delivered = min(sum(log_rows.values()), sum(refresh_rows.values())) >= RIDERS
        if delivered or time.monotonic() > deadline:
            return cached, log_rows, refresh_rows
        await asyncio.sleep(0.5)


def duplicated(rows: Counter[Any]) -> int:
    return sum(n - 1 for n in rows.values())


async def bootstrap(target: str) -> int:
    async with TicketCacheClient(target) as client:
        events = [event async for event in client.bootstrap(concurrency=8)]
    return sum(1 for event in events if event.HasField("result"))


async def test_three_replicas_three_shards_one_pod_and_one_server_killed(
    sandbox: SandboxProcess, work_dir: Path, ferretdb_process: FerretDB, mysql_url: str
) -> None:
    started = time.monotonic()
    phases: dict[str, float] = {}

    def phase(name: str) -> None:
        phases[name] = round(time.monotonic() - started - sum(phases.values()), 1)

    database = f"rehearsal{uuid.uuid4().hex[:8]}"
    stores = {"MYSQL_URL": mysql_url, "MONGODB_URL": ferretdb_process.url(database), "BULK_CONCURRENCY": "4"}
    servers: list[ServerProcess] = []
    try:
        servers = await asyncio.to_thread(start_replicas, sandbox, work_dir, stores)
        target = "ipv4:" + ",".join(server.address for server in servers)
        riders, tokenless = await seed_tokens(mysql_url, sandbox)
        phase("start_seconds")

        built = await bootstrap(target)
        for user_id in riders:
            sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {"free": True})
        await asyncio.sleep(2.1)  # stale means older than MAX_AGE_SECONDS (1) in whole seconds
        phase("bootstrap_seconds")

        job = await run_indexed_job(servers[0].env, work_dir)
        cached, log_rows, refresh_rows = await delivered_state(ferretdb_process, database, mysql_url)
        phase("indexed_job_seconds")

        load = await load_with_a_server_killed(target, riders, servers[0])
        phase("load_seconds")
        outcomes = await recheck_all(target, riders)
        _, log_rows_after = mongo_state(ferretdb_process, database)
        phase("recheck_seconds")
    finally:
        for server in servers:
            stop_process(server.proc)

    figures = {
        "replicas": REPLICAS,
        "shards": SHARDS,
        "riders_with_token": RIDERS,
        "riders_without_token": TOKENLESS,
        "bootstrapped": built,
        "riders_cached": len(cached & set(riders)),
        "tokenless_cached": len(cached & set(tokenless)),
        "ticket_log_rows": sum(log_rows.values()),
        "refresh_log_rows": sum(refresh_rows.values()),
        "duplicated_log_rows": duplicated(log_rows_after) + duplicated(refresh_rows),
        "log_rows_lost_to_the_kill": RIDERS - min(sum(log_rows.values()), sum(refresh_rows.values())),
        **job,
        **load,
        "recheck_outcomes": dict(outcomes),
        **phases,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    (work_dir / "rehearsal.json").write_text(json.dumps(figures, indent=2))
    print("REHEARSAL " + json.dumps(figures), flush=True)

    assert built == RIDERS
    assert job["killed_shard_done_before_kill"] >= KILL_AFTER_RIDERS
    assert cached == set(riders)  # every rider with a token, and only those
    # At most one "new" row per rider for the free pass (ticket log) and one free-ticket row
    # (refresh log), however often the rider was refreshed: never a duplicate.
    assert duplicated(log_rows) == duplicated(refresh_rows) == 0 and log_rows_after == log_rows
    assert {key[0] for key in log_rows} <= set(riders) and {user for user, _ in refresh_rows} <= set(riders)
    # The outbox: a rider's log rows are stored in the same write as its cache, so those of the
    # riders a SIGKILLed pod had in flight wait in the cache documents and a replica delivers them.
    assert figures["log_rows_lost_to_the_kill"] == 0
    assert load["load_calls"] == LOAD_CALLS and load["failed_calls"] == 0
    assert outcomes == Counter({"OUTCOME_UNCHANGED": RIDERS})
