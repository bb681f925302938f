"""The outbox against real processes, in both topologies: caches (and the outbox) on SQLite, or on
FerretDB as in production; tokens and the refresh log on MariaDB behind a TCP proxy the test cuts.
A refresh whose MariaDB write fails still succeeds; what it produced is kept with the cache and
lands exactly once when MariaDB is back, even across a kill -9 of the server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncmy
import grpc
import pymongo
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB
from devtools.harness import SandboxProcess, ServerProcess, start_server
from tests.e2e.mongo_topology import CACHES, MONGO_OPTIONS, mariadb
from tests.e2e.reliability import TcpProxy, sandbox_passes

# Each test may start a server process (seconds, minutes on a busy CI box) and waits for the relay.
pytestmark = [pytest.mark.mysql, pytest.mark.timeout(900)]

MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root"}
FREE_PRODUCT = "2417edb7-856c-43ee-b3df-c508b8be259b"
SLOW_FETCH_MS = 1500  # long enough to cut MariaDB after the token read, before anything is written
DELIVERED_WITHIN = 20.0  # the relay's backoff tops out at 5 s
MONGO_TOKEN_OUTBOX = "bytemarkticketsoutbox"  # rotated tokens wait there on MongoDB


@dataclass
class Topology:
    """One MariaDB database of its own behind `proxy`, and the cache store: SQLite (each server
    its own file) or, with `ferretdb`, a MongoDB database on the shared FerretDB server."""

    sandbox: SandboxProcess
    work_dir: Path
    proxy: TcpProxy
    ferretdb: FerretDB | None
    mysql_database: str
    server: ServerProcess | None = None
    mongo_databases: list[str] = field(default_factory=list)

    def start(self, **env: str) -> ServerProcess:
        url = (
            f"mysql://root@127.0.0.1:{self.proxy.port}/{self.mysql_database}"
            "?connect_timeout=1.5&query_timeout=1.5"
        )
        return start_server(self.sandbox, self.work_dir, MYSQL_URL=url, **env)

    def fresh_cache_store(self) -> dict[str, str]:
        """Server env for caches and an outbox no other running server reads (or relays)."""
        if self.ferretdb is None:
            return {}  # start_server gives each server its own SQLite file
        self.mongo_databases.append(f"e2e_outbox_{uuid.uuid4().hex[:10]}")
        return {"MONGODB_URL": self.ferretdb.url(self.mongo_databases[-1], **MONGO_OPTIONS)}

    def drop_mongo_databases(self) -> None:
        if self.ferretdb is not None and self.mongo_databases:
            with pymongo.MongoClient(self.ferretdb.url("admin")) as client:
                for name in self.mongo_databases:
                    client.drop_database(name)

    @staticmethod
    def same_cache_store(server: ServerProcess) -> dict[str, str]:
        """Server env for a restart on the stores `server` used."""
        if "MONGODB_URL" in server.env:
            return {"MONGODB_URL": server.env["MONGODB_URL"]}
        return {"SQLITE_PATH": str(server.sqlite_path)}

    async def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = await asyncmy.connect(**MYSQL, database=self.mysql_database, autocommit=True)
        try:
            async with conn.cursor() as cur:
                await cur.execute(sql, params or None)
                return [tuple(row) for row in await cur.fetchall()]
        finally:
            conn.close()

    async def seed_user(self) -> int:
        creds = self.sandbox.create_user(passes=3, expired=1)
        await self.rows(
            "INSERT INTO bytemark_tokens (user_id, token, refresh_token, status, updated_at)"
            " VALUES (%s, %s, %s, 1, NOW())",
            (int(creds["user_id"]), creds["access_token"], creds["refresh_token"]),
        )
        return int(creds["user_id"])


def pending_records(server: ServerProcess) -> Counter[str]:
    """Undelivered outbox records by target, read from the server's cache store as an operator would."""
    if "MONGODB_URL" not in server.env:
        return Counter(dict(server.query("SELECT target, COUNT(*) FROM bytemark_outbox GROUP BY target")))
    with pymongo.MongoClient(server.env["MONGODB_URL"]) as client:
        db = client.get_default_database()
        pending = Counter(doc["target"] for doc in db[MONGO_TOKEN_OUTBOX].find({}, {"target": 1}))
        for cache in db[CACHES].find({"_outbox_pending": True}, {"_outbox": 1}):
            pending.update(entry["target"] for entry in cache["_outbox"])
        return pending


