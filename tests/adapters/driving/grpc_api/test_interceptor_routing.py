"""ServiceInterceptor routes a method once: the wrapped handler is remembered per method name,
an unknown name is not, and what depends on the call (credentials) is still checked per call."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from adapters.driving.grpc_api.interceptors import ServiceInterceptor
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from tests.adapters.driving.grpc_api.conftest import AUTH_TOKEN, RunningServer

SERVICE = "/bytemark.ticketcache.v1.TicketCacheService"


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata: tuple[tuple[str, str], ...] = ()


async def _get(request: Any, context: Any) -> Any:
    return request


class _Continuation:
    def __init__(self, handler: grpc.RpcMethodHandler | None) -> None:
        self.handler = handler
        self.calls = 0

    async def __call__(self, details: Any) -> grpc.RpcMethodHandler | None:
        self.calls += 1
        return self.handler


async def test_the_wrapped_handler_is_built_once_per_method() -> None:
    continuation = _Continuation(grpc.unary_unary_rpc_method_handler(_get))
    interceptor = ServiceInterceptor()

    first = await interceptor.intercept_service(continuation, _Details(f"{SERVICE}/GetTicketCache"))
    second = await interceptor.intercept_service(continuation, _Details(f"{SERVICE}/GetTicketCache"))

    assert first is not None and first is second
    assert first.unary_unary is not _get  # wrapped
    assert continuation.calls == 1


async def test_an_unknown_method_is_not_remembered() -> None:
    continuation = _Continuation(None)
    interceptor = ServiceInterceptor(AUTH_TOKEN)

    for index in range(3):
        assert await interceptor.intercept_service(continuation, _Details(f"/no.Such/M{index}")) is None

    assert continuation.calls == 3
    assert interceptor._handlers == {}


async def test_credentials_are_checked_on_every_call_of_a_remembered_method(
    authed_server: RunningServer,
) -> None:
    good = (("authorization", f"Bearer {AUTH_TOKEN}"),)
    for metadata in (good, (), good, (("authorization", "Bearer wrong"),), good):
        call = authed_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42), metadata=metadata)
        if metadata == good:
            assert (await call).cache.user_id == 42
        else:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


class _Context:
    """Just what the interceptor reads and writes of a grpc.aio servicer context."""

    def __init__(self) -> None:
        self.trailing: tuple[tuple[str, str], ...] = ()

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()

    def set_trailing_metadata(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.trailing = metadata

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.trailing

    def code(self) -> None:
        return None


async def test_a_bug_escaping_a_handler_leaves_the_request_id_in_the_trailers_grpc_sends() -> None:
    async def broken(request: Any, context: Any) -> Any:
        raise RuntimeError("a bug")

    wrapped = await ServiceInterceptor().intercept_service(
        _Continuation(grpc.unary_unary_rpc_method_handler(broken)), _Details(f"{SERVICE}/GetTicketCache")
    )
    failed = _Context()
    assert wrapped is not None
    with pytest.raises(RuntimeError):
        await wrapped.unary_unary(pb.GetTicketCacheRequest(), failed)

    assert [key for key, _ in failed.trailing] == ["x-request-id"]
