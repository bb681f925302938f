"""Cross-cutting concerns of every RPC as grpc.aio server interceptors: metrics, request id,
bearer-token auth, and rejection of requests that are not valid protobuf.

An aio interceptor only gets to choose the handler; to act around the call itself it returns
a handler whose behaviour wraps the original one. The wrapper must keep the behaviour's kind
(coroutine, or async generator for response streams) because grpc.aio decides how to drive a
handler by inspecting it; a sync-style wrapper breaks streaming methods (grpc#27941).
"""

from __future__ import annotations

import hmac
import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from types import TracebackType
from typing import Any, TypeAlias

import grpc

from adapters.observability.logs import request_id_var
from adapters.observability.metrics import GRPC_SERVER_HANDLED, GRPC_SERVER_HANDLING_SECONDS

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, Context], Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
#: Makes the async context manager to run around one call, given the call's context.
ScopeFactory = Callable[[Context], Any]

REQUEST_ID_HEADER = "x-request-id"
HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def wrap_handler(handler: grpc.RpcMethodHandler, scope: ScopeFactory) -> grpc.RpcMethodHandler:
    """The same handler with every call running inside `async with scope(context)`."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _wrap_behavior(handler.unary_unary, scope),
            handler.request_deserializer,
            handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _wrap_behavior(handler.unary_stream, scope),
            handler.request_deserializer,
            handler.response_serializer,
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _wrap_behavior(handler.stream_unary, scope),
            handler.request_deserializer,
            handler.response_serializer,
        )
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(
            _wrap_behavior(handler.stream_stream, scope),
            handler.request_deserializer,
            handler.response_serializer,
        )
    return handler


def _wrap_behavior(behavior: Behavior, scope: ScopeFactory) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            async with scope(context):
                responses = behavior(request, context)
                try:
                    async for response in responses:
                        yield response
                finally:
                    # Close the inner generator now (not at garbage collection) so its
                    # cleanup runs inside the scope, e.g. when the client cancels.
                    await responses.aclose()

        return stream

    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: Context) -> Any:
            async with scope(context):
                return await behavior(request, context)

        return call

    return behavior  # sync handlers run in grpc's thread pool; none are registered here


class _ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc, unused-ignore]
    """Base of the interceptors below (grpc has no type hints, so mypy sees its class as Any)."""


# --- metrics ----------------------------------------------------------------------------


class MetricsInterceptor(_ServerInterceptor):
    """grpc_server_handled_total{grpc_method,grpc_code} and grpc_server_handling_seconds."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None  # unknown method: grpc answers UNIMPLEMENTED; no per-name series
        method: str = handler_call_details.method
        return wrap_handler(handler, lambda context: _MetricsScope(method, context))


class _MetricsScope:
    __slots__ = ("_context", "_method", "_started")

    def __init__(self, method: str, context: Context) -> None:
        self._method = method
        self._context = context
        self._started = 0.0

    async def __aenter__(self) -> None:
        self._started = time.perf_counter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._started
        code = _status_code(exc, self._context)
        GRPC_SERVER_HANDLED.labels(self._method, code.name).inc()
        GRPC_SERVER_HANDLING_SECONDS.labels(self._method).observe(elapsed)


def _status_code(exc: BaseException | None, context: Context) -> grpc.StatusCode:
    """The status the call ends with, as far as the server can tell."""
    set_code: grpc.StatusCode | None = context.code()  # set by abort() or set_code()
    if exc is None:
        return set_code or grpc.StatusCode.OK
    if isinstance(exc, grpc.aio.AbortError):
        return set_code or grpc.StatusCode.UNKNOWN
    if isinstance(exc, Exception):
        return grpc.StatusCode.UNKNOWN  # grpc turns an unhandled exception into UNKNOWN
    # CancelledError or GeneratorExit: the client went away, or its deadline passed
    if context.time_remaining() == 0:
        return grpc.StatusCode.DEADLINE_EXCEEDED
    return grpc.StatusCode.CANCELLED


# --- request id -------------------------------------------------------------------------


