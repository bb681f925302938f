from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest

from adapters.driving.grpc_api.credentials import CredentialsFile
from adapters.driving.grpc_api.server import create_server, graceful_shutdown
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases, make_cache

AUTH_TOKEN = "s3cret-token-for-tests"


@dataclass
class RunningServer:
    use_cases: FakeUseCases
    channel: grpc.aio.Channel
    stub: pb_grpc.TicketCacheServiceAsyncStub
    port: int


@pytest.fixture
def use_cases() -> FakeUseCases:
    fake = FakeUseCases()
    fake.caches[42] = make_cache(42)
    return fake


async def serve(
    use_cases: FakeUseCases,
    auth_token: str | None = None,
    credentials: CredentialsFile | None = None,
    *,
    traced: bool = False,
) -> AsyncIterator[RunningServer]:
    # Built inside the async fixture, so on the test's own event loop (grpc#32480).
    server, port, health = await create_server(
        use_cases, listen="127.0.0.1:0", auth_token=auth_token, credentials=credentials, traced=traced
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield RunningServer(use_cases, channel, pb_grpc.TicketCacheServiceStub(channel), port)
    finally:
        await channel.close()
        await graceful_shutdown(server, health, grace=0.5)


@pytest.fixture
async def grpc_server(use_cases: FakeUseCases) -> AsyncIterator[RunningServer]:
    async for running in serve(use_cases, auth_token=None):
        yield running


@pytest.fixture
async def authed_server(use_cases: FakeUseCases) -> AsyncIterator[RunningServer]:
    async for running in serve(use_cases, auth_token=AUTH_TOKEN):
        yield running
