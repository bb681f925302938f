"""Cross-cutting concerns of every RPC in one grpc.aio server interceptor: metrics, request id,
bearer-token auth, and rejection of requests that are not valid protobuf.

A wrapped behaviour keeps its kind (coroutine, or async generator for response streams): grpc.aio
drives a handler by inspecting it, and a sync-style wrapper breaks streaming methods (grpc#27941).
Why one interceptor that builds each method's handler once: bench/RESULTS.md, "Design notes".
"""

from __future__ import annotations

import inspect
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

import grpc

from adapters.common.logs import request_id_var
from adapters.driving.grpc_api.credentials import CredentialsFile, required_scope
from adapters.driving.grpc_api.error_catalogue import MALFORMED_REQUEST, SCOPE_INSUFFICIENT, UNAUTHENTICATED
from adapters.driving.grpc_api.errors import REQUEST_ID_HEADER as REQUEST_ID_HEADER  # the HTTP edge's too
from adapters.driving.grpc_api.errors import Failure, abort_with, with_request_id
from adapters.driving.grpc_api.metrics import GRPC_SERVER_METRICS, MethodCounts

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
Behavior = Callable[[Any, Context], Any]
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
Metadata: TypeAlias = tuple[tuple[str, str | bytes], ...]
Prelude = Callable[[Any, Context], Awaitable[None]]

HEALTH_METHOD_PREFIX = "/grpc.health.v1.Health/"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_UNAUTHENTICATED = Failure(UNAUTHENTICATED, "missing or invalid bearer token")
_SAN_PROPERTY = "x509_subject_alternative_name"


class _ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc, unused-ignore]
    """Base of the interceptor below (grpc has no type hints, so mypy sees its class as Any)."""


