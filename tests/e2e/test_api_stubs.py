"""Every RPC of TicketCacheService through the generated stubs, against the real server process
(`bytemark-ticket-cache serve`) talking to the real Bytemark sandbox process.

Each test creates its own riders in the sandbox, so tests share the module's processes
without seeing each other's caches (except the store-wide RPCs, which say so)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server

if TYPE_CHECKING:  # the async stub type exists only in the generated .pyi
    Stub: TypeAlias = pb_grpc.TicketCacheServiceAsyncStub
    BadCall: TypeAlias = Callable[[Stub], Awaitable[Any]]
T = TypeVar("T")

AUTH_TOKEN = "e2e-caller-token-7f3a"
PAID_PRODUCT_UUID = "8c2d1e44-77b0-4d4e-a3f1-0c5e9b6a2d10"

#: One subprocess for all payloads: stdin is a JSON array of JSON texts, stdout the array of MD5s
#: exactly as the old Node.js job computed them.
NODE_MD5 = """
const crypto = require('crypto');
let input = '';
process.stdin.on('data', chunk => { input += chunk; });
process.stdin.on('end', () => {
  const hashes = JSON.parse(input).map(
    text => crypto.createHash('md5').update(JSON.stringify(JSON.parse(text))).digest('hex'));
  process.stdout.write(JSON.stringify(hashes));
});
"""


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extra_servers(sandbox: SandboxProcess, work_dir: Path) -> Iterator[dict[str, ServerProcess]]:
    """Two more server processes on the module's sandbox, started side by side to save time:
    "auth" demands `authorization: Bearer AUTH_TOKEN`; "empty" has no cache yet (bootstrap)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        starting = {
            "auth": pool.submit(start_server, sandbox, work_dir, GRPC_AUTH_TOKEN=AUTH_TOKEN),
            "empty": pool.submit(start_server, sandbox, work_dir),
        }
        wait(starting.values())
    started = {name: f.result() for name, f in starting.items() if f.exception() is None}
    try:
        for future in starting.values():
            future.result()  # re-raise a failed start
        yield started
    finally:
        for process in started.values():
            process.stop()


@pytest.fixture(scope="module")
def auth_server(extra_servers: dict[str, ServerProcess]) -> ServerProcess:
    return extra_servers["auth"]


@pytest.fixture(scope="module")
def empty_server(extra_servers: dict[str, ServerProcess]) -> ServerProcess:
    return extra_servers["empty"]


# --- helpers ----------------------------------------------------------------------------------


def node_md5(payloads: list[str]) -> list[str]:
    done = subprocess.run(
        ["node", "-e", NODE_MD5], input=json.dumps(payloads), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    hashes = json.loads(done.stdout)
    assert isinstance(hashes, list) and len(hashes) == len(payloads)
    return [str(h) for h in hashes]


async def collect(stream: AsyncIterable[T]) -> list[T]:
    return [event async for event in stream]


async def rpc_error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def bytemark_calls(sandbox: SandboxProcess, user_id: int) -> int:
    """How many requests the sandbox has answered with this rider's tokens."""
    return sum(sandbox.stats()["users"].get(str(user_id), {}).values())


def age_cache(server: ServerProcess, user_id: int, seconds: int) -> int:
    """Make the rider's cache look `seconds` older, as a stale cache in the store would be."""
    server.query(
        "UPDATE bytemark_tickets_cache SET timestamp = timestamp - ? WHERE user_id = ?", (seconds, user_id)
    )
    rows = server.query("SELECT timestamp FROM bytemark_tickets_cache WHERE user_id = ?", (user_id,))
    return int(rows[0][0])


def by_uuid(passes: Iterable[pb.CachedPass]) -> dict[str, pb.CachedPass]:
    return {p.pass_uuid: p for p in passes}


class SandboxConfigChange:
    """`with SandboxConfigChange(sandbox, latency_ms=500):` sets sandbox knobs and restores them."""

    def __init__(self, sandbox: SandboxProcess, **knobs: float) -> None:
        self._sandbox = sandbox
        self._knobs = knobs
        self._before: dict[str, Any] = {}

    def __enter__(self) -> None:
        config = self._sandbox.call("GET", "/_sandbox/config")
        self._before = {name: config[name] for name in self._knobs}
        self._sandbox.call("PATCH", "/_sandbox/config", self._knobs)

    def __exit__(self, *exc: object) -> None:
        self._sandbox.call("PATCH", "/_sandbox/config", self._before)


async def wait_for_quiet_sandbox(sandbox: SandboxProcess, quiet_seconds: float, within: float = 10) -> int:
    """Poll the sandbox's request counter until it has not moved for `quiet_seconds`; return it."""
    deadline = time.monotonic() + within
    last, since = sandbox.stats()["total"], time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        now = sandbox.stats()["total"]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return int(last)
    raise AssertionError(f"the sandbox kept receiving requests for {within}s")


async def eventually_cached(stub: Stub, user_id: int, within: float = 10) -> pb.TicketCache:
    """Poll GetTicketCache until the rider's cache exists."""
    deadline = time.monotonic() + within
    while True:
        try:
            return (await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id))).cache
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


