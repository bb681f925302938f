"""WatchChanges against two real server processes sharing one store, on each store: one SQLite file,
and the production topology (caches on FerretDB, where the relay appends the feed; tokens on
MariaDB). What a subscriber builds from the feed equals what the store holds, through concurrent
refreshes on both processes and a disconnect and resume; expired and foreign cursors get the
documented status codes."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import orjson
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB
from devtools.harness import SandboxProcess, ServerProcess, start_server
from tests.e2e.mongo_topology import CACHES, Topology
from tests.e2e.reliability import change_passes, sandbox_passes
from ticket_cache_client import TicketCacheError

# Two server processes start inside the first test's time (each takes seconds, minutes on a busy CI box).
pytestmark = pytest.mark.timeout(900)
Key = tuple[int, int, str]  # (user_id, PassList, pass_uuid)


FEED = "bytemarkticketschanges"  # the feed's collection on MongoDB
STORES = ["sqlite", pytest.param("ferretdb", marks=pytest.mark.mysql)]


@dataclass
class Store:
    """Two server processes on one store, and what the store holds, read the way an operator would."""

    servers: tuple[ServerProcess, ServerProcess]
    seed_user: Callable[[], int]
    stored_passes: Callable[[], dict[Key, str]]
    riders: int


@pytest.fixture(scope="module", params=STORES)
def store(request: pytest.FixtureRequest, sandbox: SandboxProcess, work_dir: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        shared = work_dir / "feed.sqlite3"
        first = start_server(sandbox, work_dir, SQLITE_PATH=str(shared))
        second = start_server(sandbox, work_dir, SQLITE_PATH=str(shared))
        try:
            yield Store(
                (first, second),
                lambda: first.seed_user(sandbox, passes=10, expired=4),
                lambda: stored_sqlite_passes(shared),
                riders=50,
            )
        finally:
            first.stop()
            second.stop()
        return
    # The production topology; the two processes use the two MongoDB clients. FerretDB v1 scans
    # the caches for every lookup by user_id, so a refresh costs it the whole collection: the same
    # ~1,000 changes come from 8 riders with many passes rather than 50 with few.
    topology = Topology(request.getfixturevalue("ferretdb_server"), sandbox, work_dir, client="motor")
    try:
        servers = (topology.start_server(), topology.start_server(MONGODB_CLIENT="pymongo"))
        yield Store(
            servers,
            lambda: topology.seed_user(passes=100, expired=25),
            lambda: stored_mongo_passes(topology),
            riders=8,
        )
    finally:
        topology.close()


def stored_sqlite_passes(path: Path) -> dict[Key, str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT user_id, passes, passes4 FROM bytemark_tickets_cache").fetchall()
    stored: dict[Key, str] = {}
    for user_id, passes, passes4 in rows:
        for pass_list, text in ((pb.PASS_LIST_PASSES, passes), (pb.PASS_LIST_PASSES4, passes4)):
            for entry in orjson.loads(text.lstrip()):
                stored[(user_id, pass_list, entry["pass_uuid"])] = entry["payload_hash"]
    return stored


def stored_mongo_passes(topology: Topology) -> dict[Key, str]:
    stored: dict[Key, str] = {}
    for document in topology.collection(CACHES).find({"_purge": {"$exists": False}}):
        for pass_list, name in ((pb.PASS_LIST_PASSES, "passes"), (pb.PASS_LIST_PASSES4, "passes4")):
            for entry in document[name]:
                stored[(int(document["user_id"]), pass_list, entry["pass_uuid"])] = entry["payload_hash"]
    return stored


class Subscriber:
    """Applies events to a map, refusing any that a gap or a duplicate would explain."""

    def __init__(self) -> None:
        self.passes: dict[Key, str] = {}
        self.cursor = ""
        self.events = 0
        self.applied = asyncio.Event()

    def apply(self, response: pb.WatchChangesResponse) -> None:
        for event in response.events:
            key = (event.user_id, event.list, event.pass_uuid)
            if event.kind == pb.CHANGE_KIND_ADDED:
                assert key not in self.passes, f"ADDED twice: {key}"
                self.passes[key] = event.payload_hash
            elif event.kind == pb.CHANGE_KIND_CHANGED:
                assert key in self.passes, f"CHANGED before ADDED: {key}"
                self.passes[key] = event.payload_hash
            else:
                assert event.kind == pb.CHANGE_KIND_REMOVED
                assert self.passes.pop(key, None) is not None, f"REMOVED unknown: {key}"
            self.events += 1
        self.cursor = response.cursor
        self.applied.set()

    async def follow(self, server: ServerProcess, stop_after: int | None = None) -> None:
        """Watch from `self.cursor`, applying every message, until `stop_after` events (then hang
        up) or until cancelled."""
        async with grpc.aio.insecure_channel(server.address) as channel:
            stream = pb_grpc.TicketCacheServiceStub(channel).WatchChanges(
                pb.WatchChangesRequest(start_cursor=self.cursor)
            )
            async for response in stream:
                self.apply(response)
                if stop_after is not None and self.events >= stop_after:
                    stream.cancel()
                    return

    async def catch_up(self, stored_passes: Callable[[], dict[Key, str]], within: float) -> None:
        """Wait until the map equals the store (the stream keeps applying meanwhile)."""
        async with asyncio.timeout(within):
            while self.passes != stored_passes():
                self.applied.clear()
                with contextlib.suppress(TimeoutError):  # also look again now and then
                    await asyncio.wait_for(self.applied.wait(), 0.5)


async def refresh_all(servers: tuple[ServerProcess, ...], user_ids: list[int], build: bool = False) -> None:
    """Every rider refreshed on every server at once (the two processes race on each rider)."""
    gate = asyncio.Semaphore(8)
    channels = [grpc.aio.insecure_channel(s.address) for s in servers]
    stubs = [pb_grpc.TicketCacheServiceStub(c) for c in channels]

    async def one(stub: pb_grpc.TicketCacheServiceStub, user_id: int) -> None:
        async with gate:
            try:
                if build:
                    await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id), timeout=180)
                else:
                    await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=180)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.ABORTED, error.details()  # lost the race twice

    try:
        await asyncio.gather(*(one(stub, u) for u in user_ids for stub in stubs))
    finally:
        for channel in channels:
            await channel.close()


def remove_one_pass(sandbox: SandboxProcess, user_id: int) -> None:
    current = next(p for p in sandbox_passes(sandbox, user_id) if p["status"] != "EXPIRED")
    sandbox.call("DELETE", f"/_sandbox/users/{user_id}/passes/{current['uuid']}")


@pytest.mark.needs_atomic_conditional_update  # two servers refresh the same riders at once
async def test_a_subscriber_that_applies_every_event_ends_with_exactly_the_stored_passes(
    store: Store, sandbox: SandboxProcess
) -> None:
    first, second = two_servers = store.servers
    user_ids = [store.seed_user() for _ in range(store.riders)]
    subscriber = Subscriber()
    async with grpc.aio.insecure_channel(first.address) as channel:  # "from now": the first cursor
        stream = pb_grpc.TicketCacheServiceStub(channel).WatchChanges(pb.WatchChangesRequest())
        subscriber.apply(await anext(aiter(stream)))
        stream.cancel()
    assert subscriber.cursor.startswith("v1.")

    watching = asyncio.create_task(subscriber.follow(first, stop_after=300))
    await refresh_all(two_servers, user_ids)
    await watching  # hung up after 300 events, mid-way through what the refreshes wrote (on
    # FerretDB inside one write's batch of changes)
    resumed = asyncio.create_task(subscriber.follow(second))  # the other replica
    for user_id in user_ids:
        change_passes(sandbox, user_id)
    await refresh_all(two_servers, user_ids)
    for user_id in user_ids:
        change_passes(sandbox, user_id)
        remove_one_pass(sandbox, user_id)
    half = store.riders // 2
    await refresh_all(two_servers, user_ids[:half], build=True)  # a Build replaces: its diff
    await refresh_all(two_servers, user_ids[half:])
    try:
        await subscriber.catch_up(store.stored_passes, within=120)
    finally:
        resumed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await resumed  # raises what the subscriber refused (a gap or a duplicate), if anything

    assert subscriber.events >= 1000
    assert subscriber.passes == store.stored_passes()


async def watch_status(server: ServerProcess, cursor: str) -> tuple[grpc.StatusCode, str, str]:
    """The status a watch from `cursor` starts with: code, details and ErrorInfo reason."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        stream = pb_grpc.TicketCacheServiceStub(channel).WatchChanges(
            pb.WatchChangesRequest(start_cursor=cursor)
        )
        try:
            await anext(aiter(stream))
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details() or "", TicketCacheError(error).reason
        stream.cancel()
        return grpc.StatusCode.OK, "", ""


