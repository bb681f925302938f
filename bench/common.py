"""Shared helpers for the benchmarks: real sandbox and server processes on loopback, tokens
seeded with plain SQL (as an operator would), progress on stderr, results as `BENCH {json}`."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

BIN = Path(sys.executable).parent
CLI = str(BIN / "bytemark-ticket-cache")
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def work_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"bench-{prefix}-"))


def _wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Sandbox:
    """`bytemark-ticket-cache sandbox` in its own process (its CPU is not the server's)."""

    url: str
    proc: subprocess.Popen[bytes]
    users: int
    passes: int
    expired: int

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def credentials(self) -> list[tuple[int, str, str]]:
        """The seeded users' tokens: the sandbox derives them deterministically from the seed, so
        the same state built here yields the same tokens (checked against the process below)."""
        from adapters.sandbox.state import SandboxState

        state = SandboxState.seeded(self.users, self.passes, self.expired, first_user_id=1, seed=SANDBOX_SEED)
        creds = [(c.user_id, c.access_token, c.refresh_token) for c in state.credentials()]
        if creds:
            probe = self.call("GET", f"/_sandbox/users/{creds[-1][0]}")
            if probe["access_token"] != creds[-1][1]:
                raise RuntimeError("sandbox tokens are not the expected deterministic ones")
        return creds

    def create_user(self, passes: int, expired: int) -> dict[str, Any]:
        return dict(self.call("POST", "/_sandbox/users", {"passes": passes, "expired": expired}))

    def stop(self) -> None:
        stop_process(self.proc)


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
    _wait_until(lambda: sandbox.call("GET", "/_sandbox/config") is not None, 30, "sandbox", proc)
    return sandbox


@dataclass
class Server:
    """`bytemark-ticket-cache serve` on SQLite, in its own process."""

    address: str
    sqlite_path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def sql(self, statement: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.sqlite_path, timeout=30) as db:
            return list(db.execute(statement, tuple(params)))

    def stop(self) -> None:
        stop_process(self.proc)


def server_env(sandbox: Sandbox, sqlite_path: Path, listen: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "MONGODB_", "GRPC_", "SLACK_"))}
    env.update(
        {
            "GRPC_LISTEN": listen,
            "SQLITE_PATH": str(sqlite_path),
            "BYTEMARK_CUSTOMER_API_URL": sandbox.url,
            "BYTEMARK_ACCOUNT_API_URL": sandbox.url,
            "BYTEMARK_CLIENT_ID": "sandbox-client",
            "BYTEMARK_CLIENT_SECRET": "sandbox-secret",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


def migrate(sandbox: Sandbox, sqlite_path: Path) -> None:
    env = server_env(sandbox, sqlite_path, "127.0.0.1:0")
    subprocess.run([CLI, "migrate"], env=env, check=True, capture_output=True, timeout=60)


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
) -> Server:
    port = free_port()
    listen = f"127.0.0.1:{port}"
    path = sqlite_path or directory / f"cache-{port}.sqlite3"
    env = server_env(sandbox, path, listen, **extra_env)
    migrate(sandbox, path)
    log_path = directory / f"server-{port}.log"
    proc = subprocess.Popen([CLI, "serve"], stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)
    server = Server(listen, path, proc, log_path, env)
    _wait_until(lambda: "listening on" in log_path.read_text(errors="replace"), 30, "gRPC server", proc)
    return server


class RssSampler:
    """Peak RSS of one process, sampled from a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import threading

        self._process = psutil.Process(pid)
        self._interval = interval
        self.peak = self._process.memory_info().rss
        self.start_rss = self.peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(self._interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, self._process.memory_info().rss)
        except psutil.Error:
            pass


def mb(value: float) -> float:
    return round(value / 2**20, 1)
