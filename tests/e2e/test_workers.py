"""GRPC_WORKERS=2: two server processes share one port (SO_REUSEPORT). Both listen and answer,
each keeps its own metrics (on METRICS_LISTEN's port + worker index), every call made over fresh
connections is answered, one SIGTERM to the parent stops both cleanly, and a worker that cannot
start ends the whole server."""

from __future__ import annotations

import asyncio
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server, wait_until
from devtools.ports import free_port

CALLS = 40


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port(consecutive=2)  # worker 1 serves metrics on the port after worker 0's


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path, metrics_port: int) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox, work_dir, GRPC_WORKERS="2", METRICS_LISTEN=f"127.0.0.1:{metrics_port}", LOG_LEVEL="INFO"
    )
    wait_until(
        lambda: process.logs().count("listening on") == 2, 60, "both workers", process.proc, process.log_path
    )
    yield process
    process.stop()


def listening_workers(server: ServerProcess) -> list[int]:
    port = int(server.address.rsplit(":", 1)[1])
    pids = []
    for child in psutil.Process(server.pid).children():
        sockets = child.net_connections(kind="tcp")
        if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets):
            pids.append(child.pid)
    return pids


def answered_calls(metrics_port: int) -> float:
    """GetTicketCache calls this worker answered (any status), from its own /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("grpc_server_handled_total") and 'GetTicketCache"' in line
    )


async def one_call_on_a_fresh_connection(address: str) -> grpc.StatusCode:
    # A local subchannel pool: channels in one process otherwise share one TCP connection.
    async with grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        try:
            await stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=424242), timeout=20)
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK


def test_two_workers_listen_on_the_one_port(server: ServerProcess) -> None:
    assert len(listening_workers(server)) == 2


async def test_every_call_is_answered_and_both_workers_take_some(
    server: ServerProcess, metrics_port: int
) -> None:
    codes = await asyncio.gather(*(one_call_on_a_fresh_connection(server.address) for _ in range(CALLS)))
    assert codes == [grpc.StatusCode.NOT_FOUND] * CALLS  # the user has no cache: answered, by either
    # A call ended by abort() is counted just after its status is sent: allow a moment.
    for _ in range(50):
        per_worker = [answered_calls(metrics_port), answered_calls(metrics_port + 1)]
        if sum(per_worker) == CALLS:
            break
        await asyncio.sleep(0.1)
    assert sum(per_worker) == CALLS
    assert all(count > 0 for count in per_worker), per_worker


def test_one_sigterm_to_the_parent_stops_both_workers(server: ServerProcess) -> None:
    workers = [psutil.Process(pid) for pid in listening_workers(server)]
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def test_a_worker_that_cannot_start_ends_the_whole_server_with_a_one_line_reason(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    """Worker 1's metrics port is taken: the parent must not go on serving with worker 0 alone
    (probes would pass at half capacity); it exits 1 and the log says which setting to change."""
    port = free_port(consecutive=2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        process = start_server(
            sandbox, work_dir, wait_ready=False, GRPC_WORKERS="2", METRICS_LISTEN=f"127.0.0.1:{port}"
        )
        try:
            assert process.proc.wait(timeout=60) == 1
        finally:
            process.stop()
    log = process.logs()
    reason = f"error: cannot serve /metrics on 127.0.0.1:{port + 1} (METRICS_LISTEN; is the port in use?)"
    assert reason in log
    assert "Traceback" not in log
    assert "a gRPC worker ended on its own; stopping the others" in log