# --- reads and single-user refreshes ----------------------------------------------------------


async def test_get_ticket_cache_returns_the_stored_cache_in_every_view_without_calling_bytemark(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=4, expired=2)
    built = (await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))).result
    assert built.outcome == pb.OUTCOME_BUILT
    assert (built.counts.passes, built.counts.passes4) == (4, 2)
    calls_after_build = bytemark_calls(sandbox, user_id)

    views = {
        "default": pb.CACHE_VIEW_UNSPECIFIED,
        "full": pb.CACHE_VIEW_FULL,
        "raw": pb.CACHE_VIEW_RAW,
        "summary": pb.CACHE_VIEW_SUMMARY,
    }
    caches = {
        name: (await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=view))).cache
        for name, view in views.items()
    }

    for cache in caches.values():
        assert cache.user_id == user_id
        assert cache.version >= 1
        assert cache.timestamp.seconds == built.refreshed_at.seconds
        assert (len(cache.passes), len(cache.passes4)) == (4, 2)
    content = {name: {p.WhichOneof("content") for p in [*c.passes, *c.passes4]} for name, c in caches.items()}
    assert content == {
        "default": {"payload"},
        "full": {"payload"},
        "raw": {"payload_json"},
        "summary": {None},
    }
    # Every view lists the same entries, in the same order, with the same hashes and statuses.
    summary = [(p.pass_uuid, p.status, p.payload_hash) for p in caches["summary"].passes]
    for name in ("default", "full", "raw"):
        assert [(p.pass_uuid, p.status, p.payload_hash) for p in caches[name].passes] == summary
    # Passes come oldest first, by their `time_created`.
    created = [json.loads(p.payload_json)["time_created"] for p in caches["raw"].passes]
    assert created == sorted(created)
    # The FULL view carries the same payload as the RAW text.
    for full, raw in zip(caches["full"].passes, caches["raw"].passes, strict=True):
        assert MessageToDict(full.payload) == json.loads(raw.payload_json)
    assert bytemark_calls(sandbox, user_id) == calls_after_build


async def test_payload_hashes_are_byte_for_byte_what_node_computes(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=5, expired=3)
    # A pass whose JSON text only hashes right when printed by JS rules: integer-like keys
    # first, `1.0` as `1`, `-0` as `0`, exponents, non-ASCII, escapes, an integer past 2^53.
    tricky = {
        "uuid": str(uuid.uuid4()),
        "product_uuid": PAID_PRODUCT_UUID,
        "status": "USABLE",
        "time_created": "2026-03-01T08:00:00.000Z",
        "zeta": 1,
        "10": "ten",
        "2": "two",
        "numbers": [1.0, -0.0, 1e21, 1e20, 1.5e-7, 0.1, 123456789012345680000],
        "text": 'café ☕ "quoted" \\ back\nline\ttab \u0001 \u2028 😀',
        "big": 2**60 + 1,
        "nested": {"b": None, "a": [True, False, {}]},
    }
    sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", tricky)
    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))

    raw = (await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_RAW))).cache
    full = (
        await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_FULL))
    ).cache
    raw_passes = [*raw.passes, *raw.passes4]
    assert len(raw_passes) == 9
    assert tricky["uuid"] in {p.pass_uuid for p in raw_passes}

    expected = node_md5([p.payload_json for p in raw_passes])
    assert [p.payload_hash for p in raw_passes] == expected
    # The tricky pass really needs JS rules: hashing its stored text as-is gives another MD5.
    tricky_raw = next(p for p in raw_passes if p.pass_uuid == tricky["uuid"])
    assert hashlib.md5(tricky_raw.payload_json.encode()).hexdigest() != tricky_raw.payload_hash
    full_hashes = [p.payload_hash for p in [*full.passes, *full.passes4]]
    assert full_hashes == expected


