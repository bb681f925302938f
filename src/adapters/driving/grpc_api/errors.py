"""The one mapping from errors to gRPC status codes, for failed RPCs and failed users in streams."""

from __future__ import annotations

import logging
import uuid
from types import TracebackType
from typing import Any

import grpc

from adapters.common.logs import request_id_var
from application.errors import (
    AccessTokenRejected,
    CacheNotFound,
    CacheNotStorable,
    CacheTooLarge,
    CursorExpired,
    DeadlineExceeded,
    InternalError,
    InvalidArgument,
    RefreshTokenInvalid,
    StoreUnavailable,
    SyncStatusNotFound,
    TokenDecryptionError,
    Unsupported,
    UpstreamUnavailable,
    WriteConflict,
)

logger = logging.getLogger(__name__)

#: What a caller learns of a failed store: what failed, not where (host, user, path, driver),
#: which goes to the log line carrying the same request id.
STORE_UNAVAILABLE = "cache store unavailable; retry later"


# Most specific first: the first isinstance match wins.
_STATUS_BY_ERROR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),  # its message starts with the field name
    (CacheNotFound, grpc.StatusCode.NOT_FOUND),
    (SyncStatusNotFound, grpc.StatusCode.NOT_FOUND),
    (CursorExpired, grpc.StatusCode.OUT_OF_RANGE),
    (Unsupported, grpc.StatusCode.UNIMPLEMENTED),
    (UpstreamUnavailable, grpc.StatusCode.UNAVAILABLE),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
    # Bytemark still refused the token after the refresh-and-retry: retry later.
    (AccessTokenRejected, grpc.StatusCode.UNAVAILABLE),
    # Normally reported as outcome NO_VALID_TOKEN; if it escapes, the user must re-link.
    (RefreshTokenInvalid, grpc.StatusCode.FAILED_PRECONDITION),
    # The stored token is unreadable (wrong or missing TOKEN_ENCRYPTION_KEY, corrupted row): a
    # retry cannot help until an operator fixes the key or the user re-links.
    (TokenDecryptionError, grpc.StatusCode.FAILED_PRECONDITION),
    (WriteConflict, grpc.StatusCode.ABORTED),
    # The store cannot hold this rider's cache as it is: retrying cannot help.
    (CacheTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (CacheNotStorable, grpc.StatusCode.FAILED_PRECONDITION),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    # A bug met by one user of a bulk run: the stream's log line for that user has the traceback.
    (InternalError, grpc.StatusCode.INTERNAL),
)


def status_for(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message to send for `error`.

    Known errors carry their own message (application messages never hold secrets), but for
    a store failure, whose detail names where it happened: the caller gets a generic message
    and the request id, and the detail is logged under that id. Anything else is a bug: it is
    logged with its traceback under a request id, and the caller gets only that id, never the
    exception text.
    """
    code = next((code for error_type, code in _STATUS_BY_ERROR if isinstance(error, error_type)), None)
    if isinstance(error, StoreUnavailable):
        request_id = request_id_var.get() or uuid.uuid4().hex
        logger.warning("%s (request id %s)", error, request_id)
        return grpc.StatusCode.UNAVAILABLE, f"{STORE_UNAVAILABLE} (request id {request_id})"
    if code is not None and code is not grpc.StatusCode.INTERNAL:
        return code, str(error)
    request_id = request_id_var.get() or uuid.uuid4().hex
    if code is None:
        logger.error(
            "unexpected %s while handling a request (request id %s)",
            type(error).__name__,
            request_id,
            exc_info=error,
        )
    return grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})"


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
        code, message = status_for(exc)
        await self._context.abort(code, message)  # raises AbortError, replacing `exc`
