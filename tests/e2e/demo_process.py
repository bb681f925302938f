"""`bytemark-ticket-cache demo` as the README's reader starts it: a real process on a free port,
SQLite in a work folder, the sandbox inside; ready once it says it listens."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.harness import CLI, free_port, stop_process


@dataclass
class Demo:
    address: str
    proc: subprocess.Popen[bytes]
    output: Path

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def demo_env(address: str, work: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL_", "MONGODB_", "GRPC_", "SLACK_"))}
    # A free HTTP port too: the demo's default (127.0.0.1:8080) would clash between parallel demos.
    env.update(
        GRPC_LISTEN=address,
        HTTP_LISTEN=f"127.0.0.1:{free_port()}",
        SQLITE_PATH=str(work / "demo.sqlite3"),
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


@contextmanager
def running_demo(work: Path, ready_within: float = 60.0, **extra_env: str) -> Iterator[Demo]:
    address = f"127.0.0.1:{free_port()}"
    output = work / "demo.log"
    with open(output, "wb") as log:
        proc = subprocess.Popen(
            [CLI, "demo"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=demo_env(address, work, **extra_env),
            cwd=work,
        )
    running = Demo(address, proc, output)
    try:
        deadline = time.monotonic() + ready_within
        while f"listening on {address}" not in running.text():
            assert proc.poll() is None, f"demo exited with {proc.returncode}:\n{running.text()}"
            assert time.monotonic() < deadline, f"demo not listening after {ready_within}s:\n{running.text()}"
            time.sleep(0.05)
        yield running
    finally:
        stop_process(proc)