async def test_check_builds_a_missing_cache_then_finds_it_unchanged(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=3, expired=1)

    first = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))).result
    second = (
        await stub.CheckTicketCache(
            pb.CheckTicketCacheRequest(user_id=user_id, include_cache=True, view=pb.CACHE_VIEW_SUMMARY)
        )
    ).result

    assert first.user_id == second.user_id == user_id
    assert first.outcome == pb.OUTCOME_BUILT
    assert not first.HasField("cache")  # not asked for
    assert second.outcome == pb.OUTCOME_UNCHANGED
    assert (second.counts.passes, second.counts.passes4) == (3, 1)
    assert (second.counts.new, second.counts.changed, second.counts.removed) == (0, 0, 0)
    assert second.refreshed_at.seconds >= first.refreshed_at.seconds
    assert len(second.cache.passes) == 3
    assert all(p.WhichOneof("content") is None and p.payload_hash for p in second.cache.passes)


async def test_update_with_a_new_free_pass_is_updated_logged_and_raises_a_loyalty_row(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=4, expired=2)
    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))
    free_pass = sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {"free": True})

    updated = (
        await stub.UpdateTicketCache(
            pb.UpdateTicketCacheRequest(user_id=user_id, include_cache=True, view=pb.CACHE_VIEW_RAW)
        )
    ).result

    assert updated.outcome == pb.OUTCOME_UPDATED
    assert (updated.counts.passes, updated.counts.new, updated.counts.new_free) == (5, 1, 1)
    cached = by_uuid(updated.cache.passes)[free_pass["uuid"]]
    assert cached.free_ticket_status == 1
    assert json.loads(cached.payload_json) == free_pass
    assert sum(p.free_ticket_status for p in updated.cache.passes) == 1
    assert server.query(
        "SELECT activity_type, status FROM bytemark_ticket_refresh_log WHERE user_id = ?", (user_id,)
    ) == [(2, 0)]
    assert server.query(
        "SELECT list, change, payload_hash FROM bytemark_tickets_log WHERE user_id = ? AND pass_uuid = ?",
        (user_id, free_pass["uuid"]),
    ) == [("passes", "created", cached.payload_hash)]

    again = (await stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user_id))).result
    assert again.outcome == pb.OUTCOME_UNCHANGED
    assert (again.counts.new, again.counts.new_free) == (0, 0)
    assert len(server.query("SELECT id FROM bytemark_ticket_refresh_log WHERE user_id = ?", (user_id,))) == 1


