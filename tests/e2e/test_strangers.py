"""No state for strangers: a call naming a rider without a token row answers NO_VALID_TOKEN as
before, and writes nothing; PurgeOrphanedCaches removes the sync statuses such calls once left.

A reviewer's 120 calls for unknown ids added 170 AUTH_REQUIRED rows, and the AUTH_REQUIRED alert
fires at 100 (issue 21, "Why" item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.ferretdb import FerretDB
from devtools.harness import SandboxProcess, ServerProcess
from tests.e2e.mongo_topology import Topology

STRANGERS = list(range(8_800_000_001, 8_800_000_031))
CALL_TIMEOUT = 30.0
STATUS_ROWS_SQL = "SELECT user_id, state FROM bytemark_sync_status WHERE user_id >= ? ORDER BY user_id"


def status_rows(server: ServerProcess, from_user: int) -> list[tuple[int, str]]:
    return [(int(user), str(state)) for user, state in server.query(STATUS_ROWS_SQL, (from_user,))]


UNARY_CALLS = (
    ("CheckTicketCache", pb.CheckTicketCacheRequest),
    ("BuildTicketCache", pb.BuildTicketCacheRequest),
    ("CheckTicketCacheTimeout", pb.CheckTicketCacheTimeoutRequest),
)


def unary_outcome(stub: pb_grpc.TicketCacheServiceStub, method: str, request: object) -> object:
    """The call's outcome, or its status code when it failed."""
    try:
        return getattr(stub, method)(request, timeout=CALL_TIMEOUT).result.outcome
    except grpc.RpcError as error:
        return error.code()


def test_calls_for_riders_without_a_token_row_answer_as_before_and_write_no_status(
    server: ServerProcess,
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        outcomes = {
            unary_outcome(stub, method, request_type(user_id=user_id))
            for user_id in STRANGERS
            for method, request_type in UNARY_CALLS
        }
        events = list(
            stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=STRANGERS), timeout=CALL_TIMEOUT)
        )

    assert status_rows(server, STRANGERS[0]) == []
    assert outcomes <= {pb.OUTCOME_NO_VALID_TOKEN, grpc.StatusCode.NOT_FOUND}, outcomes
    # none is skipped as AUTH_REQUIRED by an earlier call: each is tried, and answered as before
    results = [event.result.outcome for event in events if event.WhichOneof("event") == "result"]
    assert results == [pb.OUTCOME_NO_VALID_TOKEN] * len(STRANGERS)


@pytest.fixture
def left_behind(server: ServerProcess, sandbox: SandboxProcess) -> tuple[int, int]:
    """A rider whose token Bytemark refuses (AUTH_REQUIRED, token row kept), and a stranger's
    AUTH_REQUIRED row as the previous version wrote them."""
    known = server.seed_user(sandbox)
    sandbox.call("POST", f"/_sandbox/users/{known}/revoke")
    with grpc.insecure_channel(server.address) as channel:
        pb_grpc.TicketCacheServiceStub(channel).CheckTicketCache(
            pb.CheckTicketCacheRequest(user_id=known), timeout=CALL_TIMEOUT
        )
    stranger = 8_900_000_001
    server.query(
        "INSERT INTO bytemark_sync_status (user_id, state, last_attempt_at, consecutive_failures)"
        " VALUES (?, 'AUTH_REQUIRED', 1700000000, 1)",
        (stranger,),
    )
    return known, stranger


def test_purge_removes_and_counts_the_sync_statuses_of_riders_without_a_token(
    server: ServerProcess, left_behind: tuple[int, int]
) -> None:
    known, stranger = left_behind
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        dry = stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True), timeout=CALL_TIMEOUT)
        after_dry_run = status_rows(server, min(known, stranger))
        done = stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=False), timeout=CALL_TIMEOUT)

    assert dry.removed_sync_statuses == 1 and after_dry_run == sorted(
        [(known, "AUTH_REQUIRED"), (stranger, "AUTH_REQUIRED")]
    )
    assert done.removed_sync_statuses == 1
    assert status_rows(server, min(known, stranger)) == [(known, "AUTH_REQUIRED")]


# --- the production topology: tokens on MariaDB, sync statuses on FerretDB --------------------

SYNC_STATUSES = "bytemarksyncstatuses"


@pytest.fixture
def topology(ferretdb_process: FerretDB, sandbox: SandboxProcess, work_dir: Path) -> Iterator[Topology]:
    topo = Topology(ferretdb_process, sandbox, work_dir, client="motor")
    try:
        yield topo
    finally:
        topo.close()


@pytest.mark.mysql
def test_on_mariadb_and_ferretdb_strangers_leave_no_status_and_purge_removes_a_forgotten_riders(
    topology: Topology, sandbox: SandboxProcess
) -> None:
    server = topology.start_server()
    known = topology.seed_user()
    sandbox.call("POST", f"/_sandbox/users/{known}/revoke")
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        for user_id in STRANGERS[:10]:
            unary_outcome(stub, "CheckTicketCache", pb.CheckTicketCacheRequest(user_id=user_id))
        list(stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=STRANGERS), timeout=CALL_TIMEOUT))
        stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=known), timeout=CALL_TIMEOUT)
        stored = sorted(d["user_id"] for d in topology.collection(SYNC_STATUSES).find({}))
        topology.forget_token(known)  # the app unlinked the rider
        dry = stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True), timeout=CALL_TIMEOUT)
        done = stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=False), timeout=CALL_TIMEOUT)

    assert stored == [known]  # AUTH_REQUIRED for the rider whose token Bytemark refused, no stranger
    assert (dry.removed_sync_statuses, done.removed_sync_statuses) == (1, 1)
    assert topology.collection(SYNC_STATUSES).count_documents({}) == 0
