"""Start the real processes E2E tests talk to: the Bytemark sandbox and the gRPC server.

Tokens are seeded the way an operator would: plain SQL into the SQLite file the server uses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.ports import free_port

BIN = Path(sys.executable).parent
CLI = str(BIN / "bytemark-ticket-cache")
GRPCURL = str(BIN / "grpcurl")
SERVICE = "bytemark.ticketcache.v1.TicketCacheService"


def wait_until(  # type: ignore[no-untyped-def]
    predicate, timeout: float, what: str, proc: subprocess.Popen[bytes], log_path: Path | None = None
) -> None:
    """Poll `predicate` until true; fail when `proc` exits or time runs out, quoting the end of
    its log when given (the failure is then readable from CI's output alone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}{_log_tail(log_path)}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready after {timeout}s{_log_tail(log_path)}")


def _log_tail(log_path: Path | None, lines: int = 30) -> str:
    if log_path is None:
        return ""
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"; its log {log_path} is unreadable: {exc}"
    return f"; the end of its log {log_path}:\n" + "\n".join(tail)


def held_to_file_modes(argv: list[str]) -> list[str]:
    """`argv` run so that even root is held to file modes: as root, through util-linux's setpriv,
    which drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set before the exec.
    (A preexec_fn doing the same forks a process whose gRPC threads' fork handlers can abort the
    child; setpriv needs no Python between fork and exec.)"""
    if os.geteuid() != 0:
        return argv
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *argv]


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class SandboxProcess:
    url: str
    proc: subprocess.Popen[bytes]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text else None

    def create_user(self, passes: int = 4, expired: int = 2, user_id: int | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"passes": passes, "expired": expired}
        if user_id is not None:
            body["user_id"] = user_id
        return dict(self.call("POST", "/_sandbox/users", body))

    def add_faults(self, *rules: Mapping[str, Any]) -> None:
        self.call("POST", "/_sandbox/faults", list(rules))

    def clear_faults(self) -> None:
        self.call("DELETE", "/_sandbox/faults")

    def stats(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_sandbox/stats"))

    def stop(self) -> None:
        stop_process(self.proc)


def start_sandbox(log_dir: Path, *extra_args: str) -> SandboxProcess:
    port = free_port()
    log = open(log_dir / f"sandbox-{port}.log", "wb")
    proc = subprocess.Popen(
        [CLI, "sandbox", "--port", str(port), "--users", "0", *extra_args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    sandbox = SandboxProcess(f"http://127.0.0.1:{port}", proc)
    try:
        wait_until(lambda: sandbox.call("GET", "/_sandbox/config") is not None, 90, "sandbox", proc)
    except BaseException:
        stop_process(proc)
        raise
    return sandbox


@dataclass
class ServerProcess:
    address: str
    sqlite_path: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def seed_token(self, user_id: int, access: str | None, refresh: str | None = None) -> None:
        with sqlite3.connect(self.sqlite_path) as db:
            db.execute(
                "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at) "
                "VALUES (?, ?, ?, 1, datetime('now'))",
                (user_id, access, refresh),
            )

    def seed_user(self, sandbox: SandboxProcess, passes: int = 4, expired: int = 2) -> int:
        creds = sandbox.create_user(passes=passes, expired=expired)
        self.seed_token(int(creds["user_id"]), creds["access_token"], creds["refresh_token"])
        return int(creds["user_id"])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.sqlite_path, timeout=30) as db:
            return list(db.execute(sql, params))

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.proc)


def server_env(sandbox: SandboxProcess, sqlite_path: Path, listen: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "MONGODB_", "GRPC_", "SLACK_"))}
    env.update(
        {
            "GRPC_LISTEN": listen,
            "SQLITE_PATH": str(sqlite_path),
            "BYTEMARK_CUSTOMER_API_URL": sandbox.url,
            "BYTEMARK_ACCOUNT_API_URL": sandbox.url,
            "BYTEMARK_CLIENT_ID": "sandbox-client",
            "BYTEMARK_CLIENT_SECRET": "sandbox-secret",
            "BYTEMARK_TIMEOUT_SECONDS": "2",
            "LOG_LEVEL": "DEBUG",
            "LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    if "MONGODB_URL" in env and "MONGODB_PROFILE" not in env and os.environ.get("TEST_MONGODB_PROFILE"):
        env["MONGODB_PROFILE"] = os.environ["TEST_MONGODB_PROFILE"]  # the suite's server profile
    return env


def start_server(
    sandbox: SandboxProcess,
    work_dir: Path,
    *,
    wait_ready: bool = True,
    migrate: bool = False,
    **extra_env: str,
) -> ServerProcess:
    """`serve` (it runs the same migration as `migrate` before it listens). With wait_ready=False
    the tables may not exist yet when this returns: pass migrate=True to run `migrate` first."""
    port = free_port()
    listen = f"127.0.0.1:{port}"
    sqlite_path = Path(extra_env.pop("SQLITE_PATH", str(work_dir / f"cache-{port}.sqlite3")))
    env = server_env(sandbox, sqlite_path, listen, **extra_env)
    if migrate:  # `serve` migrates at start-up too; a separate step costs a process start
        subprocess.run([CLI, "migrate"], env=env, check=True, capture_output=True, timeout=60)
    log_path = work_dir / f"server-{port}.log"
    proc = subprocess.Popen([CLI, "serve"], stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)
    server = ServerProcess(listen, sqlite_path, proc, log_path, env)
    if wait_ready:
        try:
            wait_until(lambda: "listening on" in server.logs(), 90, "gRPC server", proc, log_path)
        except BaseException:  # also a test timeout: a server that never came up must not outlive it
            stop_process(proc)
            raise
    return server


def grpcurl(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GRPCURL, *args], capture_output=True, text=True, timeout=timeout)