class RequestIdInterceptor(_ServerInterceptor):
    """Takes the caller's x-request-id (or makes one), puts it in `request_id_var` for logs
    and error messages, and returns it: in the trailing metadata of every RPC (errors
    included), and also as initial metadata of response streams, so a batch job has it
    before the first event.

    Unary calls get it in trailing metadata only: sending initial metadata early costs an
    extra round through grpc's completion queue per call (~0.1 ms of server CPU, a third of
    a small call), while trailing metadata rides along with the status for free."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        request_id = _request_id(handler_call_details.invocation_metadata)
        streams_responses = bool(handler.response_streaming)
        return wrap_handler(handler, lambda context: _RequestIdScope(request_id, streams_responses, context))


def _request_id(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
            return value  # only a short, plain id from a caller ends up in logs
    return uuid.uuid4().hex


class _RequestIdScope:
    __slots__ = ("_context", "_request_id", "_streams_responses")

    def __init__(self, request_id: str, streams_responses: bool, context: Context) -> None:
        self._request_id = request_id
        self._streams_responses = streams_responses
        self._context = context

    async def __aenter__(self) -> None:
        # Each RPC runs in its own task with its own copy of the context, so the value
        # needs no reset: it ends with the call.
        request_id_var.set(self._request_id)
        metadata = ((REQUEST_ID_HEADER, self._request_id),)
        self._context.set_trailing_metadata(metadata)  # abort() sends these too
        if self._streams_responses:
            await self._context.send_initial_metadata(metadata)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


# --- undecodable requests ------------------------------------------------------------


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message of the method's type."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


class MalformedRequestInterceptor(_ServerInterceptor):
    """A request that does not parse (corrupt wire format) ends with INVALID_ARGUMENT naming
    the request type, instead of grpc's UNKNOWN "Unexpected DecodeError" with library
    internals. Register it innermost: the handler it returns decodes into a stand-in that
    its behaviour rejects before the servicer runs."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None or handler.request_streaming:
            return handler  # no unary-request method without a deserializer is registered here
        deserialize: Callable[[bytes], Any] = handler.request_deserializer
        type_name = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
        name = type_name.full_name if type_name is not None else "request message"

        def tolerant(data: bytes) -> Any:
            try:
                return deserialize(data)
            except Exception:  # noqa: BLE001 - protobuf's DecodeError, or anything a parser raises
                return _Undecodable(name)

        behavior = handler.unary_unary or handler.unary_stream
        rejecting = _reject_undecodable(behavior)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(rejecting, tolerant, handler.response_serializer)
        return grpc.unary_stream_rpc_method_handler(rejecting, tolerant, handler.response_serializer)


def _reject_undecodable(behavior: Behavior) -> Behavior:
    async def abort(request: _Undecodable, context: Context) -> None:
        message = f"request: not a valid {request.type_name} (corrupt wire format)"
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, message)

    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            if isinstance(request, _Undecodable):
                await abort(request, context)
            async with aclosing(behavior(request, context)) as responses:
                async for response in responses:
                    yield response

        return stream

    async def call(request: Any, context: Context) -> Any:
        if isinstance(request, _Undecodable):
            await abort(request, context)
        return await behavior(request, context)

    return call


# --- bearer-token auth ------------------------------------------------------------------


class BearerTokenAuthInterceptor(_ServerInterceptor):
    """Every RPC but the health service needs `authorization: Bearer <token>`; otherwise it
    ends with UNAUTHENTICATED before the handler runs. The token is never logged or echoed."""

    def __init__(self, token: str, exempt_prefixes: tuple[str, ...] = (HEALTH_METHOD_PREFIX,)) -> None:
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._token = token.encode("utf-8")
        self._exempt_prefixes = exempt_prefixes

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self._exempt_prefixes):
            return handler
        if self._authorized(handler_call_details.invocation_metadata):
            return handler
        return _rejecting(handler)

    def _authorized(self, metadata: tuple[tuple[str, str | bytes], ...] | None) -> bool:
        for key, value in metadata or ():
            if key == "authorization" and isinstance(value, str):
                scheme, _, credentials = value.partition(" ")
                if scheme.lower() != "bearer":
                    return False
                # constant time, so response timing does not reveal how much of a guess matched
                return hmac.compare_digest(credentials.strip().encode("utf-8"), self._token)
        return False


async def _unauthenticated(request: Any, context: Context) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")


def _rejecting(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same kind that only rejects the call. A coroutine is a valid
    behaviour for response streams too (grpc's reader/writer style)."""
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            _unauthenticated, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            _unauthenticated, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(
            _unauthenticated, handler.request_deserializer, handler.response_serializer
        )
    return grpc.stream_stream_rpc_method_handler(
        _unauthenticated, handler.request_deserializer, handler.response_serializer
    )
