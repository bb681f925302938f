"""Shared helpers for the benchmarks: real sandbox and server processes on loopback, tokens
seeded with plain SQL (as an operator would), progress on stderr, results as `BENCH {json}`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from devtools import harness
from devtools.harness import CLI, SandboxProcess, ServerProcess, free_port, wait_until
from devtools.harness import stop_process as stop_process  # re-exported for the scripts
from devtools.rss import RssSampler as RssSampler  # re-exported for the scripts

ROOT = Path(__file__).resolve().parent.parent

SANDBOX_SEED = 7


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> dict[str, Any]:
    """Keys that make the numbers interpretable."""
    return {
        "cores": os.cpu_count(),
        "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }


def emit(name: str, **values: Any) -> dict[str, Any]:
    record = {"name": name, **values, **machine()}
    print("BENCH " + json.dumps(record, separators=(", ", ": ")), flush=True)
    return record


def work_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))


@dataclass
class Sandbox(SandboxProcess):
    """`bytemark-ticket-cache sandbox` in its own process (its CPU is not the server's),
    seeded with `users` riders at start."""

    users: int = 0
    passes: int = 0
    expired: int = 0

    def credentials(self) -> list[tuple[int, str, str]]:
        """The seeded users' tokens: the sandbox derives them deterministically from the seed, so
        the same state built here yields the same tokens (checked against the process below)."""
        from devtools.sandbox.state import SandboxState

        state = SandboxState.seeded(self.users, self.passes, self.expired, first_user_id=1, seed=SANDBOX_SEED)
        creds = [(c.user_id, c.access_token, c.refresh_token) for c in state.credentials()]
        if creds:
            probe = self.call("GET", f"/_sandbox/users/{creds[-1][0]}")
            if probe["access_token"] != creds[-1][1]:
                raise RuntimeError("sandbox tokens are not the expected deterministic ones")
        return creds


def start_sandbox(
    directory: Path, *, users: int, passes: int = 6, expired: int = 3, latency_ms: float = 50.0
) -> Sandbox:
    port = free_port()
    log_file = open(directory / f"sandbox-{port}.log", "wb")
    proc = subprocess.Popen(
        [
            CLI, "sandbox", "--port", str(port), "--users", str(users), "--passes", str(passes),
            "--expired", str(expired), "--latency-ms", str(latency_ms), "--seed", str(SANDBOX_SEED),
        ],
        stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    sandbox = Sandbox(f"http://127.0.0.1:{port}", proc, users, passes, expired)
    try:  # seeding 10,000 riders on a busy machine takes a while
        wait_until(lambda: sandbox.call("GET", "/_sandbox/config") is not None, 120, "sandbox", proc)
    except BaseException:
        stop_process(proc)
        raise
    return sandbox


def seed_tokens(sqlite_path: Path, creds: Iterable[tuple[int, str, str]]) -> int:
    """Plain SQL into `bytemark_tokens`, as the E2E harness and an operator do."""
    rows = [(user_id, access, refresh) for user_id, access, refresh in creds]
    with sqlite3.connect(sqlite_path) as db:
        db.executemany(
            "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at) "
            "VALUES (?, ?, ?, 1, datetime('now'))",
            rows,
        )
    return len(rows)


def start_server(
    sandbox: Sandbox, directory: Path, sqlite_path: Path | None = None, **extra_env: str
) -> ServerProcess:
    """The harness's server, quieter and with the production per-attempt timeout.
    BENCH_SERVER_ENV="K=V,K2=V2" adds settings (e.g. GRPC_EVENT_LOOP=asyncio) for A/B runs."""
    for pair in filter(None, os.environ.get("BENCH_SERVER_ENV", "").split(",")):
        key, _, value = pair.partition("=")
        extra_env.setdefault(key.strip(), value.strip())
    if sqlite_path is not None:
        extra_env["SQLITE_PATH"] = str(sqlite_path)
    extra_env.setdefault("BYTEMARK_TIMEOUT_SECONDS", "10")
    return harness.start_server(sandbox, directory, LOG_LEVEL="WARNING", **extra_env)


def bulk_arguments(description: str | None, *, users: int = 2000) -> argparse.ArgumentParser:
    """The options every bulk benchmark shares; a script adds its own to the parser returned."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the sandbox's delay per call")
    parser.add_argument("--concurrency", type=int, default=64, help="riders in flight (BULK_CONCURRENCY)")
    return parser


