"""What TicketCacheServicer asks of grpc's ServicerContext, answered for a Connect call, so both
ports run the very same servicer (its error mapping, deadlines and stream draining included), and
a failure becomes the same code, message and google.rpc.Status details on both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.request import RequestContext
from google.rpc import status_pb2
from protobuf.wkt import Any as WireAny

from adapters.driving.grpc_api.errors import Failure

#: Where grpc carries a google.rpc.Status (AIP-193 details) in trailing metadata.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ConnectAbort(ConnectError, grpc.aio.AbortError):  # type: ignore[misc]
    """An abort on the HTTP port: a ConnectError for connectrpc, and an AbortError for the servicer,
    whose AbortOnError lets an abort already under way pass through untouched."""


def connect_code(code: grpc.StatusCode) -> Code:
    """The Connect code of a gRPC status code (the same list; grpc spells CANCELLED with two Ls)."""
    return Code.CANCELED if code is grpc.StatusCode.CANCELLED else Code[code.name]


def connect_error(failure: Failure) -> ConnectAbort:
    """`failure` (the gRPC port's errors.Failure) as a Connect error with the same details."""
    return ConnectAbort(connect_code(failure.code), failure.message, _details(failure.status()))


class ConnectCallContext:
    """The part of grpc.aio.ServicerContext the servicer and errors.abort_with use: `abort`,
    `time_remaining` and `trailing_metadata`."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def time_remaining(self) -> float | None:
        remaining_ms = self._ctx.timeout_ms
        return None if remaining_ms is None else max(remaining_ms / 1000, 0.0)

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return ()  # the request id goes out as a response header (edge.py)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[tuple[str, Any]] = ()
    ) -> NoReturn:
        raise ConnectAbort(connect_code(code), details, error_details(trailing_metadata))


def error_details(trailing_metadata: Sequence[tuple[str, Any]]) -> list[ErrorDetail]:
    """The details of a google.rpc.Status sent as grpc trailing metadata, as Connect error details
    (Connect's error JSON carries them as {"type", "value"})."""
    for key, value in trailing_metadata:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return _details(status_pb2.Status.FromString(value))
    return []


def _details(status: status_pb2.Status) -> list[ErrorDetail]:
    return [ErrorDetail(WireAny(type_url=detail.type_url, value=detail.value)) for detail in status.details]