async def statuses_once_swept(
    restarted: ServerProcess, swept: Callable[[], bool]
) -> tuple[grpc.StatusCode, str, str, grpc.StatusCode]:
    """Once the restarted server's sweep has run (`swept`, up to 10 s): the status of a watch
    from the first cursor, its details and reason, and the status of a watch from now."""
    for _ in range(100):
        if swept():
            break
        await asyncio.sleep(0.1)
    code, details, reason = await watch_status(restarted, "v1.0")
    fresh_code, _, _ = await watch_status(restarted, "")
    return code, details, reason, fresh_code


@pytest.mark.parametrize("cursor", ["not-a-cursor", "v1.", "v1.-4", "v1.999999999999"])
async def test_a_cursor_the_service_did_not_issue_is_invalid_argument_naming_start_cursor(
    store: Store, cursor: str
) -> None:
    code, details, reason = await watch_status(store.servers[0], cursor)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith("start_cursor") and reason == "CURSOR_FOREIGN"


async def test_a_cursor_older_than_the_retention_is_out_of_range_and_says_to_resync(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    server = start_server(sandbox, work_dir)
    user_id = server.seed_user(sandbox, passes=3, expired=1)
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id), timeout=30)
    assert (await watch_status(server, "v1.0"))[0] == grpc.StatusCode.OK
    server.stop()
    # eight days pass: the restarted server's retention sweep (default 7 days) removes these events
    server.query("UPDATE bytemark_change_feed SET changed_at = changed_at - 8 * 86400")
    restarted = start_server(sandbox, work_dir, SQLITE_PATH=str(server.sqlite_path))
    try:
        code, details, reason, fresh_code = await statuses_once_swept(
            restarted, lambda: restarted.query("SELECT COUNT(*) FROM bytemark_change_feed")[0][0] == 0
        )
    finally:
        restarted.stop()
    assert code == grpc.StatusCode.OUT_OF_RANGE and reason == "CURSOR_EXPIRED"
    assert "GetTicketCache" in details
    assert fresh_code == grpc.StatusCode.OK


@pytest.mark.mysql
async def test_on_ferretdb_a_cursor_older_than_the_retention_is_out_of_range_and_says_to_resync(
    ferretdb_server: FerretDB, sandbox: SandboxProcess, work_dir: Path
) -> None:
    topology = Topology(ferretdb_server, sandbox, work_dir, client="pymongo")
    try:
        server = topology.start_server()
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            for _ in range(2):  # two batches: the sweep always keeps the newest
                user_id = topology.seed_user(passes=3, expired=1)
                await stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=user_id), timeout=30)
        assert (await watch_status(server, "v1.0"))[0] == grpc.StatusCode.OK
        server.stop()
        # eight days pass: the restarted server's retention sweep (default 7 days) removes the first
        topology.collection(FEED).update_many({}, {"$inc": {"stored_at": -8 * 86400}})
        restarted = topology.start_server()
        code, details, reason, fresh_code = await statuses_once_swept(
            restarted, lambda: topology.collection(FEED).count_documents({}) == 1
        )
    finally:
        topology.close()
    assert code == grpc.StatusCode.OUT_OF_RANGE and reason == "CURSOR_EXPIRED"
    assert "GetTicketCache" in details
    assert fresh_code == grpc.StatusCode.OK