@pytest.fixture(scope="module", params=["sqlite", "ferretdb"])
def topology(request: pytest.FixtureRequest, sandbox: SandboxProcess, work_dir: Path) -> Iterator[Topology]:
    ferretdb = request.getfixturevalue("ferretdb_server") if request.param == "ferretdb" else None
    database = f"e2e_outbox_{uuid.uuid4().hex[:10]}"
    mariadb(f"CREATE DATABASE {database}")
    state = Topology(sandbox, work_dir, TcpProxy("127.0.0.1", 3306), ferretdb, database)
    try:
        state.server = state.start(**state.fresh_cache_store())
        yield state
    finally:
        if state.server is not None:
            state.server.stop()
        state.proxy.close()
        state.drop_mongo_databases()
        mariadb(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture
def server(topology: Topology) -> ServerProcess:
    assert topology.server is not None
    return topology.server


@pytest_asyncio.fixture
async def stub(server: ServerProcess) -> AsyncIterator[pb_grpc.TicketCacheServiceStub]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield pb_grpc.TicketCacheServiceStub(channel)


async def check(stub: pb_grpc.TicketCacheServiceStub, user_id: int) -> pb.RefreshResult:
    return (await stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user_id), timeout=30)).result


def add_free_pass(sandbox: SandboxProcess, user_id: int) -> None:
    template = {k: v for k, v in sandbox_passes(sandbox, user_id)[0].items() if k != "uuid"}
    sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {**template, "product_uuid": FREE_PRODUCT})


def slow_bytemark(sandbox: SandboxProcess, latency_ms: float) -> None:
    sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": latency_ms})


async def check_while_mariadb_is_cut(
    topology: Topology, stub: pb_grpc.TicketCacheServiceStub, user_id: int
) -> pb.RefreshResult:
    """A refresh that reads its token, then loses MariaDB while Bytemark answers slowly."""
    slow_bytemark(topology.sandbox, SLOW_FETCH_MS)
    try:
        call = asyncio.create_task(check(stub, user_id))
        await asyncio.sleep(SLOW_FETCH_MS / 1000 / 3)  # the token read is done; the fetch is not
        topology.proxy.cut()
        return await call
    finally:
        slow_bytemark(topology.sandbox, 0)


async def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DELIVERED_WITHIN
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {DELIVERED_WITHIN}s: {what}")
        await asyncio.sleep(0.2)


async def reward_rows(topology: Topology, user_id: int) -> int:
    sql = "SELECT COUNT(*) FROM bytemark_ticket_refresh_log WHERE user_id = %s"
    rows = await topology.rows(sql, (user_id,))
    return int(rows[0][0])


async def test_a_free_ticket_row_whose_mariadb_is_cut_mid_refresh_is_delivered_exactly_once_when_it_returns(
    topology: Topology, server: ServerProcess, stub: pb_grpc.TicketCacheServiceStub
) -> None:
    user_id = await topology.seed_user()
    assert (await check(stub, user_id)).outcome == pb.OUTCOME_BUILT
    add_free_pass(topology.sandbox, user_id)
    try:
        result = await check_while_mariadb_is_cut(topology, stub, user_id)
        rows_while_cut = await reward_rows(topology, user_id)
        pending_while_cut = pending_records(server)
    finally:
        topology.proxy.restore()

    assert result.outcome == pb.OUTCOME_UPDATED and result.counts.new_free == 1
    assert (rows_while_cut, pending_while_cut["refresh_log"]) == (0, 1)

    async def delivered() -> bool:
        return await reward_rows(topology, user_id) == 1 and not pending_records(server)

    await wait_for(delivered, "the reward row delivered and its record marked")
    await asyncio.sleep(1.5)  # a relay pass or two later: still exactly one
    assert await reward_rows(topology, user_id) == 1


