"""The error catalogue: every `reason` the service puts in an ErrorInfo (AIP-193), its status code,
when it happens and what a caller should do. The one table callers branch on: errors.py maps each
application error to its entry, the interceptor and the drain use theirs, and docs/errors.md is
rendered from it (`python -m adapters.driving.grpc_api.error_catalogue > docs/errors.md`; a test
fails when the page is stale)."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from application.errors import (
    AccessTokenRejected,
    CacheNotFound,
    CacheNotStorable,
    CacheTooLarge,
    CursorExpired,
    CursorForeign,
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

#: ErrorInfo.domain of every error this service sends.
DOMAIN = "ticketcache.bytemark"

Code = grpc.StatusCode


@dataclass(frozen=True, slots=True)
class Reason:
    """One stable ErrorInfo reason (UPPER_SNAKE_CASE): callers branch on `name`, never on messages."""

    name: str
    code: grpc.StatusCode
    when: str
    action: str


INVALID_FIELD = Reason(
    "INVALID_FIELD",
    Code.INVALID_ARGUMENT,
    "A request field is out of range or malformed; BadRequest names the field.",
    "Fix the named field; the same request fails again.",
)
MALFORMED_REQUEST = Reason(
    "MALFORMED_REQUEST",
    Code.INVALID_ARGUMENT,
    "The request bytes are not a valid protobuf message of the method's type (field `request`).",
    "Check the client's generated code matches the service's proto.",
)
CURSOR_FOREIGN = Reason(
    "CURSOR_FOREIGN",
    Code.INVALID_ARGUMENT,
    "WatchChanges got a start_cursor this service did not issue, or one past the store's newest change"
    " (another deployment's cursor).",
    "Watch again without a cursor after reading the current caches with GetTicketCache.",
)
CURSOR_EXPIRED = Reason(
    "CURSOR_EXPIRED",
    Code.OUT_OF_RANGE,
    "WatchChanges got a start_cursor older than the change feed's retention.",
    "Read the current caches with GetTicketCache, then watch again without a cursor.",
)
CACHE_NOT_FOUND = Reason(
    "CACHE_NOT_FOUND",
    Code.NOT_FOUND,
    "The rider (`user_id`) has no ticket cache (GetTicketCache, UpdateTicketCache).",
    "Build it with CheckTicketCache or BuildTicketCache.",
)
SYNC_STATUS_NOT_FOUND = Reason(
    "SYNC_STATUS_NOT_FOUND",
    Code.NOT_FOUND,
    "GetSyncStatus for a rider the service has never refreshed.",
    "Refresh the rider first, or treat it as never synced.",
)
FEATURE_NOT_CONFIGURED = Reason(
    "FEATURE_NOT_CONFIGURED",
    Code.UNIMPLEMENTED,
    "The server's configured stores cannot do what was asked (WatchChanges without a change feed).",
    "Call a deployment that has it configured; retrying here cannot help.",
)
BYTEMARK_UNAVAILABLE = Reason(
    "BYTEMARK_UNAVAILABLE",
    Code.UNAVAILABLE,
    "Bytemark failed after the service's own retries (5xx, timeout, 429 past the bound, bad body);"
    " `endpoint` names the call. RetryInfo carries Bytemark's Retry-After or the rider's backoff.",
    "Retry after RetryInfo's delay (or with backoff); the stored cache is unchanged.",
)
BYTEMARK_TOKEN_REJECTED = Reason(
    "BYTEMARK_TOKEN_REJECTED",
    Code.UNAVAILABLE,
    "Bytemark still refused the rider's access token after the refresh-and-retry.",
    "Retry later; if it persists, the rider should re-link their account.",
)
STORE_UNAVAILABLE = Reason(
    "STORE_UNAVAILABLE",
    Code.UNAVAILABLE,
    "A database of the service (`store`) could not be reached or failed.",
    "Retry with backoff; quote `request_id` to operators if it persists.",
)
NO_VALID_TOKEN = Reason(
    "NO_VALID_TOKEN",
    Code.FAILED_PRECONDITION,
    "Bytemark rejected the rider's refresh token (invalid_grant): the link to Bytemark is dead.",
    "Ask the rider to re-link their Bytemark account; retrying cannot help.",
)
TOKEN_UNREADABLE = Reason(
    "TOKEN_UNREADABLE",
    Code.FAILED_PRECONDITION,
    "The rider's stored token cannot be decrypted (wrong or missing TOKEN_ENCRYPTION_KEY, corrupted row).",
    "Tell operators (quote `request_id`); retrying cannot help until the key is fixed or the rider re-links.",
)
WRITE_CONFLICT = Reason(
    "WRITE_CONFLICT",
    Code.ABORTED,
    "Another writer changed the rider's cache concurrently, twice in a row.",
    "Retry the call.",
)
DOCUMENT_TOO_LARGE = Reason(
    "DOCUMENT_TOO_LARGE",
    Code.RESOURCE_EXHAUSTED,
    "The rider's cache would exceed the store's document size limit (`size_bytes` over `limit_bytes`);"
    " nothing was written.",
    "Do not retry; operators can shrink heavy riders with PASSES4_RETENTION_DAYS.",
)
CACHE_NOT_STORABLE = Reason(
    "CACHE_NOT_STORABLE",
    Code.FAILED_PRECONDITION,
    "The store refused what the rider's passes hold (e.g. FerretDB: a key with '.'); nothing was written.",
    "Do not retry until the passes or the store change; tell operators.",
)
DEADLINE_EXCEEDED = Reason(
    "DEADLINE_EXCEEDED",
    Code.DEADLINE_EXCEEDED,
    "The caller's deadline passed while the server was still working.",
    "Retry with a longer deadline; a refresh may or may not have been stored.",
)
UNAUTHENTICATED = Reason(
    "UNAUTHENTICATED",
    Code.UNAUTHENTICATED,
    "The server requires credentials (GRPC_AUTH_TOKEN or GRPC_AUTH_TOKENS_FILE) and the call had"
    " none, a wrong token, or a client certificate the tokens file does not name.",
    "Send `authorization: Bearer <token>` with a token the server accepts (rotated tokens stop working"
    " once removed from the tokens file).",
)
SCOPE_INSUFFICIENT = Reason(
    "SCOPE_INSUFFICIENT",
    Code.PERMISSION_DENIED,
    "The credentials are valid but their scope is too low for the method: a `read` token called a"
    " method that needs `operate` (ErrorInfo metadata: `required_scope`, `granted_scope`).",
    "Call with an `operate` credential, or only the read methods (docs/security.md).",
)
SERVER_SHUTTING_DOWN = Reason(
    "SERVER_SHUTTING_DOWN",
    Code.UNAVAILABLE,
    "The server is shutting down and ended an open stream (bulk run or WatchChanges).",
    "Call again (another replica answers); a bulk run skips riders already handled,"
    " WatchChanges resumes from the last cursor.",
)
INTERNAL = Reason(
    "INTERNAL",
    Code.INTERNAL,
    "An unexpected failure (a bug); the message and `request_id` identify it in the server log.",
    "Retry once; report `request_id` to operators if it persists.",
)

#: Application error -> its reason; most specific first (the first isinstance match wins).
REASON_BY_ERROR: tuple[tuple[type[Exception], Reason], ...] = (
    (CursorForeign, CURSOR_FOREIGN),
    (InvalidArgument, INVALID_FIELD),
    (CacheNotFound, CACHE_NOT_FOUND),
    (SyncStatusNotFound, SYNC_STATUS_NOT_FOUND),
    (CursorExpired, CURSOR_EXPIRED),
    (Unsupported, FEATURE_NOT_CONFIGURED),
    (UpstreamUnavailable, BYTEMARK_UNAVAILABLE),
    (StoreUnavailable, STORE_UNAVAILABLE),
    (AccessTokenRejected, BYTEMARK_TOKEN_REJECTED),
    (RefreshTokenInvalid, NO_VALID_TOKEN),
    (TokenDecryptionError, TOKEN_UNREADABLE),
    (WriteConflict, WRITE_CONFLICT),
    (CacheTooLarge, DOCUMENT_TOO_LARGE),
    (CacheNotStorable, CACHE_NOT_STORABLE),
    (DeadlineExceeded, DEADLINE_EXCEEDED),
    (InternalError, INTERNAL),
)

#: Reasons the gRPC adapter itself raises (interceptor, drain, unexpected exceptions).
ADAPTER_REASONS: tuple[Reason, ...] = (
    MALFORMED_REQUEST,
    UNAUTHENTICATED,
    SCOPE_INSUFFICIENT,
    SERVER_SHUTTING_DOWN,
    INTERNAL,
)

#: Every reason, each once, in the order of the table above.
CATALOGUE: tuple[Reason, ...] = tuple(
    dict.fromkeys([*(reason for _, reason in REASON_BY_ERROR), *ADAPTER_REASONS])
)

_PREAMBLE = f"""# Errors