async def test_update_reports_changed_removed_and_expired_passes_and_logs_the_changes(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=3, expired=0)
    summary = pb.CACHE_VIEW_SUMMARY
    built = (
        await stub.BuildTicketCache(
            pb.BuildTicketCacheRequest(user_id=user_id, include_cache=True, view=summary)
        )
    ).result
    activated, removed, expiring = (p.pass_uuid for p in built.cache.passes)
    passes_url = f"/_sandbox/users/{user_id}/passes"
    sandbox.call("PATCH", f"{passes_url}/{activated}", {"status": "ACTIVE", "activation_count": 1})
    sandbox.call("DELETE", f"{passes_url}/{removed}")

    first = (
        await stub.UpdateTicketCache(
            pb.UpdateTicketCacheRequest(user_id=user_id, include_cache=True, view=summary)
        )
    ).result
    sandbox.call("PATCH", f"{passes_url}/{expiring}", {"status": "EXPIRED"})
    second = (
        await stub.UpdateTicketCache(
            pb.UpdateTicketCacheRequest(user_id=user_id, include_cache=True, view=summary)
        )
    ).result

    assert first.outcome == second.outcome == pb.OUTCOME_UPDATED
    counts = first.counts
    assert (counts.passes, counts.new, counts.changed, counts.removed, counts.new_free) == (2, 0, 1, 1, 0)
    passes = by_uuid(first.cache.passes)
    assert set(passes) == {activated, expiring}
    assert passes[activated].status == "ACTIVE"
    assert passes[activated].payload_hash != by_uuid(built.cache.passes)[activated].payload_hash
    # An expired pass leaves `passes` and is kept in `passes4` (logged as an update: its uuid was cached).
    assert [p.pass_uuid for p in second.cache.passes] == [activated]
    assert [(p.pass_uuid, p.status) for p in second.cache.passes4] == [(expiring, "EXPIRED")]
    assert server.query(
        "SELECT pass_uuid, list, change, status FROM bytemark_tickets_log WHERE user_id = ? ORDER BY id",
        (user_id,),
    )[-2:] == [(activated, "passes", "updated", "ACTIVE"), (expiring, "passes4", "updated", "EXPIRED")]
    assert server.query("SELECT id FROM bytemark_ticket_refresh_log WHERE user_id = ?", (user_id,)) == []


async def test_update_of_a_rider_without_a_cache_is_not_found(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox)

    error = await rpc_error(stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user_id)))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert bytemark_calls(sandbox, user_id) == 0


async def test_timeout_check_answers_fresh_without_calling_bytemark_and_refreshes_an_old_cache(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=2, expired=1)

    missing = (
        await stub.CheckTicketCacheTimeout(
            pb.CheckTicketCacheTimeoutRequest(user_id=user_id, max_age_seconds=3600)
        )
    ).result
    calls_after_build = bytemark_calls(sandbox, user_id)
    fresh = (
        await stub.CheckTicketCacheTimeout(
            pb.CheckTicketCacheTimeoutRequest(user_id=user_id, max_age_seconds=3600, include_cache=True)
        )
    ).result
    calls_after_fresh = bytemark_calls(sandbox, user_id)
    aged_to = age_cache(server, user_id, 7200)
    stale = (
        await stub.CheckTicketCacheTimeout(
            pb.CheckTicketCacheTimeoutRequest(
                user_id=user_id, max_age_seconds=3600, include_cache=True, view=pb.CACHE_VIEW_RAW
            )
        )
    ).result

    assert missing.outcome == pb.OUTCOME_BUILT
    assert fresh.outcome == pb.OUTCOME_FRESH
    assert calls_after_fresh == calls_after_build
    assert fresh.cache.timestamp.seconds == missing.refreshed_at.seconds  # the cache, as stored
    assert stale.outcome == pb.OUTCOME_UNCHANGED
    assert bytemark_calls(sandbox, user_id) > calls_after_fresh
    assert stale.cache.timestamp.seconds > aged_to
    assert stale.refreshed_at.seconds == stale.cache.timestamp.seconds
    assert all(p.payload_json for p in stale.cache.passes)


async def test_a_rider_whose_grant_is_revoked_gets_no_valid_token_and_nothing_is_stored(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    revoked = server.seed_user(sandbox)
    sandbox.call("POST", f"/_sandbox/users/{revoked}/revoke")
    never_linked = 987_654_321  # no token row at all

    build = (
        await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=revoked, include_cache=True))
    ).result
    check = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=never_linked))).result

    assert (build.user_id, build.outcome) == (revoked, pb.OUTCOME_NO_VALID_TOKEN)
    assert not build.HasField("refreshed_at") and not build.HasField("cache")
    assert (check.user_id, check.outcome) == (never_linked, pb.OUTCOME_NO_VALID_TOKEN)
    for user_id in (revoked, never_linked):
        error = await rpc_error(stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id)))
        assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_get_of_a_rider_without_a_cache_is_not_found(stub: Stub) -> None:
    error = await rpc_error(stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=123_456_789)))

    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "123456789" in (error.details() or "")


