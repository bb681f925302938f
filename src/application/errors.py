"""Every typed error the service raises on purpose; the gRPC adapter maps each to one status code
in one place (adapters/driving/grpc_api/errors.py)."""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of every error a use case raises on purpose. Messages carry context, never secrets."""


class InvalidArgument(ApplicationError):
    """A request value is out of range. `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class CursorForeign(InvalidArgument):
    """A change-feed cursor this service did not issue (or from another store). `cursor` is
    its first 40 characters."""

    def __init__(self, cursor: str, message: str) -> None:
        super().__init__("start_cursor", message)
        self.cursor = cursor[:40]


class CacheNotFound(ApplicationError):
    def __init__(self, user_id: int) -> None:
        super().__init__(f"no ticket cache for user {user_id}")
        self.user_id = user_id


class UpstreamUnavailable(ApplicationError):
    """Bytemark failed after retries (5xx, timeout, reset, 429 past the bound, bad body, other 4xx).
    `endpoint` names the call, e.g. 'GET /v4.0/passes'. `retry_after` is how long to wait
    before trying again, in seconds, when known (Bytemark's Retry-After, the rider's backoff)."""

    def __init__(self, endpoint: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(f"Bytemark {endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.retry_after = retry_after


class AccessTokenRejected(ApplicationError):
    """Bytemark answered 401 to the access token: refresh it once and retry."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(f"Bytemark {endpoint}: access token rejected (401)")
        self.endpoint = endpoint


class RefreshTokenInvalid(ApplicationError):
    """The account API answered invalid_grant: the user's token is dead (outcome NO_VALID_TOKEN)."""

    def __init__(self, reason: str = "invalid_grant") -> None:
        super().__init__(f"Bytemark refresh token rejected: {reason}")


class StoreUnavailable(ApplicationError):
    """A database (token store, cache store, logs) could not be reached or failed."""

    def __init__(self, store: str, reason: str) -> None:
        super().__init__(f"{store} unavailable: {reason}")
        self.store = store
        self.reason = reason


class WriteConflict(ApplicationError):
    """A compare-and-set write found another version than the one it read (lost a race)."""

    def __init__(self, user_id: int, expected_version: int | None) -> None:
        super().__init__(
            f"ticket cache of user {user_id} changed concurrently (expected version {expected_version})"
        )
        self.user_id = user_id
        self.expected_version = expected_version


class CacheTooLarge(ApplicationError):
    """The user's cache document would exceed the store's document size limit (MongoDB: 16 MiB).
    Retrying cannot help; PASSES4_RETENTION_DAYS lets an operator shrink heavy riders."""

    def __init__(self, user_id: int, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(
            f"ticket cache of user {user_id} would be {size_bytes:,} bytes, over the store's"
            f" {limit_bytes:,}-byte document limit; nothing was written"
            " (PASSES4_RETENTION_DAYS forgets old expired passes)"
        )
        self.user_id = user_id
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


class CacheNotStorable(ApplicationError):
    """The store refused what a payload holds (e.g. FerretDB v1: a key with '.', a nested array,
    Infinity). Retrying cannot help until the payload changes or the store does."""

    def __init__(self, user_id: int, store: str, reason: str) -> None:
        super().__init__(f"{store} refused the ticket cache of user {user_id}: {reason}; nothing was written")
        self.user_id = user_id
        self.store = store
        self.reason = reason


class TokenDecryptionError(ApplicationError):
    """A stored token is encrypted but cannot be read (wrong or missing key, corrupted row).
    Never carries the token itself."""

    def __init__(self, user_id: int, reason: str) -> None:
        super().__init__(f"stored Bytemark token of user {user_id} {reason}")
        self.user_id = user_id


class DeadlineExceeded(ApplicationError):
    """The caller's deadline passed while the request was still working."""

    def __init__(self) -> None:
        super().__init__("deadline exceeded before the request completed")


class InternalError(ApplicationError):
    """An unexpected failure (a bug) for one user of a bulk run. The exception is chained as
    `__cause__` for the server log; callers only ever see that an internal error happened."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(f"unexpected {type(cause).__name__}")
        self.__cause__ = cause


class SyncStatusNotFound(ApplicationError):
    """The service has never refreshed this rider, so it has no sync status."""

    def __init__(self, user_id: int) -> None:
        super().__init__(f"no sync status for user {user_id}: the service has never refreshed this rider")
        self.user_id = user_id


class CursorExpired(ApplicationError):
    """A change-feed cursor older than the retention window: resync with GetTicketCache."""

    def __init__(self, retention_days: int | None = None) -> None:
        window = f" ({retention_days} days)" if retention_days else ""
        super().__init__(
            f"start_cursor is older than the change feed's retention{window}: read the current caches"
            " with GetTicketCache, then watch again without a cursor"
        )


class Unsupported(ApplicationError):
    """The configured stores cannot do what was asked."""
