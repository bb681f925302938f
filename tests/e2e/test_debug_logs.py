"""No secret in any log at any level: the demo at LOG_LEVEL=DEBUG, through a token refresh and a
bulk run, prints none of its riders' access or refresh tokens (before and after the refresh), the
client secret or the bearer token, on any stream it writes.

Tokens are stored in plain text here (no TOKEN_ENCRYPTION_KEY), as in the demo, so a driver
logging its bound SQL parameters would print them (issue 21, "Why" item 3)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.commands import DEMO_FIRST_USER_ID
from devtools.harness import SandboxProcess
from devtools.sandbox.config import SandboxConfig
from tests.e2e.demo_process import Demo, running_demo

BEARER_TOKEN = "demo-debug-bearer-3c9e1a7f52"
DEMO_RIDERS = 10
CALL_TIMEOUT = 30.0


def stored_tokens(sqlite_path: Path) -> set[str]:
    with sqlite3.connect(sqlite_path, timeout=30) as db:
        rows = db.execute("SELECT token, refresh_token FROM bytemark_tokens").fetchall()
    return {value for row in rows for value in row if value}


def sandbox_tokens(sandbox: SandboxProcess) -> set[str]:
    riders = range(DEMO_FIRST_USER_ID, DEMO_FIRST_USER_ID + DEMO_RIDERS)
    users = [sandbox.call("GET", f"/_sandbox/users/{rider}") for rider in riders]
    return {user[key] for user in users for key in ("access_token", "refresh_token")}


def demo_sandbox(demo: Demo) -> SandboxProcess:
    """The demo's in-process sandbox, through its control API (the URL is in the ready message)."""
    url = demo.text().split("Bytemark sandbox at ", 1)[1].split(";", 1)[0]
    return SandboxProcess(url, demo.proc)


def test_the_demo_at_debug_level_prints_no_rider_token_client_secret_or_bearer_token(
    tmp_path: Path,
) -> None:
    metadata = (("authorization", f"Bearer {BEARER_TOKEN}"),)
    with running_demo(tmp_path, LOG_LEVEL="DEBUG", GRPC_AUTH_TOKEN=BEARER_TOKEN) as demo:
        sandbox = demo_sandbox(demo)
        secrets = stored_tokens(tmp_path / "demo.sqlite3") | sandbox_tokens(sandbox)
        sandbox.call("POST", f"/_sandbox/users/{DEMO_FIRST_USER_ID}/expire-token")
        with grpc.insecure_channel(demo.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            checked = stub.CheckTicketCache(
                pb.CheckTicketCacheRequest(user_id=DEMO_FIRST_USER_ID),
                metadata=metadata,
                timeout=CALL_TIMEOUT,
            )
            events = list(
                stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(), metadata=metadata, timeout=60)
            )
        secrets |= stored_tokens(tmp_path / "demo.sqlite3") | sandbox_tokens(sandbox)
    output = demo.text()

    assert checked.result.outcome == pb.OUTCOME_BUILT
    assert sum(event.WhichOneof("event") == "result" for event in events) >= DEMO_RIDERS - 1
    # 10 riders' tokens at start, and rider 1001's renewed pair after its refresh
    assert len(secrets) >= 2 * DEMO_RIDERS + 2
    # DEBUG really was on (the service's own debug lines, e.g. each Bytemark call): not vacuous
    assert output.count('"level": "DEBUG"') >= 10
    leaked = [s for s in (*sorted(secrets), SandboxConfig().client_secret, BEARER_TOKEN) if s in output]
    assert leaked == []
    # Not even a recognisable piece of one (e.g. a token cut by a formatter).
    assert [s for s in (*secrets, BEARER_TOKEN) if s[-12:] in output] == []


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo must not find a client secret or store URL from the developer's shell."""
    for name in ("BYTEMARK_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEY"):
        monkeypatch.delenv(name, raising=False)
