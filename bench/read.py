"""GetTicketCache for a cached user with 200 passes (FULL and RAW views), real server versus a
bare grpc.aio server returning the same pre-built response: same client, same run.

Both servers are separate processes (the client's CPU is not theirs); rounds alternate
real/bare so drift on the machine hits both alike, and the best round of each counts.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import grpc
import psutil
from common import ROOT, emit, log, seed_tokens, start_sandbox, start_server, stop_process, work_dir

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc

VIEWS = {"FULL": pb.CACHE_VIEW_FULL, "RAW": pb.CACHE_VIEW_RAW}
MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE)]


async def _qps(address: str, user_id: int, view: int, seconds: float, in_flight: int) -> float:
    """Calls per second with `in_flight` concurrent callers on one channel, after a warm-up."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        request = pb.GetTicketCacheRequest(user_id=user_id, view=view)
        for _ in range(20):
            await stub.GetTicketCache(request)
        calls = 0
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal calls
            while time.perf_counter() < deadline:
                await stub.GetTicketCache(request)
                calls += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(in_flight)))
        return calls / (time.perf_counter() - started)


async def _prebuilt(address: str, user_id: int, directory: Path) -> int:
    """Fetch each view's response once from the real server; the bare server replays them."""
    async with grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        check = await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))
        passes = check.result.counts.passes + check.result.counts.passes4
        for view in VIEWS.values():
            response = await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=view))
            (directory / f"{view}.bin").write_bytes(response.SerializeToString())
    return passes


async def _in_process_costs(sqlite_path: Path, user_id: int, view: int) -> dict[str, float]:
    """Server-side CPU of one read without gRPC, in this process on the same SQLite file:
    cold (no memo at all), entry memo only (a cache whose row changed since the last read),
    and hot (row and response remembered: the steady state of the qps figure)."""
    from adapters.driven.storage.sqlite.cache_store import SqliteCacheStore
    from adapters.driven.storage.sqlite.database import SqliteDatabase
    from adapters.driving.grpc_api.cache_encoding import CacheEncoder

    db = SqliteDatabase(str(sqlite_path))
    await db.connect()
    try:
        cold_store, hot_store = SqliteCacheStore(db, row_memo_bytes=0), SqliteCacheStore(db)
        cold, warm, hot = CacheEncoder(memo_bytes=0), CacheEncoder(), CacheEncoder()

        async def cold_read() -> None:
            cache = await cold_store.get(user_id)
            assert cache is not None
            response = pb.GetTicketCacheResponse()
            cold.write_cache(response.cache, cache, view)  # type: ignore[arg-type]
            response.SerializeToString()

        async def entry_memo_read() -> None:
            cache = await cold_store.get(user_id)
            assert cache is not None
            response = pb.GetTicketCacheResponse()
            warm.write_cache(response.cache, cache, view)  # type: ignore[arg-type]
            response.SerializeToString()

        async def hot_read() -> None:
            cache = await hot_store.get(user_id)
            assert cache is not None
            hot.response_for(cache, view).SerializeToString()  # type: ignore[arg-type]

        costs = {}
        for name, read_once in (("cold", cold_read), ("entry_memo", entry_memo_read), ("hot", hot_read)):
            await read_once()
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(20):
                    await read_once()
                best = min(best, (time.perf_counter() - started) / 20)
            costs[f"{name}_read_ms"] = round(best * 1000, 3)
        return costs
    finally:
        await db.close()


def _start_bare(directory: Path, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "bare_server.py"), str(directory), *flags],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("port "):
        raise RuntimeError(f"bare server did not start: {line!r}")
    return proc, f"127.0.0.1:{int(line.split()[1])}"


def run(passes: int, expired: int, seconds: float, rounds: int, in_flight: int) -> list[dict[str, object]]:
    directory = work_dir("read")
    sandbox = start_sandbox(directory, users=0, latency_ms=0)
    server = bare = chained = None
    records = []
    try:
        server = start_server(sandbox, directory)
        creds = sandbox.create_user(passes=passes, expired=expired)
        user_id = int(creds["user_id"])
        seed_tokens(server.sqlite_path, [(user_id, creds["access_token"], creds["refresh_token"])])
        total = asyncio.run(_prebuilt(server.address, user_id, directory))
        log(f"read: user {user_id} cached with {total} passes; starting the bare grpc.aio server")
        bare, bare_address = _start_bare(directory)
        chained, chained_address = _start_bare(directory, "--interceptors")
        server_ps, bare_ps = psutil.Process(server.pid), psutil.Process(bare.pid)
        for view_name, view in VIEWS.items():
            real_best = bare_best = 0.0
            real_cpu = bare_cpu = 0.0
            for round_index in range(rounds):
                for label, address, proc in (
                    ("real", server.address, server_ps),
                    ("bare", bare_address, bare_ps),
                ):
                    before = sum(proc.cpu_times()[:2])
                    qps = asyncio.run(_qps(address, user_id, view, seconds, in_flight))
                    cpu = (sum(proc.cpu_times()[:2]) - before) / seconds
                    log(
                        f"read {view_name} round {round_index + 1}: {label} {qps:.0f} qps"
                        f" (server cpu {cpu:.2f})"
                    )
                    if label == "real" and qps > real_best:
                        real_best, real_cpu = qps, cpu
                    elif label == "bare" and qps > bare_best:
                        bare_best, bare_cpu = qps, cpu
            costs = asyncio.run(_in_process_costs(server.sqlite_path, user_id, view))
            # Diagnostic: the bare server plus the service's interceptor chain, one round.
            costs["bare_with_interceptors_qps"] = round(
                asyncio.run(_qps(chained_address, user_id, view, seconds, in_flight)), 1
            )
            records.append(
                emit(
                    "read" if view_name == "FULL" else "read_raw",
                    view=view_name,
                    passes=total,
                    qps=round(real_best, 1),
                    baseline_qps=round(bare_best, 1),
                    ratio_vs_bare_grpc=round(real_best / bare_best, 3),
                    server_cpu=round(real_cpu, 2),
                    baseline_server_cpu=round(bare_cpu, 2),
                    in_flight=in_flight,
                    seconds_per_round=seconds,
                    rounds=rounds,
                    **costs,
                )
            )
        return records
    finally:
        for proc in (bare, chained):
            if proc is not None:
                stop_process(proc)
        if server is not None:
            server.stop()
        sandbox.stop()


def read_arguments(rounds: int = 2) -> argparse.ArgumentParser:
    """The options of a read benchmark (this one, bench/tracing.py)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--passes", type=int, default=150, help="v1 passes of the user")
    parser.add_argument("--expired", type=int, default=50, help="EXPIRED passes of the user")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--in-flight", type=int, default=4)
    return parser


def main() -> None:
    args = read_arguments().parse_args()
    run(args.passes, args.expired, args.seconds, args.rounds, args.in_flight)


if __name__ == "__main__":
    main()
