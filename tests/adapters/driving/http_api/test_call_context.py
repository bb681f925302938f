"""The HTTP port answers errors as the gRPC port does: the servicer's error mapping, run through a
Connect call context, gives the same code, message and google.rpc.Status details."""

from __future__ import annotations

import grpc
import pytest
from connectrpc.code import Code
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import Headers, RequestContext
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from adapters.driving.grpc_api.errors import AbortOnError
from adapters.driving.http_api.call_context import STATUS_DETAILS_KEY, ConnectAbort, ConnectCallContext
from application.errors import CacheNotFound, InvalidArgument
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb


def request_context(
    timeout_ms: int | None = None,
) -> RequestContext[pb.GetTicketCacheRequest, pb.GetTicketCacheResponse]:
    method = MethodInfo(
        name="GetTicketCache",
        service_name="bytemark.ticketcache.v1.TicketCacheService",
        input=pb.GetTicketCacheRequest,
        output=pb.GetTicketCacheResponse,
        idempotency_level=IdempotencyLevel.UNKNOWN,
        stream_type=StreamType.UNARY,
    )
    return RequestContext(method=method, http_method="POST", request_headers=Headers(), timeout_ms=timeout_ms)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CacheNotFound(7), Code.NOT_FOUND),
        (InvalidArgument("user_id", "must be positive"), Code.INVALID_ARGUMENT),
    ],
)
async def test_an_application_error_gets_the_grpc_ports_code_and_message(
    error: Exception, code: Code
) -> None:
    with pytest.raises(ConnectAbort) as aborted:
        async with AbortOnError(ConnectCallContext(request_context())):
            raise error
    assert aborted.value.code is code
    assert aborted.value.message == str(error)


async def test_an_abort_under_way_passes_through_the_servicers_error_mapping_unchanged() -> None:
    context = ConnectCallContext(request_context())
    with pytest.raises(ConnectAbort) as aborted:
        async with AbortOnError(context):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "server shutting down")
    assert (aborted.value.code, aborted.value.message) == (Code.UNAVAILABLE, "server shutting down")


async def test_google_rpc_status_details_become_connect_error_details() -> None:
    info = error_details_pb2.ErrorInfo(reason="CACHE_NOT_FOUND", domain="ticketcache.bytemark")
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=grpc.StatusCode.NOT_FOUND.value[0], message="no cache", details=[detail])

    with pytest.raises(ConnectAbort) as aborted:
        await ConnectCallContext(request_context()).abort(
            grpc.StatusCode.NOT_FOUND, "no cache", ((STATUS_DETAILS_KEY, status.SerializeToString()),)
        )
    (sent,) = aborted.value.details
    assert sent.type_name == "google.rpc.ErrorInfo"
    assert error_details_pb2.ErrorInfo.FromString(sent.message_bytes) == info


def test_cancelled_is_connects_canceled_and_the_deadline_is_in_seconds() -> None:
    from adapters.driving.http_api.call_context import connect_code

    assert connect_code(grpc.StatusCode.CANCELLED) is Code.CANCELED
    assert connect_code(grpc.StatusCode.RESOURCE_EXHAUSTED) is Code.RESOURCE_EXHAUSTED
    assert ConnectCallContext(request_context()).time_remaining() is None
    remaining = ConnectCallContext(request_context(timeout_ms=2000)).time_remaining()
    assert remaining is not None and 1.5 < remaining <= 2.0
