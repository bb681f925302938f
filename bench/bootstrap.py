"""BuildCacheIfEmpty over N users against the sandbox at 50 ms per call.

Same server process for both measurements: first a one-user-at-a-time run (concurrency 1),
cancelled after SAMPLE users, then the caches are deleted with plain SQL and the full run
goes at concurrency C. ratio_vs_sequential scales the sequential rate to N users;
ratio_vs_limit compares users/s with the ideal C / L (N * L / C seconds).

The full run asks for up to 64 riders per progress message (`max_batch`), as a bulk caller
should: one message per rider cost the server 15-25% more CPU (bench/RESULTS.md, round 4).
`--max-batch 0` (or BENCH_MAX_BATCH=0) measures one message per rider.

Pinned mode (`--modes pinned`; by default both, the `bootstrap` line then `bootstrap_pinned`):
the server's process on one core, the sandbox and this client on the other
(`os.sched_setaffinity`), so the ratios measure the server with a core of its own instead of
sharing both with the processes that drive it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import grpc
from common import BulkRun, CpuMeter, bulk_arguments, drain_bulk, emit, log, running_sandbox, seeded_server

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


def _pin(pid: int, cores: set[int]) -> None:
    """Every thread of `pid` on `cores` (sched_setaffinity on a pid moves only that thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cores)


@contextmanager
def _pinned(server_pid: int, sandbox_pid: int) -> Iterator[None]:
    """The server on the first core, the sandbox and this process on the second."""
    everything = os.sched_getaffinity(0)
    first, second = sorted(everything)[:2]
    _pin(server_pid, {first})
    _pin(sandbox_pid, {second})
    _pin(os.getpid(), {second})
    try:
        yield
    finally:
        _pin(os.getpid(), everything)


def run(
    users: int, latency_ms: float, concurrency: int, sample: int, max_batch: int, pinned: bool = False
) -> dict[str, object]:
    with (
        running_sandbox("bootstrap", users=users, latency_ms=latency_ms) as (sandbox, directory),
        seeded_server(sandbox, directory, concurrency=concurrency) as server,
        _pinned(server.pid, sandbox.proc.pid) if pinned else nullcontext(),
    ):
        log(f"bootstrap: sequential baseline on {sample} users (concurrency 1)")
        per_user = asyncio.run(_sequential_sample(server.address, sample))
        time.sleep(0.5)  # the user in flight at the cancel finishes its write
        server.query("DELETE FROM bytemark_tickets_cache")
        server.query("DELETE FROM bytemark_tickets_log")
        log(f"bootstrap: sequential {per_user * 1000:.1f} ms/user; full run at concurrency {concurrency}")
        server_cpu, sandbox_cpu = CpuMeter(server.pid), CpuMeter(sandbox.proc.pid)
        profiler = _maybe_profile(server.pid, directory)
        seconds, bootstrap = asyncio.run(_full_run(server.address, concurrency, max_batch))
        used, loop_used, sandbox_used = server_cpu.used(), server_cpu.busiest_thread(), sandbox_cpu.used()
        if profiler is not None:
            profiler.send_signal(2)
            profiler.wait()
        cached = server.query("SELECT COUNT(*) FROM bytemark_tickets_cache")[0][0]
        bootstrap.require_complete("bootstrap", users)
        if cached != users:
            raise RuntimeError(f"bootstrap incomplete: {cached} caches stored for {users} users")
        sequential_seconds = per_user * users
        ideal_seconds = users * (latency_ms / 1000) / concurrency
        return emit(
            "bootstrap_pinned" if pinned else "bootstrap",
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
            server_cpu_s=round(used, 2),
            sandbox_cpu_s=round(sandbox_used, 2),
            server_cpu_ms_per_user=round(used * 1000 / users, 3),
            # the event loop's thread: how close the server is to one full core
            server_loop_cpu_ms_per_user=round(loop_used * 1000 / users, 3),
        )


def main() -> None:
    parser = bulk_arguments(__doc__)
    parser.add_argument("--sample", type=int, default=100)
    # users per progress message in the full run (0: one message per user)
    parser.add_argument("--max-batch", type=int, default=int(os.environ.get("BENCH_MAX_BATCH", "64")))
    parser.add_argument(
        "--modes", nargs="+", choices=("unpinned", "pinned"), default=["unpinned", "pinned"],
        help="pinned: the server on one core, the sandbox and the client on the other",
    )  # fmt: skip
    args = parser.parse_args()
    if "pinned" in args.modes and len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("bootstrap: pinned mode needs two cores")
    for mode in args.modes:
        run(args.users, args.latency_ms, args.concurrency, args.sample, args.max_batch, mode == "pinned")


if __name__ == "__main__":
    main()
