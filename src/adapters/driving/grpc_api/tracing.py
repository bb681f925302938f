"""A SERVER span per RPC, continuing the caller's W3C `traceparent`, in its own grpc.aio interceptor.

Not opentelemetry-instrumentation-grpc's aio server interceptor: it breaks stream-stream methods
(open-telemetry/opentelemetry-python-contrib#3066), and reflection's ServerReflectionInfo is one.
This one keeps each behaviour's kind (coroutine, or async generator for response streams), as the
service's own interceptor does, so every kind of method is traced. It is put in the chain only
when tracing is on: with it off, a call pays nothing for it.

Span attributes are the method and its status code: never metadata (the bearer token rides
there) nor messages."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from adapters.driving.grpc_api.interceptors import (
    Behavior,
    Continuation,
    Metadata,
    _ServerInterceptor,
    _status_code,
)

_StartSpan = Callable[[Any], Any]
#: (request streaming, response streaming) -> the grpc function that builds such a handler.
_HANDLER_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)


class TracingInterceptor(_ServerInterceptor):
    """Outermost in the chain, so the span covers auth, metrics and the handler. A method's
    wrapped handler is built once per handler the rest of the chain returns."""

    def __init__(self) -> None:
        self._tracer = trace.get_tracer("bytemark_ticket_cache.grpc")
        self._handlers: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        found = await continuation(handler_call_details)
        if found is None:
            return None
        method: str = handler_call_details.method
        cached = self._handlers.get(method)
        if cached is not None and cached[0] is found:
            return cached[1]
        wrapped = _wrap(self._tracer, method, found)
        self._handlers[method] = (found, wrapped)
        return wrapped


def _wrap(tracer: trace.Tracer, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    behavior: Behavior = (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )
    service, _, name = method.lstrip("/").rpartition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    span_name = method.lstrip("/")

    def start(context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return tracer.start_as_current_span(
            span_name,
            context=_caller_context(context.invocation_metadata()),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,  # a message may quote the request; the status code says enough
            set_status_on_exception=False,
        )

    wrapped: Behavior
    if inspect.isasyncgenfunction(behavior):
        wrapped = _around_stream(behavior, start)
    elif inspect.iscoroutinefunction(behavior):
        wrapped = _around_call(behavior, start)
    else:
        return handler  # a sync handler runs in grpc's thread pool; none is registered here
    make = _HANDLER_FACTORIES[bool(handler.request_streaming), bool(handler.response_streaming)]
    return make(wrapped, handler.request_deserializer, handler.response_serializer)


def _caller_context(metadata: Metadata | None) -> Context:
    """The caller's trace context from `traceparent`/`tracestate` (the configured propagators)."""
    carrier = {key: value for key, value in metadata or () if isinstance(value, str)}
    return propagate.extract(carrier)


def _around_call(behavior: Behavior, start: _StartSpan) -> Callable[[Any, Any], Awaitable[Any]]:
    async def call(request: Any, context: Any) -> Any:
        with start(context) as span:
            failure: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as error:
                failure = error
                raise
            finally:
                _end(span, failure, context)

    return call


def _around_stream(behavior: Behavior, start: _StartSpan) -> Callable[[Any, Any], AsyncIterator[Any]]:
    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        with start(context) as span:
            failure: BaseException | None = None
            responses = behavior(request, context)
            try:
                async for response in responses:
                    yield response
            except BaseException as error:  # CancelledError, GeneratorExit included
                failure = error
                raise
            finally:
                await responses.aclose()
                _end(span, failure, context)

    return stream


def _end(span: trace.Span, failure: BaseException | None, context: Any) -> None:
    """The status code on the span; an ERROR status only for the codes that blame the server
    (OpenTelemetry's gRPC conventions: NOT_FOUND or INVALID_ARGUMENT are the caller's)."""
    code = _status_code(failure, context)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    if code not in _SERVER_ERRORS:
        return
    unhandled = isinstance(failure, Exception) and not isinstance(failure, grpc.aio.AbortError)
    error = type(failure).__name__ if unhandled else code.name  # a type, never a message
    span.set_attribute("error.type", error)
    span.set_status(trace.StatusCode.ERROR, error)
