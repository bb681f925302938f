"""The one mapping from errors to gRPC statuses with AIP-193 details, for failed RPCs and failed
users in streams; the reasons and their codes are the catalogue's (error_catalogue.py)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, NoReturn

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from adapters.common.logs import request_id_var
from adapters.driving.grpc_api.error_catalogue import DOMAIN, INTERNAL, REASON_BY_ERROR, Reason
from application.errors import InvalidArgument, StoreUnavailable, UpstreamUnavailable

logger = logging.getLogger(__name__)

#: Attributes of application errors that go into ErrorInfo.metadata when set (never secrets).
_METADATA_ATTRIBUTES = (
    "user_id", "field", "cursor", "store", "endpoint", "size_bytes", "limit_bytes",
)  # fmt: skip
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
#: The metadata key of the request id, from the caller and back in a failed call's trailers.
REQUEST_ID_HEADER = "x-request-id"
#: What a caller learns of a failed store: what failed, not where (host, user, path, driver),
#: which goes to the log line carrying the same request id.
STORE_UNAVAILABLE = "cache store unavailable; retry later"


@dataclass(frozen=True, slots=True)
class Failure:
    """What a caller is told about one error: the status code and message, and the AIP-193
    details (ErrorInfo always; BadRequest with `field_path`; RetryInfo with `retry_after`)."""

    reason: Reason
    message: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    field_path: str | None = None
    retry_after: float | None = None

    @property
    def code(self) -> grpc.StatusCode:
        return self.reason.code

    def status(self) -> status_pb2.Status:
        code: int = self.code.value[0]
        status = status_pb2.Status(code=code, message=self.message)
        metadata = dict(self.metadata)
        if request_id := request_id_var.get():
            metadata["request_id"] = request_id
        status.details.add().Pack(
            error_details_pb2.ErrorInfo(reason=self.reason.name, domain=DOMAIN, metadata=metadata)
        )
        if self.field_path is not None:
            description = self.message.removeprefix(f"{self.field_path}: ")
            violation = error_details_pb2.BadRequest.FieldViolation(
                field=self.field_path, description=description
            )
            status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        if self.retry_after is not None and self.code in _RETRYABLE:
            delay = Duration()
            delay.FromNanoseconds(round(max(self.retry_after, 0.0) * 1e9))
            status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        return status


def failure_for(error: Exception) -> Failure:
    """What to tell the caller about `error`.

    Known errors carry their own message (application messages never hold secrets), but a
    store failure's says where it happened (host, path, driver): the caller gets a generic
    message and the request id, and the detail is logged under that id. Anything else is a
    bug: it is logged with its traceback under a request id, and the caller gets only that
    id, never the exception text.
    """
    reason = next((reason for error_type, reason in REASON_BY_ERROR if isinstance(error, error_type)), None)
    message = str(error)
    if isinstance(error, StoreUnavailable):  # its detail says where: logged, not sent
        request_id = request_id_var.get() or uuid.uuid4().hex
        logger.warning("%s (request id %s)", error, request_id)
        message = f"{STORE_UNAVAILABLE} (request id {request_id})"
    if reason is not None and reason is not INTERNAL:
        return Failure(
            reason,
            message,
            _metadata(error),
            field_path=error.field if isinstance(error, InvalidArgument) else None,
            retry_after=error.retry_after if isinstance(error, UpstreamUnavailable) else None,
        )
    request_id = request_id_var.get() or uuid.uuid4().hex
    if reason is None:
        logger.error(
            "unexpected %s while handling a request (request id %s)",
            type(error).__name__,
            request_id,
            exc_info=error,
        )
    return Failure(INTERNAL, f"internal error (request id {request_id})", {"request_id": request_id})


def status_for(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message to send for `error` (see `failure_for`)."""
    failure = failure_for(error)
    return failure.code, failure.message


def _metadata(error: Exception) -> dict[str, str]:
    values = ((name, getattr(error, name, None)) for name in _METADATA_ATTRIBUTES)
    return {name: str(value) for name, value in values if value is not None}


async def abort_with(context: grpc.aio.ServicerContext[Any, Any], failure: Failure) -> NoReturn:
    """End the RPC with `failure`: its code and message, and its details in the standard
    grpc-status-details-bin trailer, beside the trailing metadata already set and the request id
    (a failed call always carries it back: docs/adr/0007-request-id-trailers-only-when-asked.md)."""
    status = rpc_status.to_status(failure.status())
    trailing = with_request_id(tuple(context.trailing_metadata() or ())) + tuple(status.trailing_metadata)
    await context.abort(status.code, status.details, trailing)
    raise AssertionError("unreachable: abort() raises")  # for type checkers


def with_request_id(metadata: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """`metadata` with the call's request id added, unless it is there already or there is none."""
    request_id = request_id_var.get()
    if not request_id or any(key == REQUEST_ID_HEADER for key, _ in metadata):
        return metadata
    return (*metadata, (REQUEST_ID_HEADER, request_id))


class AbortOnError:
    """`async with AbortOnError(context):` ends the RPC with the status `status_for` gives
    to an exception leaving the block. Cancellation, generator close and an abort already
    under way pass through untouched: they must reach grpc as they are."""

    __slots__ = ("_context",)

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self._context = context

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not isinstance(exc, Exception) or isinstance(exc, grpc.aio.AbortError):
            return
        await abort_with(self._context, failure_for(exc))  # raises AbortError, replacing `exc`