async def test_a_rotated_token_whose_mariadb_is_cut_is_used_meanwhile_and_stored_once_it_returns(
    topology: Topology, server: ServerProcess, stub: pb_grpc.TicketCacheServiceStub
) -> None:
    user_id = await topology.seed_user()
    assert (await check(stub, user_id)).outcome == pb.OUTCOME_BUILT
    token_rows = "SELECT refresh_token FROM bytemark_tokens WHERE user_id = %s"
    ((old_refresh,),) = await topology.rows(token_rows, (user_id,))
    topology.sandbox.call("POST", f"/_sandbox/users/{user_id}/expire-token")
    try:
        rotated = await check_while_mariadb_is_cut(topology, stub, user_id)
        token_row_while_cut = await topology.rows(token_rows, (user_id,))
        pending_while_cut = pending_records(server)
        # MariaDB is still away: the rider keeps working on the token the outbox holds
        meanwhile = await check(stub, user_id)
    finally:
        topology.proxy.restore()

    assert rotated.outcome == pb.OUTCOME_UNCHANGED
    assert token_row_while_cut == [(old_refresh,)]
    assert pending_while_cut["token"] == 1
    assert meanwhile.outcome == pb.OUTCOME_UNCHANGED

    async def stored() -> bool:
        rows = await topology.rows(token_rows, (user_id,))
        return len(rows) == 1 and rows[0][0] != old_refresh and not pending_records(server)

    await wait_for(stored, "the rotated token stored in MariaDB")
    # the stored token is the live one: a refresh that now reads MariaDB works without a new exchange
    topology.sandbox.call("POST", "/_sandbox/stats/reset")
    assert (await check(stub, user_id)).outcome == pb.OUTCOME_UNCHANGED
    assert "POST /oauth/token" not in str(topology.sandbox.stats().get("requests", {}))


async def test_records_pending_at_a_kill_9_are_delivered_once_by_the_restarted_server(
    topology: Topology, sandbox: SandboxProcess
) -> None:
    # caches of its own: on FerretDB the module's server would otherwise relay the records itself
    server = topology.start(**topology.fresh_cache_store())
    user_ids = [await topology.seed_user() for _ in range(3)]
    try:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            for user_id in user_ids:
                assert (await check(stub, user_id)).outcome == pb.OUTCOME_BUILT
                add_free_pass(sandbox, user_id)
            slow_bytemark(sandbox, SLOW_FETCH_MS)
            try:
                calls = [asyncio.create_task(check(stub, user_id)) for user_id in user_ids]
                await asyncio.sleep(SLOW_FETCH_MS / 1000 / 3)
                topology.proxy.cut()
                results = await asyncio.gather(*calls)
            finally:
                slow_bytemark(sandbox, 0)
        pending_at_kill = pending_records(server)
        server.proc.kill()  # SIGKILL: no shutdown, no last delivery attempt
        server.proc.wait(timeout=10)
    finally:
        topology.proxy.restore()
        server.stop()

    assert [r.outcome for r in results] == [pb.OUTCOME_UPDATED] * 3
    assert pending_at_kill["refresh_log"] == 3
    assert [await reward_rows(topology, user_id) for user_id in user_ids] == [0, 0, 0]
    # a claim from long ago: the restarted server's sweep of delivered ids forgets it
    forgotten = "5eed" * 6
    claims = "SELECT COUNT(*) FROM bytemark_outbox_delivered WHERE record_id = %s"
    await topology.rows(
        "INSERT INTO bytemark_outbox_delivered (record_id, delivered_at) VALUES (%s, '2020-01-01')",
        (forgotten,),
    )
    restarted = topology.start(**topology.same_cache_store(server))
    try:

        async def all_delivered() -> bool:
            counts = [await reward_rows(topology, user_id) for user_id in user_ids]
            return counts == [1, 1, 1] and not pending_records(restarted)

        await wait_for(all_delivered, "every pending reward row delivered after the restart")
        await asyncio.sleep(1.5)
        assert [await reward_rows(topology, user_id) for user_id in user_ids] == [1, 1, 1]
        assert await topology.rows(claims, (forgotten,)) == [(0,)]
    finally:
        restarted.stop()
