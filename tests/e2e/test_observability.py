"""Metrics on METRICS_LISTEN and JSON logs with a request id, from a real server process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SERVICE, SandboxProcess, ServerProcess, free_port, start_server
from tests.deploy.promtool import PROMTOOL

GAUGE_PERIOD = 1  # seconds between the server's reads of the sync-state gauges (default 60)
SYNC_STATES = ("OK", "FAILING", "AUTH_REQUIRED")
Labels = tuple[tuple[str, str], ...]
Samples = dict[tuple[str, Labels], float]


@pytest.fixture(scope="module")
def metrics_url(sandbox: SandboxProcess) -> str:
    return f"http://127.0.0.1:{free_port()}/metrics"


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path, metrics_url: str) -> Iterator[ServerProcess]:
    listen = metrics_url.removeprefix("http://").removesuffix("/metrics")
    process = start_server(
        sandbox,
        work_dir,
        METRICS_LISTEN=listen,
        SYNC_GAUGES_REFRESH_SECONDS=str(GAUGE_PERIOD),
        TOKEN_GAUGE_REFRESH_SECONDS=str(GAUGE_PERIOD),
    )
    yield process
    process.stop()


@pytest_asyncio.fixture
async def client(server: ServerProcess) -> AsyncIterator[pb_grpc.TicketCacheServiceAsyncStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield pb_grpc.TicketCacheServiceStub(channel)


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def method(name: str, grpc_type: str = "unary") -> dict[str, str]:
    """go-grpc-prometheus's labels of one method, as stock gRPC dashboards select them."""
    return {"grpc_service": SERVICE, "grpc_method": name, "grpc_type": grpc_type}


async def test_metrics_count_rpcs_bytemark_calls_lookups_outcomes_and_bulk_users(
    client: pb_grpc.TicketCacheServiceAsyncStub,
    server: ServerProcess,
    sandbox: SandboxProcess,
    metrics_url: str,
) -> None:
    user = server.seed_user(sandbox)
    failing = server.seed_user(sandbox)
    sandbox.add_faults({"endpoint": "v1", "kind": "500", "times": -1, "user_id": failing})
    before = scrape(metrics_url)

    built = await client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user))
    await client.GetTicketCache(pb.GetTicketCacheRequest(user_id=user))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await client.GetTicketCache(pb.GetTicketCacheRequest(user_id=user + 10_000))
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await client.GetTicketCache(pb.GetTicketCacheRequest(user_id=-1))
    events = [
        event
        async for event in client.RefreshStaleCaches(
            pb.RefreshStaleCachesRequest(user_ids=[user, failing], max_age_seconds=1)
        )
    ]
    sandbox.clear_faults()
    after = scrape(metrics_url)

    assert built.result.outcome == pb.OUTCOME_BUILT
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [e.WhichOneof("event") for e in sorted(events, key=lambda e: e.user_id)] == ["result", "error"]

    handled = "grpc_server_handled_total"
    assert moved(before, after, handled, **method("CheckTicketCache"), grpc_code="OK") == 1
    assert moved(before, after, handled, **method("GetTicketCache"), grpc_code="OK") == 1
    assert moved(before, after, handled, **method("GetTicketCache"), grpc_code="NOT_FOUND") == 1
    get_invalid = moved(
        before, after, handled, **method("GetTicketCache"), grpc_code="INVALID_ARGUMENT"
    )
    assert get_invalid == 1
    assert moved(before, after, handled, **method("RefreshStaleCaches", "server_stream"), grpc_code="OK") == 1
    assert moved(before, after, "grpc_server_started_total", **method("GetTicketCache")) == 3
    seconds = "grpc_server_handling_seconds_count"
    assert moved(before, after, seconds, **method("GetTicketCache")) == 3
    assert moved(before, after, seconds, **method("RefreshStaleCaches", "server_stream")) == 1

    bytemark = "bytemark_request_duration_seconds_count"
    assert moved(before, after, bytemark, endpoint="GET /passes") >= 2  # the check, the failing user
    assert moved(before, after, bytemark, endpoint="GET /v4.0/passes") >= 1
    passes_errors = sum(
        after[key] - before.get(key, 0.0)
        for key in after
        if key[0] == "bytemark_request_errors_total" and ("endpoint", "GET /passes") in key[1]
    )
    assert passes_errors >= 1

    outcomes = "ticket_cache_refresh_outcomes_total"
    assert moved(before, after, outcomes, outcome="BUILT") == 1
    assert (
        moved(before, after, outcomes, outcome="UPDATED")
        + moved(before, after, outcomes, outcome="UNCHANGED")
        + moved(before, after, outcomes, outcome="FRESH")
        == 1
    )
    assert moved(before, after, "ticket_cache_lookups_total", result="hit") == 1
    assert moved(before, after, "ticket_cache_lookups_total", result="miss") == 1
    assert moved(before, after, "ticket_cache_bulk_users_total", job="refresh_stale", result="ok") == 1
    assert moved(before, after, "ticket_cache_bulk_users_total", job="refresh_stale", result="failed") == 1
    assert value(after, "ticket_cache_bulk_runs_in_progress", job="refresh_stale") == 0