# --- bad requests -----------------------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, str, BadCall]] = [
    ("get_user_id_zero", "user_id", lambda s: s.GetTicketCache(pb.GetTicketCacheRequest(user_id=0))),
    ("get_user_id_negative", "user_id", lambda s: s.GetTicketCache(pb.GetTicketCacheRequest(user_id=-5))),
    ("build_user_id_zero", "user_id", lambda s: s.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=0))),
    (
        "check_user_id_negative",
        "user_id",
        lambda s: s.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=-1)),
    ),
    ("update_user_id_zero", "user_id", lambda s: s.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=0))),
    (
        "timeout_negative_max_age",
        "max_age_seconds",
        lambda s: s.CheckTicketCacheTimeout(pb.CheckTicketCacheTimeoutRequest(user_id=1, max_age_seconds=-1)),
    ),
    (
        "refresh_shard_index_past_shard_count",
        "shard_index",
        lambda s: collect(s.RefreshStaleCaches(pb.RefreshStaleCachesRequest(shard_index=2, shard_count=2))),
    ),
    (
        "refresh_negative_shard_count",
        "shard_count",
        lambda s: collect(s.RefreshStaleCaches(pb.RefreshStaleCachesRequest(shard_count=-1))),
    ),
    (
        "refresh_negative_concurrency",
        "concurrency",
        lambda s: collect(s.RefreshStaleCaches(pb.RefreshStaleCachesRequest(concurrency=-1))),
    ),
    (
        "refresh_concurrency_too_high",
        "concurrency",
        lambda s: collect(s.RefreshStaleCaches(pb.RefreshStaleCachesRequest(concurrency=100_000))),
    ),
    (
        "refresh_user_id_zero_in_list",
        "user_ids[1]",
        lambda s: collect(s.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=[5, 0]))),
    ),
    (
        "bootstrap_negative_concurrency",
        "concurrency",
        lambda s: collect(s.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(concurrency=-3))),
    ),
]


@pytest.mark.parametrize(
    ("field", "bad_call"), [(f, c) for _, f, c in BAD_REQUESTS], ids=[i for i, _, _ in BAD_REQUESTS]
)
async def test_a_bad_argument_is_invalid_argument_naming_the_field_and_the_server_keeps_serving(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess, field: str, bad_call: BadCall
) -> None:
    calls_before = sandbox.stats()["total"]

    error = await rpc_error(bad_call(stub))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.details() or "").startswith(field), error.details()
    assert sandbox.stats()["total"] == calls_before
    assert (await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))).dry_run
    assert server.proc.poll() is None


async def test_a_deadline_shorter_than_bytemark_latency_is_deadline_exceeded(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox)

    with SandboxConfigChange(sandbox, latency_ms=1000):
        started = time.monotonic()
        error = await rpc_error(
            stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id), timeout=0.2)
        )
        waited = time.monotonic() - started
        # The work the caller gave up on still finishes and is stored for the next reader.
        stored = await eventually_cached(stub, user_id)

    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert waited < 0.9  # the caller is not kept waiting for Bytemark
    assert (stored.user_id, len(stored.passes)) == (user_id, 4)
    check = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=10)).result
    assert check.outcome == pb.OUTCOME_UNCHANGED


# --- streams ----------------------------------------------------------------------------------