@contextmanager
def running_sandbox(
    name: str, *, users: int, latency_ms: float, passes: int = 6, expired: int = 3
) -> Iterator[tuple[Sandbox, Path]]:
    """A seeded sandbox and the run's work directory; the sandbox is stopped on the way out."""
    directory = work_dir(name)
    log(f"{name}: sandbox with {users} users, {latency_ms:g} ms per call")
    sandbox = start_sandbox(directory, users=users, passes=passes, expired=expired, latency_ms=latency_ms)
    try:
        yield sandbox, directory
    finally:
        sandbox.stop()


@contextmanager
def seeded_server(
    sandbox: Sandbox,
    directory: Path,
    *,
    concurrency: int | None = None,
    credentials: Iterable[tuple[int, str, str]] | None = None,
    **env: str,
) -> Iterator[ServerProcess]:
    """A server against `sandbox` with the riders' tokens (all the sandbox's unless `credentials`)
    seeded with SQL; stopped on the way out, also when the benchmark fails."""
    if concurrency is not None:
        env["BULK_CONCURRENCY"] = str(concurrency)
    server = start_server(sandbox, directory, **env)
    try:
        seed_tokens(server.sqlite_path, sandbox.credentials() if credentials is None else credentials)
        yield server
    finally:
        server.stop()


class CpuMeter:
    """User + system CPU seconds of one process (all its threads) since the meter started, and
    per thread, so a report can tell the event loop's thread from the worker threads."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._start = self._total()
        self._threads = self._per_thread()

    def _total(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def _per_thread(self) -> dict[int, float]:
        return {thread.id: thread.user_time + thread.system_time for thread in self._process.threads()}

    def used(self) -> float:
        return self._total() - self._start

    def busiest_thread(self) -> float:
        """CPU seconds of the thread that used most since the start (a server's event loop)."""
        now = self._per_thread()
        return max((seconds - self._threads.get(tid, 0.0) for tid, seconds in now.items()), default=0.0)


def mb(value: float) -> float:
    return round(value / 2**20, 1)


@dataclass
class BulkRun:
    """What one bulk stream reported: running totals and every failed rider's BulkError."""

    done: int = 0
    failed: int = 0
    skipped_not_empty: bool = False
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # (user_id, code, message)

    def failure_lines(self) -> list[str]:
        return [f"user {user_id}: {code} {message}" for user_id, code, message in self.failures]

    def require_complete(self, what: str, users: int) -> None:
        """Raise naming every failed rider's code and message, not just the counts."""
        if self.done == users and not self.failed:
            return
        reasons = "; ".join(self.failure_lines()) or "no error events"
        raise RuntimeError(f"{what} incomplete: done={self.done}/{users} failed={self.failed}: {reasons}")


async def drain_bulk(address: str, method: str, request: Any, on_failure: Any = None) -> BulkRun:
    """Run a bulk RPC to its end; print (and pass to `on_failure`) each failed rider as it comes."""
    import grpc

    from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc

    run = BulkRun()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        async for event in getattr(stub, method)(request):
            run.done, run.failed = int(event.done), int(event.failed)
            run.skipped_not_empty = run.skipped_not_empty or getattr(event, "skipped_not_empty", False)
            for user in (*getattr(event, "batch", ()), event):  # max_batch: users in `batch`
                if not user.HasField("error"):
                    continue
                failure = (int(user.user_id), user.error.code, user.error.message)
                run.failures.append(failure)
                log(f"{method}: FAILED user {failure[0]}: {failure[1]} {failure[2]}")
                if on_failure is not None:
                    on_failure(failure)
    return run
