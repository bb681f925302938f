"""The progress bar in a real terminal: `refresh-stale` under a pseudo-terminal (util-linux `script`)
over a 2,000-rider sandbox, with a few riders failing and a few without a valid token."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import CLI, SandboxProcess, ServerProcess, free_port, start_server, wait_until
from devtools.sandbox.state import SandboxState
from tests.e2e.cli_runner import client_env

RIDERS = 2000
SEED = 13
FAILING = (7, 8, 9)  # their v1 list comes back malformed: UNAVAILABLE
DEAD_TOKENS = (900_001, 900_002)  # tokens Bytemark does not know: NO_VALID_TOKEN
COLOURS = re.compile(r"\x1b\[[0-9;]*m")
CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def plain(terminal_output: str) -> str:
    """The text drawn: colours dropped, each cursor move (a redraw) as a line break."""
    return CURSOR.sub("\n", COLOURS.sub("", terminal_output))


@pytest.fixture(scope="module")
def big_sandbox(work_dir: Path) -> Iterator[SandboxProcess]:
    port = free_port()
    proc = subprocess.Popen(
        [CLI, "sandbox", "--port", str(port), "--users", str(RIDERS), "--passes", "2", "--expired", "1",
         "--latency-ms", "5", "--seed", str(SEED)],
        stdout=open(work_dir / "big-sandbox.log", "wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    sandbox = SandboxProcess(f"http://127.0.0.1:{port}", proc)
    wait_until(lambda: sandbox.call("GET", "/_sandbox/config") is not None, 90, "sandbox", proc)
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def big_server(big_sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    server = start_server(big_sandbox, work_dir, LOG_LEVEL="WARNING")
    state = SandboxState.seeded(RIDERS, 2, 1, first_user_id=1, seed=SEED)
    rows = [(c.user_id, c.access_token, c.refresh_token) for c in state.credentials()]
    rows += [(user_id, "revoked-access", "revoked-refresh") for user_id in DEAD_TOKENS]
    with sqlite3.connect(server.sqlite_path) as db:
        db.executemany(
            "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at) "
            "VALUES (?, ?, ?, 1, datetime('now'))",
            rows,
        )
    yield server
    server.stop()


def in_terminal(command: list[str], columns: int = 150) -> subprocess.CompletedProcess[str]:
    """Run `command` with a pseudo-terminal as its stdout, the way an operator's shell would."""
    env = client_env(COLUMNS=str(columns), TERM="xterm-256color")
    return subprocess.run(
        ["script", "--quiet", "--flush", "--return", "--command", " ".join(command), "/dev/null"],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip


def test_progress_bar_counts_riders_failures_by_code_and_skips_by_reason(
    big_server: ServerProcess, big_sandbox: SandboxProcess
) -> None:
    big_sandbox.add_faults(
        *({"endpoint": "v1", "kind": "malformed_json", "times": -1, "user_id": u} for u in FAILING)
    )
    done = in_terminal([CLI, "refresh-stale", "--max-age", "60", "--server", big_server.address])
    screen = plain(done.stdout)
    assert done.returncode == 1, screen[-3000:]  # three riders failed
    total = RIDERS + len(DEAD_TOKENS)
    # the bar as it was drawn: riders done/total, rate, ETA, failures by code, skips by reason
    bar = rf"\b\d+/{total} +[\d.]+ riders/s ETA [\d:-]+ elapsed [\d:]+ failed: "
    assert re.search(bar, screen), screen[-3000:]
    assert f"{total}/{total}" in screen
    assert "failed: UNAVAILABLE 3" in screen
    assert "skipped: no valid token 2" in screen
    for user_id in FAILING:
        assert f"user {user_id}: UNAVAILABLE: " in screen
    assert re.search(rf"refresh-stale: {total} of {total} riders in [\d.]+s \([\d.]+/s\)", screen)
    assert "{" not in screen.split("refresh-stale:")[0][-200:]  # people get the bar, not JSON lines


def test_a_cache_reads_as_a_table_in_a_terminal(big_server: ServerProcess) -> None:
    subprocess.run([CLI, "check", "1", "--server", big_server.address], check=True, capture_output=True)
    done = in_terminal([CLI, "get", "1", "--view", "summary", "--server", big_server.address])
    screen = plain(done.stdout)
    assert done.returncode == 0, screen
    assert "ticket cache of user 1" in screen and "pass uuid" in screen
    assert re.search(r"user 1: 2 passes, 1 passes4, version \d+", screen)
