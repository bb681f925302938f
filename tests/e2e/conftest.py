"""Shared E2E fixtures: one sandbox process per session (per xdist worker), handed to each module as
it was at the start (knobs, faults and counters reset after each module), and one server process
per test module.

Tests isolate themselves by creating their own sandbox users (fresh user ids). A module that needs
a sandbox started with other flags overrides `sandbox` with a process of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_sandbox, start_server


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def session_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    process = start_sandbox(tmp_path_factory.mktemp("sandbox"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def sandbox(session_sandbox: SandboxProcess) -> Iterator[SandboxProcess]:
    """The session's sandbox; what a module changed (knobs, faults, counters) ends with it."""
    knobs = session_sandbox.call("GET", "/_sandbox/config")
    yield session_sandbox
    session_sandbox.clear_faults()
    session_sandbox.call("PATCH", "/_sandbox/config", knobs)
    session_sandbox.call("POST", "/_sandbox/stats/reset")


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir)
    yield process
    process.stop()


@pytest_asyncio.fixture
async def stub(server: ServerProcess) -> AsyncIterator[ticket_cache_pb2_grpc.TicketCacheServiceStub]:
    """A typed client on a channel made inside the test's own loop (grpc#32480)."""
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield ticket_cache_pb2_grpc.TicketCacheServiceStub(channel)