async def test_refresh_stale_streams_every_riders_result_with_running_counts(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    fresh, stale, missing, failing = (server.seed_user(sandbox, passes=2, expired=1) for _ in range(4))
    for user_id in (fresh, stale):
        await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))
    age_cache(server, stale, 7200)
    sandbox.add_faults({"endpoint": "v1", "kind": "wrong_shape", "times": -1, "user_id": failing})
    try:
        events = await collect(
            stub.RefreshStaleCaches(
                pb.RefreshStaleCachesRequest(
                    max_age_seconds=3600,
                    concurrency=2,
                    user_ids=[fresh, stale, missing, failing],
                    include_cache=True,
                    view=pb.CACHE_VIEW_SUMMARY,
                )
            )
        )
    finally:
        sandbox.clear_faults()

    assert [e.done for e in events] == [1, 2, 3, 4]
    assert {e.total for e in events} == {4}
    assert [e.failed for e in events] == sorted(e.failed for e in events)
    assert events[-1].failed == 1
    by_user = {e.user_id: e for e in events}
    assert set(by_user) == {fresh, stale, missing, failing}
    outcomes = {u: by_user[u].result.outcome for u in (fresh, stale, missing)}
    assert outcomes == {fresh: pb.OUTCOME_FRESH, stale: pb.OUTCOME_UNCHANGED, missing: pb.OUTCOME_BUILT}
    assert all(by_user[u].WhichOneof("event") == "result" for u in (fresh, stale, missing))
    assert all(len(by_user[u].result.cache.passes) == 2 for u in (fresh, stale, missing))
    failure = by_user[failing]
    assert failure.WhichOneof("event") == "error"
    assert failure.error.code == "UNAVAILABLE"
    assert failure.error.message
    error = await rpc_error(stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=failing)))
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_a_sharded_refresh_only_touches_the_riders_of_its_shard(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_ids = [server.seed_user(sandbox, passes=1, expired=0) for _ in range(4)]
    odd = [u for u in user_ids if u % 2 == 1]

    events = await collect(
        stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(shard_index=1, shard_count=2, user_ids=user_ids))
    )

    assert sorted(e.user_id for e in events) == sorted(odd)
    assert {e.total for e in events} == ({len(odd)} if odd else set())
    assert all(e.result.outcome == pb.OUTCOME_BUILT for e in events)
    assert [u for u in user_ids if bytemark_calls(sandbox, u) > 0] == odd


async def test_cancelling_a_refresh_stream_stops_new_bytemark_calls(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_ids = [server.seed_user(sandbox, passes=1, expired=0) for _ in range(20)]

    with SandboxConfigChange(sandbox, latency_ms=200):
        call = stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=user_ids, concurrency=2))
        received = []
        async for event in call:
            received.append(event)
            if len(received) == 2:
                break
        call.cancel()
        # Riders already in flight finish; after that the sandbox must hear nothing more.
        await wait_for_quiet_sandbox(sandbox, quiet_seconds=0.8)
        touched = [u for u in user_ids if bytemark_calls(sandbox, u) > 0]

    assert call.cancelled()
    assert len(touched) <= 8, f"{len(touched)} of 20 riders were still refreshed after the cancel"
    cached = [
        u for u in user_ids if server.query("SELECT 1 FROM bytemark_tickets_cache WHERE user_id = ?", (u,))
    ]
    assert len(cached) < len(user_ids)


async def test_bootstrap_builds_every_rider_of_an_empty_store_once_then_skips(
    empty_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    riders = [empty_server.seed_user(sandbox, passes=2, expired=1) for _ in range(3)]
    revoked = empty_server.seed_user(sandbox)
    sandbox.call("POST", f"/_sandbox/users/{revoked}/revoke")
    failing = empty_server.seed_user(sandbox)
    sandbox.add_faults({"endpoint": "v4", "kind": "wrong_shape", "times": -1, "user_id": failing})
    async with grpc.aio.insecure_channel(empty_server.address) as channel:
        stub: Stub = pb_grpc.TicketCacheServiceStub(channel)
        try:
            events = await collect(
                stub.BuildCacheIfEmpty(
                    pb.BuildCacheIfEmptyRequest(concurrency=2, include_cache=True, view=pb.CACHE_VIEW_SUMMARY)
                )
            )
        finally:
            sandbox.clear_faults()
        second = await collect(stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest()))

    assert [e.done for e in events] == [1, 2, 3, 4, 5]
    assert {e.total for e in events} == {5}
    assert events[-1].failed == 1
    assert not any(e.skipped_not_empty for e in events)
    by_user = {e.user_id: e for e in events}
    assert set(by_user) == {*riders, revoked, failing}
    for rider in riders:
        result = by_user[rider].result
        assert (result.outcome, result.counts.passes, result.counts.passes4) == (pb.OUTCOME_BUILT, 2, 1)
        assert [p.WhichOneof("content") for p in result.cache.passes] == [None, None]
    assert by_user[revoked].result.outcome == pb.OUTCOME_NO_VALID_TOKEN
    assert by_user[failing].error.code == "UNAVAILABLE"
    assert len(second) == 1
    assert second[0].skipped_not_empty
    assert (second[0].user_id, second[0].done, second[0].total) == (0, 0, 0)
    assert not second[0].HasField("result") and not second[0].HasField("error")


