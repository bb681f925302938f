"""CheckTicketCache against a misbehaving Bytemark, through the real server and sandbox processes.

Every case asserts the status docs/operations.md promises AND what is stored afterwards: either
byte-for-byte the old cache row (compared column by column with plain SQL) or the complete new
one, never a partial one; and no ticket-log rows for a refresh that failed.

The module's server runs with a 0.5 s Bytemark timeout and 2 attempts per call, and the sandbox
pages lists by 3, so every rider's passes span pages.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server
from tests.e2e.reliability import (
    assert_cache_matches_sandbox,
    change_passes,
    raw_cache_row,
    ticket_log_count,
)

PAGE_SIZE = 3
MAX_ATTEMPTS = 2
TIMEOUT_SECONDS = 0.5
RETRY_AFTER_SECONDS = 0.3
MAX_SECONDS = 5.0  # a failing refresh answers promptly: bounded retries, never a hang
# change_passes: one current pass changes status, one current and one expired pass are new.
CHANGED_ENTRIES = 1
NEW_ENTRIES = 2

V1 = "GET /passes"
V4 = "GET /v4.0/passes"
TOKEN = "POST /oauth/token"

UNAVAILABLE = "UNAVAILABLE"
REFRESHED = "OK, new cache"
NO_VALID_TOKEN = "OK NO_VALID_TOKEN"


@dataclass(frozen=True)
class Case:
    rules: tuple[dict[str, Any], ...] = ()
    control: str | None = None  # sandbox user action first: "expire-token" or "revoke"
    expect: str = UNAVAILABLE
    endpoints: tuple[str, ...] = ()  # for UNAVAILABLE: the message names one of these ...
    reason: str = ""  # ... and says this
    min_seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)  # sandbox requests expected per endpoint


CASES = [
    pytest.param(
        Case(
            ({"endpoint": "v1", "kind": "500", "times": -1},),
            endpoints=(V1,),
            reason=f"HTTP 500 after {MAX_ATTEMPTS} attempts",
            calls={"v1": MAX_ATTEMPTS},
        ),
        id="v1-500-past-the-retries",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v4", "kind": "500", "times": -1},),
            endpoints=(V4,),
            reason=f"HTTP 500 after {MAX_ATTEMPTS} attempts",
        ),
        id="v4-500-past-the-retries",
    ),
    pytest.param(
        Case(({"endpoint": "v4", "kind": "500", "times": 1},), expect=REFRESHED),
        id="v4-500-once-then-success",
    ),
    pytest.param(
        Case(
            (
                {"endpoint": "v1", "kind": "timeout", "times": -1},
                {"endpoint": "v4", "kind": "timeout", "times": -1},
            ),
            endpoints=(V1, V4),
            reason=f"timeout after {MAX_ATTEMPTS} attempts",
        ),
        id="both-lists-time-out",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v1", "kind": "429", "times": 1, "retry_after": RETRY_AFTER_SECONDS},),
            expect=REFRESHED,
            min_seconds=RETRY_AFTER_SECONDS,
            calls={"v1": 3},
        ),
        id="429-retry-after-then-success",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v4", "kind": "429", "times": 1, "retry_after": 120},),
            endpoints=(V4,),
            reason="Retry-After 120s exceeds the 30s bound",
            calls={"v4": 1},
        ),
        id="429-retry-after-past-the-bound",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v1", "kind": "malformed_json", "times": -1},),
            endpoints=(V1,),
            reason="malformed body: not JSON",
        ),
        id="v1-malformed-json",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v4", "kind": "wrong_shape", "times": -1},),
            endpoints=(V4,),
            reason="malformed body: 'data.passes' is not a list",
        ),
        id="v4-wrong-json-shape",
    ),
    pytest.param(
        Case(control="expire-token", expect=REFRESHED, calls={"token": 1}), id="401-then-token-refreshed"
    ),
    pytest.param(
        Case(control="revoke", expect=NO_VALID_TOKEN, calls={"token": 1}), id="401-then-invalid-grant"
    ),
    pytest.param(
        Case(
            ({"endpoint": "token", "kind": "500", "times": -1},),
            control="expire-token",
            endpoints=(TOKEN,),
            reason=f"HTTP 500 after {MAX_ATTEMPTS} attempts",
            calls={"token": MAX_ATTEMPTS},
        ),
        id="401-then-token-endpoint-500",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v1", "kind": "reset", "times": -1},),
            endpoints=(V1,),
            reason=f"connection error (ClientPayloadError) after {MAX_ATTEMPTS} attempts",
        ),
        id="v1-reset-mid-body-past-the-retries",
    ),
    pytest.param(
        Case(({"endpoint": "v4", "kind": "reset", "times": 1},), expect=REFRESHED),
        id="v4-reset-mid-body-once-then-success",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v1", "kind": "500", "times": -1, "page": 2},),
            endpoints=(V1,),
            reason=f"HTTP 500 after {MAX_ATTEMPTS} attempts",
            calls={"v1": 1 + MAX_ATTEMPTS},
        ),
        id="v1-second-page-500",
    ),
    pytest.param(
        Case(
            ({"endpoint": "v1", "kind": "malformed_json", "times": -1, "page": 2},),
            endpoints=(V1,),
            reason="malformed body: not JSON",
        ),
        id="v1-second-page-malformed",
    ),
]


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    """Short timeouts and two attempts keep the failing cases fast; small pages force pagination."""
    sandbox.call("PATCH", "/_sandbox/config", {"page_size": PAGE_SIZE})
    process = start_server(
        sandbox,
        work_dir,
        BYTEMARK_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        BYTEMARK_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
    )
    yield process
    process.stop()


def sandbox_calls(sandbox: SandboxProcess, user_id: int) -> dict[str, int]:
    return dict(sandbox.stats()["users"].get(str(user_id), {}))


def tokens_of(server: ServerProcess, user_id: int) -> list[tuple[Any, ...]]:
    return server.query("SELECT token, refresh_token FROM bytemark_tokens WHERE user_id = ?", (user_id,))


@pytest.mark.parametrize(
    "has_cache", [pytest.param(True, id="existing-cache"), pytest.param(False, id="no-cache")]
)
@pytest.mark.parametrize("case", CASES)
async def test_check_ticket_cache_answers_as_spec_says_and_never_stores_a_partial_cache(
    case: Case,
    has_cache: bool,
    server: ServerProcess,
    sandbox: SandboxProcess,
    stub: pb_grpc.TicketCacheServiceAsyncStub,
) -> None:
    user_id = server.seed_user(sandbox, passes=4, expired=2)
    if has_cache:
        built = await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)
        assert built.result.outcome == pb.OUTCOME_BUILT
    change_passes(sandbox, user_id)
    row_before = raw_cache_row(server, user_id)
    logs_before = ticket_log_count(server, user_id)
    tokens_before = tokens_of(server, user_id)
    if case.control:
        sandbox.call("POST", f"/_sandbox/users/{user_id}/{case.control}")
    sandbox.add_faults(*({**rule, "user_id": user_id} for rule in case.rules))
    calls_before = sandbox_calls(sandbox, user_id)

    started = time.monotonic()
    try:
        response = await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)
        error = None
    except grpc.aio.AioRpcError as failure:
        response, error = None, failure
    finally:
        sandbox.clear_faults()
    elapsed = time.monotonic() - started
    calls_after = sandbox_calls(sandbox, user_id)

    assert elapsed < MAX_SECONDS
    assert {name: calls_after.get(name, 0) - calls_before.get(name, 0) for name in case.calls} == case.calls
    row_after = raw_cache_row(server, user_id)
    logs_written = ticket_log_count(server, user_id) - logs_before
    if case.expect == UNAVAILABLE:
        assert error is not None, f"expected UNAVAILABLE, got {response}"
        details = error.details() or ""
        assert error.code() == grpc.StatusCode.UNAVAILABLE, details
        assert any(endpoint in details for endpoint in case.endpoints), details
        assert case.reason in details
        assert row_after == row_before
        assert logs_written == 0
        return
    assert error is None, f"{error.code()}: {error.details()}"
    assert response is not None
    result = response.result
    if case.expect == NO_VALID_TOKEN:
        assert result.outcome == pb.OUTCOME_NO_VALID_TOKEN
        assert row_after == row_before
        assert logs_written == 0
        assert tokens_of(server, user_id) == tokens_before
        return
    assert elapsed >= case.min_seconds
    assert_cache_matches_sandbox(server, sandbox, user_id)
    assert row_after is not None
    if has_cache:
        assert row_before is not None
        assert result.outcome == pb.OUTCOME_UPDATED
        assert (result.counts.new, result.counts.changed) == (NEW_ENTRIES, CHANGED_ENTRIES)
        assert row_after[0:3] != row_before[0:3]
        assert logs_written == NEW_ENTRIES + CHANGED_ENTRIES
    else:
        assert result.outcome == pb.OUTCOME_BUILT
        assert logs_written == 0
    if case.control == "expire-token":
        assert tokens_of(server, user_id) != tokens_before  # the rotated grant was stored back
