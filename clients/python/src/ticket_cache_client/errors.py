"""The service's error details (AIP-193: google.rpc.Status with ErrorInfo, BadRequest, RetryInfo),
read from a failed call or from a failed rider of a bulk stream. Reasons: docs/errors.md."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from google.rpc import error_details_pb2, status_pb2

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb

#: The trailer gRPC carries a google.rpc.Status in (the gRPC wire protocol's own key). Read here
#: rather than through grpcio-status, which would tie this package to one grpcio release.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One bad request field: its path (e.g. `user_ids[2]`) and what is wrong with it."""

    field: str
    description: str


@dataclass(frozen=True, slots=True)
class ErrorDetails:
    """What the service said about an error beyond its code and message."""

    reason: str = ""  # ErrorInfo.reason, e.g. "CACHE_NOT_FOUND"; "" when the server sent none
    domain: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_violations: tuple[FieldViolation, ...] = ()
    retry_delay: timedelta | None = None  # RetryInfo: wait at least this long before retrying

    @classmethod
    def from_status(cls, status: status_pb2.Status) -> ErrorDetails:
        info, violations, retry_delay = error_details_pb2.ErrorInfo(), [], None
        for detail in status.details:
            bad_request, retry = error_details_pb2.BadRequest(), error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                continue
            if detail.Unpack(bad_request):
                violations += [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
            elif detail.Unpack(retry):
                retry_delay = retry.retry_delay.ToTimedelta()
        return cls(info.reason, info.domain, dict(info.metadata), tuple(violations), retry_delay)


def rider_error(
    event: pb.BuildCacheIfEmptyResponse | pb.RefreshStaleCachesResponse | pb.BulkUserEvent,
) -> ErrorDetails | None:
    """The details of a failed rider in a bulk stream event (or a batch's BulkUserEvent); None
    when the rider did not fail."""
    return ErrorDetails.from_status(event.status) if event.HasField("status") else None


class TicketCacheError(grpc.aio.AioRpcError):  # type: ignore[misc]
    """A failed call (still a grpc.aio.AioRpcError: `code()`, `details()`), with the service's
    `reason`, `field_violations`, `retry_delay` and ErrorInfo `metadata` (e.g. `request_id`)."""

    def __init__(self, error: grpc.aio.AioRpcError) -> None:
        super().__init__(
            error.code(),
            error.initial_metadata(),
            error.trailing_metadata(),
            error.details(),
            error.debug_error_string(),
        )
        self.error_details = ErrorDetails.from_status(_status_of(error))

    @property
    def reason(self) -> str:
        return self.error_details.reason

    @property
    def metadata(self) -> Mapping[str, str]:
        return self.error_details.metadata

    @property
    def field_violations(self) -> tuple[FieldViolation, ...]:
        return self.error_details.field_violations

    @property
    def retry_delay(self) -> timedelta | None:
        return self.error_details.retry_delay


def _status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return status_pb2.Status()


@contextmanager
def raising_details() -> Iterator[None]:
    """Re-raise a failed call inside the block as TicketCacheError (already one: unchanged)."""
    try:
        yield
    except TicketCacheError:
        raise
    except grpc.aio.AioRpcError as error:
        raise TicketCacheError(error) from error
