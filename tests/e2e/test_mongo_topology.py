"""The production topology end to end: a real server process with caches and ticket log on a real
FerretDB server, tokens and the refresh log on MariaDB, through each MONGODB_CLIENT."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB
from devtools.harness import SandboxProcess, ServerProcess
from tests.e2e.mongo_topology import CACHES, Topology
from tests.e2e.reliability import change_passes, sandbox_passes

pytestmark = pytest.mark.mysql

Stub = pb_grpc.TicketCacheServiceStub
FREE_PRODUCT = "2417edb7-856c-43ee-b3df-c508b8be259b"
ENTRY_FIELDS = ["pass_uuid", "timestamp", "status", "free_ticket_status", "payload", "payload_hash"]
RETENTION_DAYS = 30
DAY = 86_400


@pytest.fixture(scope="module", params=["motor", "pymongo"])
def topology(
    request: pytest.FixtureRequest, ferretdb_server: FerretDB, sandbox: SandboxProcess, work_dir: Path
) -> Iterator[Topology]:
    topo = Topology(ferretdb_server, sandbox, work_dir, client=request.param)
    try:
        topo.start_server(PASSES4_RETENTION_DAYS=str(RETENTION_DAYS))
        yield topo
    finally:
        topo.close()


@pytest.fixture(scope="module")
def server(topology: Topology) -> ServerProcess:
    return topology.servers[0]


@pytest_asyncio.fixture
async def stub(server: ServerProcess) -> AsyncIterator[Stub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield pb_grpc.TicketCacheServiceStub(channel)


async def collect(stream: Any) -> list[Any]:
    return [event async for event in stream]


def add_free_pass(sandbox: SandboxProcess, user_id: int) -> None:
    template = {k: v for k, v in sandbox_passes(sandbox, user_id)[0].items() if k != "uuid"}
    sandbox.call(
        "POST",
        f"/_sandbox/users/{user_id}/passes",
        {**template, "status": "USABLE", "product_uuid": FREE_PRODUCT},
    )


async def test_every_rpc_works_with_caches_on_ferretdb_and_tokens_on_mariadb(
    topology: Topology, stub: Stub, sandbox: SandboxProcess
) -> None:
    riders = [topology.seed_user(passes=3, expired=1) for _ in range(3)]

    bootstrap = await collect(stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(concurrency=2)))
    assert sorted(e.user_id for e in bootstrap) == sorted(riders)
    assert {e.result.outcome for e in bootstrap} == {pb.OUTCOME_BUILT} and bootstrap[-1].failed == 0
    assert (await collect(stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest())))[0].skipped_not_empty

    first, second, third = riders
    built = (await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=first))).result
    assert (built.outcome, built.counts.passes, built.counts.passes4) == (pb.OUTCOME_BUILT, 3, 1)
    for view in (pb.CACHE_VIEW_FULL, pb.CACHE_VIEW_RAW, pb.CACHE_VIEW_SUMMARY):
        cache = (await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=first, view=view))).cache
        assert (cache.user_id, len(cache.passes), len(cache.passes4)) == (first, 3, 1)

    change_passes(sandbox, first)
    add_free_pass(sandbox, first)
    updated = (await stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=first))).result
    assert updated.outcome == pb.OUTCOME_UPDATED
    assert (updated.counts.new, updated.counts.changed, updated.counts.new_free) == (3, 1, 1)
    assert topology.refresh_log_rows(first) == [(2, 0)]  # the loyalty row, in MariaDB
    assert len(topology.log_documents(first)) == 4  # the ticket log, in FerretDB

    checked = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=first))).result
    assert checked.outcome == pb.OUTCOME_UNCHANGED
    fresh = (await stub.CheckTicketCacheTimeout(pb.CheckTicketCacheTimeoutRequest(user_id=second))).result
    assert fresh.outcome == pb.OUTCOME_FRESH

    stale = await collect(
        stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(max_age_seconds=3600, user_ids=riders))
    )
    assert {e.result.outcome for e in stale} == {pb.OUTCOME_FRESH} and stale[-1].done == 3

    topology.forget_token(third)
    dry = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True))
    assert third in dry.removed_user_ids and first not in dry.removed_user_ids
    purged = await stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=False))
    assert third in purged.removed_user_ids
    assert topology.cache_document(third) is None
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=third))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_stored_document_has_exactly_the_node_shape_plus_version(
    topology: Topology, stub: Stub, sandbox: SandboxProcess
) -> None:
    user_id = topology.seed_user(passes=2, expired=2)
    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))

    document = topology.cache_document(user_id)

    assert document is not None
    assert list(document) == ["_id", "user_id", "timestamp", "passes", "passes4", "version"]
    assert document["user_id"] == user_id and document["version"] == 1
    assert (len(document["passes"]), len(document["passes4"])) == (2, 2)
    for entry in document["passes"] + document["passes4"]:
        assert list(entry) == ENTRY_FIELDS
    upstream = {p["uuid"]: p for p in sandbox_passes(sandbox, user_id)}
    assert all(entry["payload"] == upstream[entry["pass_uuid"]] for entry in document["passes"])


def node_entry(payload: dict[str, Any], timestamp: float, free: int = 0) -> dict[str, Any]:
    """An entry as Mongoose wrote it: numbers are doubles, the hash is a stale one."""
    return {
        "pass_uuid": payload["uuid"],
        "timestamp": float(timestamp),
        "status": payload.get("status"),
        "free_ticket_status": float(free),
        "payload": payload,
        "payload_hash": "0" * 32,
    }


async def test_a_node_written_document_without_version_is_read_then_updated_in_place(
    topology: Topology, stub: Stub, sandbox: SandboxProcess
) -> None:
    user_id = topology.seed_user(passes=2, expired=1)
    upstream = sandbox_passes(sandbox, user_id)
    current = [p for p in upstream if p["status"] != "EXPIRED"]
    legacy = {
        "user_id": float(user_id),
        "timestamp": float(time.time() - 7200),
        "passes": [node_entry(current[0], 1_600_000_000, free=1)],
        "passes4": [],
    }
    inserted_id = topology.collection(CACHES).insert_one(legacy).inserted_id

    read = (
        await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=user_id, view=pb.CACHE_VIEW_RAW))
    ).cache
    assert read.version == 0 and [p.pass_uuid for p in read.passes] == [current[0]["uuid"]]
    assert json.loads(read.passes[0].payload_json) == current[0]

    result = (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id))).result

    assert result.outcome == pb.OUTCOME_UPDATED
    documents = list(topology.collection(CACHES).find({"user_id": user_id}))
    assert len(documents) == 1 and documents[0]["_id"] == inserted_id  # the same document, in place
    assert documents[0]["version"] == 1
    assert sorted(e["pass_uuid"] for e in documents[0]["passes"]) == sorted(p["uuid"] for p in current)
    assert (len(documents[0]["passes"]), len(documents[0]["passes4"])) == (2, 1)


async def test_passes4_retention_drops_only_unlisted_expired_entries_older_than_the_setting(
    topology: Topology, stub: Stub, sandbox: SandboxProcess
) -> None:
    user_id = topology.seed_user(passes=1, expired=1)
    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))
    document = topology.cache_document(user_id)
    assert document is not None
    now = int(time.time())
    listed = document["passes4"][0]
    listed["timestamp"] = now - 400 * DAY  # old, but Bytemark still lists it
    history = [
        node_entry({"uuid": "old-history", "status": "EXPIRED"}, now - (RETENTION_DAYS + 1) * DAY),
        node_entry({"uuid": "young-history", "status": "EXPIRED"}, now - (RETENTION_DAYS - 1) * DAY),
    ]
    # (FerretDB v1 has no positional `$` update operator: rewrite the list as a whole.)
    topology.collection(CACHES).update_one(
        {"user_id": user_id}, {"$set": {"passes4": [listed, *history], "timestamp": now - 7200}}
    )

    result = (await stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user_id))).result

    assert result.outcome == pb.OUTCOME_UPDATED
    kept = {e["pass_uuid"] for e in topology.cache_document(user_id)["passes4"]}  # type: ignore[index]
    assert kept == {listed["pass_uuid"], "young-history"}


# The default client only: the refusal and the untouched old document are the contract's
# test_a_cache_over_16_mib_is_refused_naming_user_and_size_and_counted_and_the_old_one_stays, on both.
@pytest.mark.parametrize("topology", ["motor"], indirect=True)
async def test_a_rider_over_the_16_mib_limit_is_resource_exhausted_and_the_old_document_stays(
    topology: Topology, stub: Stub, sandbox: SandboxProcess
) -> None:
    user_id = topology.seed_user(passes=1, expired=0)
    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id))
    # Expired history (recent, so retention keeps it) that leaves no room for one more pass.
    heavy = node_entry(
        {"uuid": "heavy", "status": "EXPIRED", "blob": "x" * (16 * 1024 * 1024 - 4096)}, time.time()
    )
    topology.collection(CACHES).update_one({"user_id": user_id}, {"$set": {"passes4": [heavy]}})
    before = topology.cache_document(user_id)
    template = {k: v for k, v in sandbox_passes(sandbox, user_id)[0].items() if k != "uuid"}
    sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {**template, "note": "y" * 8192})

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=user_id))

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = refused.value.details() or ""
    assert f"user {user_id}" in details and "bytes" in details
    assert topology.cache_document(user_id) == before
    assert topology.log_documents(user_id) == []
