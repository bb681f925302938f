"""What TicketCacheServicer asks of grpc's ServicerContext, answered for a Connect call, so both
ports run the very same servicer (its error mapping, deadlines and stream draining included)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NoReturn

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.request import RequestContext
from google.rpc import status_pb2
from protobuf.wkt import Any as WireAny

#: Where grpc carries a google.rpc.Status (AIP-193 details) in trailing metadata.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ConnectAbort(ConnectError, grpc.aio.AbortError):  # type: ignore[misc]
    """An abort on the HTTP port: a ConnectError for connectrpc, and an AbortError for the servicer,
    whose AbortOnError lets an abort already under way pass through untouched."""


def connect_code(code: grpc.StatusCode) -> Code:
    """The Connect code of a gRPC status code (the same list; grpc spells CANCELLED with two Ls)."""
    return Code.CANCELED if code is grpc.StatusCode.CANCELLED else Code[code.name]


class ConnectCallContext:
    """The part of grpc.aio.ServicerContext the servicer uses: `abort` and `time_remaining`."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: RequestContext[Any, Any]) -> None:
        self._ctx = ctx

    def time_remaining(self) -> float | None:
        remaining_ms = self._ctx.timeout_ms
        return None if remaining_ms is None else max(remaining_ms / 1000, 0.0)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Sequence[tuple[str, Any]] = ()
    ) -> NoReturn:
        raise ConnectAbort(connect_code(code), details, error_details(trailing_metadata))


def error_details(trailing_metadata: Sequence[tuple[str, Any]]) -> list[ErrorDetail]:
    """The details of a google.rpc.Status sent as grpc trailing metadata, as Connect error details
    (Connect's error JSON carries them as {"type", "value"})."""
    for key, value in trailing_metadata:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            details = status_pb2.Status.FromString(value).details
            return [ErrorDetail(WireAny(type_url=any_.type_url, value=any_.value)) for any_ in details]
    return []