async def test_a_free_ticket_found_by_an_update_is_counted(
    client: pb_grpc.TicketCacheServiceAsyncStub,
    server: ServerProcess,
    sandbox: SandboxProcess,
    metrics_url: str,
) -> None:
    user = server.seed_user(sandbox)
    await client.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user))
    sandbox.call("POST", f"/_sandbox/users/{user}/passes", {"free": True})
    before = scrape(metrics_url)

    updated = await client.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user))

    after = scrape(metrics_url)
    assert updated.result.counts.new_free == 1
    assert moved(before, after, "ticket_cache_free_tickets_found_total") == 1
    assert moved(before, after, "ticket_cache_refresh_outcomes_total", outcome="UPDATED") == 1


def sync_gauges(server: ServerProcess, metrics_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """What /metrics says, and what the store holds: riders per sync state and expiring tokens."""
    samples = scrape(metrics_url)
    exported = {state: int(value(samples, "ticket_cache_sync_riders", state=state)) for state in SYNC_STATES}
    exported["expiring"] = int(value(samples, "bytemark_tokens_expiring_riders"))
    stored = {state: 0 for state in SYNC_STATES} | dict(
        server.query("SELECT state, COUNT(*) FROM bytemark_sync_status GROUP BY state")
    )
    horizon = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 86_400))
    stored["expiring"] = server.query(
        "SELECT COUNT(DISTINCT user_id) FROM bytemark_tokens WHERE token_expires_at > '1000-01-01'"
        " AND token_expires_at < ?",
        (horizon,),
    )[0][0]
    return exported, stored


async def exported_once_stored(server: ServerProcess, metrics_url: str) -> dict[str, int]:
    """Wait (a few periods at most) until /metrics shows what the store holds; return it."""
    for _ in range(int(GAUGE_PERIOD * 40)):
        exported, stored = sync_gauges(server, metrics_url)
        if exported == stored:
            return exported
        await asyncio.sleep(0.1)
    raise AssertionError(f"/metrics {exported} never matched the store {stored}")


async def test_a_unary_refresh_reaches_the_sync_gauges_within_the_refresh_period(
    client: pb_grpc.TicketCacheServiceAsyncStub,
    server: ServerProcess,
    sandbox: SandboxProcess,
    metrics_url: str,
) -> None:
    revoked = sandbox.create_user(passes=1, expired=0)
    server.seed_token(int(revoked["user_id"]), "a-token-bytemark-rejects", None)  # and no refresh token
    expiring = server.seed_user(sandbox)
    before = await exported_once_stored(server, metrics_url)

    checked = await client.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=int(revoked["user_id"])))
    in_two_hours = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 7200))
    expire = "UPDATE bytemark_tokens SET token_expires_at = ? WHERE user_id = ?"
    server.query(expire, (in_two_hours, expiring))
    changed = time.monotonic()
    after = await exported_once_stored(server, metrics_url)

    assert checked.result.outcome == pb.OUTCOME_NO_VALID_TOKEN
    assert after["AUTH_REQUIRED"] == before["AUTH_REQUIRED"] + 1  # no bulk run in between
    assert after["expiring"] == before["expiring"] + 1
    assert time.monotonic() - changed < GAUGE_PERIOD + 2


async def test_every_log_line_is_json_and_an_rpc_logs_under_the_callers_request_id(
    client: pb_grpc.TicketCacheServiceAsyncStub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    users = {name: server.seed_user(sandbox) for name in ("check", "stream")}
    for user in users.values():  # the token refresh that follows logs at INFO
        sandbox.call("POST", f"/_sandbox/users/{user}/expire-token")
    request_ids = {name: f"obs-{name}-{user}" for name, user in users.items()}

    call = client.CheckTicketCache(
        pb.CheckTicketCacheRequest(user_id=users["check"]),
        metadata=(("x-request-id", request_ids["check"]),),
    )
    await call
    trailing = await call.trailing_metadata()
    stream = client.RefreshStaleCaches(
        pb.RefreshStaleCachesRequest(user_ids=[users["stream"]]),
        metadata=(("x-request-id", request_ids["stream"]),),
    )
    events = [event async for event in stream]

    lines = [line for line in server.logs().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    plain = [line for line in lines if not line.startswith("{")]
    assert ("x-request-id", request_ids["check"]) in tuple(trailing or ())
    assert [event.result.outcome for event in events] == [pb.OUTCOME_BUILT]
    # The one plain line is the start-up banner the harness waits for.
    assert all(line.startswith("gRPC TicketCacheService listening on") for line in plain), plain
    assert all({"ts", "level", "logger", "msg"} <= set(record) for record in records)
    for request_id in request_ids.values():
        assert any(record.get("request_id") == request_id for record in records), request_id


def test_the_exposition_passes_promtool_check_metrics(
    server: ServerProcess, sandbox: SandboxProcess, metrics_url: str
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=server.seed_user(sandbox)), timeout=60)
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        exposition = response.read()

    done = subprocess.run([PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, timeout=60)

    assert b"grpc_server_started_total{" in exposition  # the gRPC families, built at scrape time
    assert done.returncode == 0, done.stdout + done.stderr