# --- purge ------------------------------------------------------------------------------------


async def test_purge_lists_orphaned_caches_in_a_dry_run_and_removes_them_for_real(
    stub: Stub, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    orphan, kept = server.seed_user(sandbox), server.seed_user(sandbox)
    for user_id in (orphan, kept):
        await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))
    server.query("UPDATE bytemark_tokens SET token = NULL, refresh_token = NULL WHERE user_id = ?", (orphan,))

    dry = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))
    still_there = await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=orphan))
    real = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=False))
    after = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))

    assert dry.dry_run and orphan in dry.removed_user_ids and kept not in dry.removed_user_ids
    assert still_there.cache.user_id == orphan
    assert not real.dry_run and orphan in real.removed_user_ids and kept not in real.removed_user_ids
    assert orphan not in after.removed_user_ids
    error = await rpc_error(stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=orphan)))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert (await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=kept))).cache.user_id == kept


# --- auth -------------------------------------------------------------------------------------

CREDENTIALS: list[tuple[str, tuple[tuple[str, str], ...], grpc.StatusCode | None]] = [
    ("no_token", (), grpc.StatusCode.UNAUTHENTICATED),
    ("wrong_token", (("authorization", "Bearer not-the-token"),), grpc.StatusCode.UNAUTHENTICATED),
    ("not_bearer", (("authorization", AUTH_TOKEN),), grpc.StatusCode.UNAUTHENTICATED),
    ("right_token", (("authorization", f"Bearer {AUTH_TOKEN}"),), None),
]


@pytest.mark.parametrize(
    ("metadata", "refused"), [(m, c) for _, m, c in CREDENTIALS], ids=[i for i, _, _ in CREDENTIALS]
)
async def test_with_an_auth_token_set_unary_and_streaming_calls_need_the_bearer_token(
    auth_server: ServerProcess,
    sandbox: SandboxProcess,
    metadata: tuple[tuple[str, str], ...],
    refused: grpc.StatusCode | None,
) -> None:
    user_id = auth_server.seed_user(sandbox, passes=2, expired=0)
    async with grpc.aio.insecure_channel(auth_server.address) as channel:
        stub: Stub = pb_grpc.TicketCacheServiceStub(channel)

        def unary() -> Awaitable[pb.CheckTicketCacheResponse]:
            return stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), metadata=metadata)

        def stream() -> Awaitable[list[pb.RefreshStaleCachesResponse]]:
            request = pb.RefreshStaleCachesRequest(user_ids=[user_id])
            return collect(stub.RefreshStaleCaches(request, metadata=metadata))

        if refused is None:
            assert (await unary()).result.outcome == pb.OUTCOME_BUILT
            events = await stream()
            assert [(e.user_id, e.result.outcome) for e in events] == [(user_id, pb.OUTCOME_FRESH)]
        else:
            for call in (unary(), stream()):
                error = await rpc_error(call)
                assert error.code() == refused
                assert AUTH_TOKEN not in (error.details() or "")
            assert bytemark_calls(sandbox, user_id) == 0


async def test_with_an_auth_token_set_health_answers_without_one(auth_server: ServerProcess) -> None:
    async with grpc.aio.insecure_channel(auth_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        overall = await health.Check(health_pb2.HealthCheckRequest())
        service = await health.Check(
            health_pb2.HealthCheckRequest(service="bytemark.ticketcache.v1.TicketCacheService")
        )

    assert overall.status == service.status == health_pb2.HealthCheckResponse.SERVING
