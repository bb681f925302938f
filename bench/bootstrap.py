"""BuildCacheIfEmpty over N users against the sandbox at 50 ms per call.

Same server process for both measurements: first a one-user-at-a-time run (concurrency 1),
cancelled after SAMPLE users, then the caches are deleted with plain SQL and the full run
goes at concurrency C. ratio_vs_sequential scales the sequential rate to N users;
ratio_vs_limit compares users/s with the ideal C / L (N * L / C seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import time
from pathlib import Path

import grpc
import psutil
from common import BulkRun, drain_bulk, emit, log, seed_tokens, start_sandbox, start_server, work_dir

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc


async def _sequential_sample(address: str, sample: int) -> float:
    """Seconds per user at concurrency 1, over `sample` users (after a few warm-up users)."""
    warmup = 5
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        call = stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(concurrency=1))
        seen = 0
        started = 0.0
        async for event in call:
            if event.skipped_not_empty:
                raise RuntimeError("store not empty")
            if event.error.code:
                raise RuntimeError(f"user {event.user_id}: {event.error.code} {event.error.message}")
            seen += 1
            if seen == warmup:
                started = time.perf_counter()
            if seen == warmup + sample:
                elapsed = time.perf_counter() - started
                call.cancel()
                break
    return elapsed / sample


async def _full_run(address: str, concurrency: int, max_batch: int = 0) -> tuple[float, BulkRun]:
    started = time.perf_counter()
    request = pb.BuildCacheIfEmptyRequest(concurrency=concurrency, max_batch=max_batch)
    run = await drain_bulk(address, "BuildCacheIfEmpty", request)
    if run.skipped_not_empty:
        raise RuntimeError("store not empty")
    return time.perf_counter() - started, run


def _maybe_profile(pid: int, directory: Path) -> subprocess.Popen[bytes] | None:
    """BENCH_PYSPY=/path/to/py-spy records the server during the full run (collapsed stacks)."""
    pyspy = os.environ.get("BENCH_PYSPY")
    if not pyspy:
        return None
    out = directory / "bootstrap-server.pyspy.txt"
    log(f"bootstrap: py-spy recording the server into {out}")
    proc = subprocess.Popen([pyspy, "record", "-p", str(pid), "-r", "200", "-f", "raw", "-o", str(out)])
    time.sleep(1.0)
    return proc


def run(users: int, latency_ms: float, concurrency: int, sample: int, max_batch: int) -> dict[str, object]:
    directory = work_dir("bootstrap")
    log(f"bootstrap: sandbox with {users} users, {latency_ms:g} ms per call")
    sandbox = start_sandbox(directory, users=users, latency_ms=latency_ms)
    server = None
    try:
        server = start_server(sandbox, directory, BULK_CONCURRENCY=str(concurrency))
        seed_tokens(server.sqlite_path, sandbox.credentials())
        log(f"bootstrap: sequential baseline on {sample} users (concurrency 1)")
        per_user = asyncio.run(_sequential_sample(server.address, sample))
        time.sleep(0.5)  # the user in flight at the cancel finishes its write
        server.query("DELETE FROM bytemark_tickets_cache")
        server.query("DELETE FROM bytemark_tickets_log")
        log(f"bootstrap: sequential {per_user * 1000:.1f} ms/user; full run at concurrency {concurrency}")
        server_proc, sandbox_proc = psutil.Process(server.pid), psutil.Process(sandbox.proc.pid)
        cpu_before = (server_proc.cpu_times(), sandbox_proc.cpu_times())
        profiler = _maybe_profile(server.pid, directory)
        seconds, bootstrap = asyncio.run(_full_run(server.address, concurrency, max_batch))
        cpu_after = (server_proc.cpu_times(), sandbox_proc.cpu_times())
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait()
        cached = server.query("SELECT COUNT(*) FROM bytemark_tickets_cache")[0][0]
        bootstrap.require_complete("bootstrap", users)
        if cached != users:
            raise RuntimeError(f"bootstrap incomplete: {cached} caches stored for {users} users")
        server_cpu = sum(cpu_after[0][:2]) - sum(cpu_before[0][:2])
        sandbox_cpu = sum(cpu_after[1][:2]) - sum(cpu_before[1][:2])
        sequential_seconds = per_user * users
        ideal_seconds = users * (latency_ms / 1000) / concurrency
        return emit(
            "bootstrap",
            users=users,
            latency_ms=latency_ms,
            concurrency=concurrency,
            max_batch=max_batch,
            seconds=round(seconds, 3),
            ratio_vs_sequential=round(sequential_seconds / seconds, 2),
            ratio_vs_limit=round(ideal_seconds / seconds, 3),
            users_per_s=round(users / seconds, 1),
            ideal_users_per_s=round(concurrency / (latency_ms / 1000), 1),
            sequential_ms_per_user=round(per_user * 1000, 2),
            sequential_sample=sample,
            server_cpu_s=round(server_cpu, 2),
            sandbox_cpu_s=round(sandbox_cpu, 2),
            server_cpu_ms_per_user=round(server_cpu * 1000 / users, 3),
        )
    finally:
        if server is not None:
            server.stop()
        sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--sample", type=int, default=100)
    # progress users per stream message in the full run (0: one message per user)
    parser.add_argument("--max-batch", type=int, default=int(os.environ.get("BENCH_MAX_BATCH", "0")))
    args = parser.parse_args()
    run(args.users, args.latency_ms, args.concurrency, args.sample, args.max_batch)


if __name__ == "__main__":
    main()
