"""The Node client (clients/typescript) against the real Python server: its node:test suite runs
with the addresses of a plain and a token-protected server and two seeded riders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.harness import SandboxProcess, ServerProcess, start_server
from tests.e2e.node_suite import assert_node_suite_passes

TOKEN = "node-client-token"


@pytest.fixture(scope="module")
def auth_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, GRPC_AUTH_TOKEN=TOKEN)
    yield process
    process.stop()


def test_node_client_suite_passes_against_the_python_server(
    server: ServerProcess, auth_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    riders = [sandbox.create_user(passes=3, expired=1) for _ in range(2)]
    for target in (server, auth_server):
        for rider in riders:
            target.seed_token(int(rider["user_id"]), rider["access_token"], rider["refresh_token"])
    env = {
        "TICKET_CACHE_URL": f"http://{server.address}",
        "TICKET_CACHE_AUTH_URL": f"http://{auth_server.address}",
        "TICKET_CACHE_TOKEN": TOKEN,
        "TICKET_CACHE_USERS": ",".join(str(rider["user_id"]) for rider in riders),
    }
    assert_node_suite_passes("test/", env, passes=6, timeout=180)
