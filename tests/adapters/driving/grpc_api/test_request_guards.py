"""Requests that never reach a handler: corrupt wire bytes, and the constant-time token check."""

from __future__ import annotations

import hmac

import grpc
import pytest

from adapters.driving.grpc_api import credentials
from tests.adapters.driving.grpc_api.conftest import AUTH_TOKEN, RunningServer

SERVICE = "/bytemark.ticketcache.v1.TicketCacheService"


@pytest.mark.parametrize("method", ["GetTicketCache", "RefreshStaleCaches"])
async def test_a_request_that_is_not_valid_protobuf_is_an_invalid_argument_naming_its_type(
    grpc_server: RunningServer, method: str
) -> None:
    path = f"{SERVICE}/{method}"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        if method == "RefreshStaleCaches":
            async for _ in grpc_server.channel.unary_stream(path)(b"\xff\xff\xff"):
                pass
        else:
            await grpc_server.channel.unary_unary(path)(b"\x08")

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"bytemark.ticketcache.v1.{method}Request" in (raised.value.details() or "")
    assert grpc_server.use_cases.calls == []


async def test_a_corrupt_request_without_credentials_is_still_unauthenticated(
    authed_server: RunningServer,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await authed_server.channel.unary_unary(f"{SERVICE}/GetTicketCache")(b"\xff")

    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_valid_wire_bytes_still_reach_the_handler(grpc_server: RunningServer) -> None:
    reply = await grpc_server.channel.unary_unary(f"{SERVICE}/GetTicketCache")(b"\x08\x2a")  # user_id 42

    assert reply  # a serialized GetTicketCacheResponse
    assert grpc_server.use_cases.calls == [("get_cache", (42,))]


def test_the_bearer_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real_compare_digest = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare_digest(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    guard = credentials.CredentialsFile(None, operate_token=AUTH_TOKEN)

    right = guard.granted_scope(f"Bearer {AUTH_TOKEN}")
    wrong = guard.granted_scope(f"Bearer {AUTH_TOKEN[:-1]}X")

    assert (right, wrong) == (credentials.Scope.OPERATE, None)
    expected = AUTH_TOKEN.encode()
    assert compared == [(expected, expected), (f"{AUTH_TOKEN[:-1]}X".encode(), expected)]