class ServiceInterceptor(_ServerInterceptor):
    """Everything the server does around an RPC, outermost first:

    - metrics: go-grpc-prometheus's grpc_server_started_total, grpc_server_handled_total and
      grpc_server_handling_seconds (metrics.py), rejected calls included;
    - request id: the caller's x-request-id (or a new one) goes into `request_id_var` for logs
      and error details, and back to the caller in the trailing metadata when the caller sent
      an x-request-id or the call failed, and as initial metadata of response streams, so a
      batch job has it before the first event (docs/adr/0007: a new id on every successful
      unary call cost reads ~40 µs);
    - auth (with `auth_token` or `credentials`): every RPC but the health service needs
      `authorization: Bearer <token>` (or a client certificate named in the tokens file),
      otherwise it ends with UNAUTHENTICATED before the handler runs (a corrupt request too);
      a credential whose scope is too low for the method gets PERMISSION_DENIED. The token is
      never logged or echoed;
    - undecodable requests: a request that does not parse (corrupt wire format) ends with
      INVALID_ARGUMENT naming the request type, instead of grpc's UNKNOWN "Unexpected
      DecodeError" with library internals.

    The handler for a method is built on its first call and reused: what depends on the call
    (request id, credentials) is read from the call's context when it runs. A method named in
    `response_serializers` sends its responses through that serializer instead of the
    generated one (GetTicketCache: the remembered bytes of a memoized response)."""

    def __init__(
        self,
        auth_token: str | None = None,
        response_serializers: Mapping[str, Callable[[Any], bytes]] | None = None,
        credentials: CredentialsFile | None = None,
    ) -> None:
        if credentials is None and auth_token is not None:
            credentials = CredentialsFile(None, operate_token=auth_token)
        self._credentials = credentials
        self._serializers = dict(response_serializers or {})
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        handler = self._handlers.get(method)
        if handler is None:
            found = await continuation(handler_call_details)
            if found is None:
                return None  # unknown method: grpc answers UNIMPLEMENTED; no per-name series
            handler = self._handlers[method] = self._wrap(method, found)
        return handler

    def refusal(
        self, method: str, metadata: Metadata | None, peer_names: Callable[[], Iterable[str]] = tuple
    ) -> Failure | None:
        """Why a call of `method` (`/package.Service/Method`) with `metadata` must be refused before
        its handler runs, or None. The one access check: the gRPC calls and the HTTP port
        (adapters.driving.http_api) both ask it. `peer_names`: the SANs of the caller's verified
        client certificate (asked only when the tokens file maps a name)."""
        credentials = self._credentials
        if credentials is None or method.startswith(HEALTH_METHOD_PREFIX):
            return None
        authorization = next(
            (value for key, value in metadata or () if key == "authorization" and isinstance(value, str)),
            None,
        )
        granted = credentials.granted_scope(authorization, peer_names() if credentials.current.names else ())
        if granted is None:
            return _UNAUTHENTICATED
        needed = required_scope(method)
        if granted < needed:
            message = (
                f"this method needs the `{needed.label}` scope; the credentials grant `{granted.label}` only"
            )
            scopes = {"required_scope": needed.label, "granted_scope": granted.label}
            return Failure(SCOPE_INSUFFICIENT, message, metadata=scopes)
        return None

    def _wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler for `method` with every concern around its behaviour."""
        deserialize = handler.request_deserializer
        guard_malformed = deserialize is not None and not handler.request_streaming
        if guard_malformed:
            deserialize = _tolerant(deserialize)
        check_auth = self._credentials is not None and not method.startswith(HEALTH_METHOD_PREFIX)
        behavior: Behavior = (
            handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        )
        if not inspect.iscoroutinefunction(behavior) and not inspect.isasyncgenfunction(behavior):
            # A sync handler would run in grpc's thread pool; none is registered here. Refuse to
            # serve one rather than serve it without its checks.
            if check_auth or guard_malformed:
                raise TypeError(f"{method}: a sync handler cannot be guarded by this interceptor")
            return handler
        prelude = self._prelude(method, bool(handler.response_streaming), check_auth, guard_malformed)
        wrap = _around_stream if inspect.isasyncgenfunction(behavior) else _around_call
        if handler.unary_unary is not None:
            make, grpc_type = grpc.unary_unary_rpc_method_handler, "unary"
        elif handler.unary_stream is not None:
            make, grpc_type = grpc.unary_stream_rpc_method_handler, "server_stream"
        elif handler.stream_unary is not None:
            make, grpc_type = grpc.stream_unary_rpc_method_handler, "client_stream"
        else:
            make, grpc_type = grpc.stream_stream_rpc_method_handler, "bidi_stream"
        wrapped = wrap(behavior, prelude, GRPC_SERVER_METRICS.method(method, grpc_type))
        return make(wrapped, deserialize, self._serializers.get(method, handler.response_serializer))

    def _prelude(
        self, method: str, streams_responses: bool, check_auth: bool, guard_malformed: bool
    ) -> Prelude:
        """What runs before the behaviour: request id, then auth, then the wire-format check."""
        refusal_of = self.refusal

        async def prelude(request: Any, context: Context) -> None:
            metadata: Metadata | None = context.invocation_metadata()
            request_id = request_id_from(metadata)
            # Each RPC runs in its own task with its own copy of the context, so the value
            # needs no reset: it ends with the call.
            request_id_var.set(request_id)
            tagged = ((REQUEST_ID_HEADER, request_id),)
            if _caller_sent_id(metadata):
                context.set_trailing_metadata(tagged)  # abort() sends these too
            if streams_responses:
                await context.send_initial_metadata(tagged)
            if (
                check_auth
                and (refusal := refusal_of(method, metadata, lambda: _peer_names(context))) is not None
            ):
                await abort_with(context, refusal)
            if guard_malformed and type(request) is _Undecodable:
                message = f"request: not a valid {request.type_name} (corrupt wire format)"
                await abort_with(context, Failure(MALFORMED_REQUEST, message, field_path="request"))

        return prelude


def _around_call(behavior: Behavior, prelude: Prelude, counts: MethodCounts) -> Behavior:
    async def call(request: Any, context: Context) -> Any:
        counts.started += 1
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            await prelude(request, context)
            return await behavior(request, context)
        except BaseException as error:
            failure = _tag_failure(error, context)
            raise
        finally:
            counts.finished(_status_code(failure, context).name, time.perf_counter() - started)

    return call


def _around_stream(behavior: Behavior, prelude: Prelude, counts: MethodCounts) -> Behavior:
    async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
        counts.started += 1
        started = time.perf_counter()
        failure: BaseException | None = None
        try:
            await prelude(request, context)
            responses = behavior(request, context)
            try:
                async for response in responses:
                    yield response
            finally:
                # Close the inner generator now (not at garbage collection) so its cleanup
                # runs before the call is counted, e.g. when the client cancels.
                await responses.aclose()
        except BaseException as error:  # CancelledError, GeneratorExit included
            failure = _tag_failure(error, context)
            raise
        finally:
            counts.finished(_status_code(failure, context).name, time.perf_counter() - started)

    return stream


# --- metrics ----------------------------------------------------------------------------


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


def _peer_names(context: Context) -> list[str]:
    """The subject alternative names of the client's verified certificate (mutual TLS)."""
    names: list[bytes] = context.auth_context().get(_SAN_PROPERTY, [])
    return [name.decode("utf-8", "replace") for name in names]


# --- request id -------------------------------------------------------------------------


def request_id_from(metadata: Metadata | None) -> str:
    """The caller's x-request-id when it is a short, plain id, else a new one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER and isinstance(value, str) and _VALID_REQUEST_ID.fullmatch(value):
            return value  # only a short, plain id from a caller ends up in logs
    return uuid.uuid4().hex


def _caller_sent_id(metadata: Metadata | None) -> bool:
    """Whether the caller sent an x-request-id (even one replaced): then it gets the id back."""
    return any(key == REQUEST_ID_HEADER for key, _ in metadata or ())


def _tag_failure(error: BaseException, context: Context) -> BaseException:
    """A bug's exception ends the call with UNKNOWN and the trailers set so far: add the id.
    (abort_with adds it to an abort; a cancelled call sends no status at all.)"""
    if isinstance(error, Exception) and not isinstance(error, grpc.aio.AbortError):
        context.set_trailing_metadata(with_request_id(tuple(context.trailing_metadata() or ())))
    return error


# --- undecodable requests ------------------------------------------------------------


class _Undecodable:
    """Stands in for a request whose bytes are not a valid message of the method's type."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


def _tolerant(deserialize: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """The deserializer, returning an `_Undecodable` instead of raising."""
    message_type = getattr(getattr(deserialize, "__self__", None), "DESCRIPTOR", None)
    name = message_type.full_name if message_type is not None else "request message"

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, or anything a parser raises
            return _Undecodable(name)

    return tolerant