<!-- Generated from src/adapters/driving/grpc_api/error_catalogue.py; do not edit by hand:
     .venv/bin/python -m adapters.driving.grpc_api.error_catalogue > docs/errors.md -->

Every non-OK status the service sends carries a `google.rpc.Status` in the standard
`grpc-status-details-bin` trailer (AIP-193), with these details:

- **ErrorInfo**, always: a stable `reason` (below), the domain `{DOMAIN}`, and `metadata` with
  what the error is about (`user_id`, `field`, `cursor`, `store`, `endpoint`, ...) and the
  call's `request_id` (the `x-request-id` the server logs it under).
- **BadRequest** with one `FieldViolation` naming the field path, on every INVALID_ARGUMENT.
- **RetryInfo** on UNAVAILABLE and RESOURCE_EXHAUSTED when the wait is known: Bytemark's
  `Retry-After`, or the rider's backoff after failed refreshes.

A failed rider in a bulk stream (`BuildCacheIfEmpty`, `RefreshStaleCaches`) carries the same
`google.rpc.Status` in its event's `status` field (the older `error` field with only code and
message is deprecated and goes in the next release).

Branch on `reason`, never on the message text: messages are for people and may change.
The Python client raises `TicketCacheError` with `.reason`, `.field_violations` and
`.retry_delay`; the Node client reads them with Connect's `findDetails(ErrorInfoSchema)`.

| reason | status code | when | what a caller should do |
| --- | --- | --- | --- |
"""


def catalogue_markdown() -> str:
    rows = [f"| `{r.name}` | {r.code.name} | {r.when} | {r.action} |" for r in CATALOGUE]
    return _PREAMBLE + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(catalogue_markdown(), end="")
