"""Shared E2E fixtures: one sandbox process and one server process per test module.

Tests isolate themselves by creating their own sandbox users (fresh user ids)."""

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


@pytest.fixture(scope="module")
def sandbox(work_dir: Path) -> Iterator[SandboxProcess]:
    process = start_sandbox(work_dir)
    yield process
    process.stop()


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
