"""The Node client (clients/typescript) against the real Python server: its node:test suite runs
with the addresses of a plain and a token-protected server and two seeded riders."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import SandboxProcess, ServerProcess, start_server

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "typescript"
TOKEN = "node-client-token"


@pytest.fixture(scope="module")
def auth_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, GRPC_AUTH_TOKEN=TOKEN)
    yield process
    process.stop()


def test_node_client_suite_passes_against_the_python_server(
    server: ServerProcess, auth_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    assert (CLIENT / "dist" / "index.js").exists(), "build it first: make typescript"
    riders = [sandbox.create_user(passes=3, expired=1) for _ in range(2)]
    for target in (server, auth_server):
        for rider in riders:
            target.seed_token(int(rider["user_id"]), rider["access_token"], rider["refresh_token"])
    env = {
        **os.environ,
        "TICKET_CACHE_URL": f"http://{server.address}",
        "TICKET_CACHE_AUTH_URL": f"http://{auth_server.address}",
        "TICKET_CACHE_TOKEN": TOKEN,
        "TICKET_CACHE_USERS": ",".join(str(rider["user_id"]) for rider in riders),
    }
    done = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "test/"],
        cwd=CLIENT, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "pass 5" in done.stdout and "fail 0" in done.stdout
