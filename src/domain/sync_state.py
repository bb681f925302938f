"""Per-rider sync state: what the last refresh attempts of a rider did, and whether a bulk run
should call Bytemark for the rider now. Pure transitions; the clock and the jitter are parameters.

    state          event                               next state     bulk runs
    any / none     refresh succeeded (built/updated/   OK             attempt
                   unchanged)
    any / none     Bytemark UNAVAILABLE-class failure  FAILING        skip until next_attempt_at
    any / none     no valid token (no row, no refresh  AUTH_REQUIRED  skip until the token row
                   token after a 401, invalid_grant)                  changes
    any            FRESH (no Bytemark call)            unchanged      -
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

DEFAULT_BACKOFF_BASE_SECONDS = 60
DEFAULT_BACKOFF_MAX_SECONDS = 21_600


class SyncState(enum.StrEnum):
    OK = "OK"
    FAILING = "FAILING"
    AUTH_REQUIRED = "AUTH_REQUIRED"


class SkipReason(enum.StrEnum):
    """Why a bulk run did not call Bytemark for a rider."""

    AUTH_REQUIRED = "auth_required"
    BACKOFF = "backoff"


@dataclass(frozen=True, slots=True)
class SyncError:
    """The last failure: a gRPC status code name and a message for operators (never a secret)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SyncStatus:
    """Times are epoch seconds. `token_fingerprint` (AUTH_REQUIRED only) identifies the token row
    the rider failed with, so a new login is noticed without keeping the tokens themselves."""

    user_id: int
    state: SyncState
    last_attempt_at: int
    last_success_at: int | None = None
    consecutive_failures: int = 0
    last_error: SyncError | None = None
    next_attempt_at: int | None = None
    cache_timestamp: int | None = None
    token_fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class TokenRow:
    """What a bulk run sees of a rider's `bytemark_tokens` row when deciding about AUTH_REQUIRED."""

    fingerprint: str
    updated_at: int | None  # epoch seconds


def token_fingerprint(access_token: str | None, refresh_token: str | None) -> str:
    """A short digest of the token pair: equal pairs give equal fingerprints; '' for no token."""
    if not access_token and not refresh_token:
        return ""
    text = f"{access_token or ''}\x00{refresh_token or ''}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with "equal jitter": the delay doubles per consecutive failure up to
    `max_seconds`, and a random half of it is taken off so that failing riders spread out."""

    base_seconds: int = DEFAULT_BACKOFF_BASE_SECONDS
    max_seconds: int = DEFAULT_BACKOFF_MAX_SECONDS

    def __post_init__(self) -> None:
        if self.base_seconds < 1 or self.max_seconds < self.base_seconds:
            raise ValueError("backoff needs 1 <= base_seconds <= max_seconds")

    def delay(self, failures: int, jitter: float) -> int:
        """Seconds to wait after the `failures`-th consecutive failure; `jitter` is in [0, 1]."""
        exponent = min(max(failures, 1) - 1, 40)  # 2**40 minutes is past any sane cap
        ceiling = min(self.max_seconds, self.base_seconds * 2**exponent)
        return max(1, int(round(ceiling / 2 + ceiling / 2 * min(max(jitter, 0.0), 1.0))))


def succeeded(user_id: int, now: int, cache_timestamp: int) -> SyncStatus:
    return SyncStatus(
        user_id=user_id,
        state=SyncState.OK,
        last_attempt_at=now,
        last_success_at=now,
        cache_timestamp=cache_timestamp,
    )


def failed(
    previous: SyncStatus | None, user_id: int, now: int, error: SyncError, backoff: Backoff, jitter: float
) -> SyncStatus:
    failures = _failures_before(previous) + 1
    return SyncStatus(
        user_id=user_id,
        state=SyncState.FAILING,
        last_attempt_at=now,
        last_success_at=previous.last_success_at if previous else None,
        consecutive_failures=failures,
        last_error=error,
        next_attempt_at=now + backoff.delay(failures, jitter),
        cache_timestamp=previous.cache_timestamp if previous else None,
    )


def auth_required(
    previous: SyncStatus | None, user_id: int, now: int, error: SyncError, token: TokenRow | None
) -> SyncStatus:
    return SyncStatus(
        user_id=user_id,
        state=SyncState.AUTH_REQUIRED,
        last_attempt_at=now,
        last_success_at=previous.last_success_at if previous else None,
        consecutive_failures=_failures_before(previous) + 1,
        last_error=error,
        cache_timestamp=previous.cache_timestamp if previous else None,
        token_fingerprint=token.fingerprint if token else "",
    )


def skip_reason(status: SyncStatus | None, now: int, token: TokenRow | None) -> SkipReason | None:
    """Whether a bulk run leaves the rider alone now. `token` matters only for AUTH_REQUIRED
    (see `needs_token_row`): the rider is tried again once its token row changed."""
    if status is None or status.state is SyncState.OK:
        return None
    if status.state is SyncState.FAILING:
        due = status.next_attempt_at is None or now >= status.next_attempt_at
        return None if due else SkipReason.BACKOFF
    return None if login_repaired(status, token) else SkipReason.AUTH_REQUIRED


def needs_token_row(status: SyncStatus | None) -> bool:
    return status is not None and status.state is SyncState.AUTH_REQUIRED


def login_repaired(status: SyncStatus, token: TokenRow | None) -> bool:
    """A different token or refresh token, or a row updated after the failure."""
    if token is None or not token.fingerprint:
        return False
    if token.fingerprint != status.token_fingerprint:
        return True
    return token.updated_at is not None and token.updated_at > status.last_attempt_at


def _failures_before(previous: SyncStatus | None) -> int:
    if previous is None or previous.state is SyncState.OK:
        return 0
    return previous.consecutive_failures
