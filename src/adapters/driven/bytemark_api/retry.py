"""Retry policy for Bytemark calls: exponential backoff with full jitter, honouring Retry-After."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_random_exponential,
)

from application.errors import UpstreamUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_attempts` counts every HTTP attempt, the first included."""

    max_attempts: int = 4
    backoff_base_seconds: float = 0.2
    backoff_cap_seconds: float = 5.0
    max_retry_after_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if (
            min(
                self.backoff_base_seconds,
                self.backoff_cap_seconds,
                self.max_retry_after_seconds,
            )
            < 0
        ):
            raise ValueError("retry waits must be >= 0")


class RetryableFailure(Exception):
    """One attempt failed in a way worth retrying (5xx, 429, timeout, reset).
    `reason` is safe to show (no secrets); `retry_after` is the server's requested wait, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.
    None when absent or unparsable (the caller falls back to backoff)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are GMT by definition
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


async def call_with_retries(
    endpoint: str,
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> T:
    """Run `attempt` until it succeeds, raises something other than RetryableFailure,
    or `policy.max_attempts` are used; then raise UpstreamUnavailable naming the endpoint.

    The first attempt runs directly: the retry machinery (tenacity, ~0.1-0.2 ms of CPU per
    call) is only set up after a retryable failure, which it then sees as its own first
    attempt, so waits, log lines and the attempt count are the same as a retry from the start."""
    try:
        return await attempt()
    except RetryableFailure as failure:
        first_failure: RetryableFailure | None = failure

    async def replay_first_failure_then_attempt() -> T:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return await attempt()

    return await _retry(endpoint, replay_first_failure_then_attempt, policy, sleep)


async def _retry(
    endpoint: str,
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    sleep: Sleep,
) -> T:
    backoff = wait_random_exponential(multiplier=policy.backoff_base_seconds, max=policy.backoff_cap_seconds)

    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, RetryableFailure) and failure.retry_after is not None:
            return failure.retry_after
        return float(backoff(state))

    def log_retry(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        logger.warning(
            "Bytemark %s attempt %d/%d failed (%s); retrying in %.2fs",
            endpoint,
            state.attempt_number,
            policy.max_attempts,
            failure,
            state.upcoming_sleep,
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts),
        wait=wait,
        retry=retry_if_exception_type(RetryableFailure),
        before_sleep=log_retry,
        sleep=sleep,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except RetryableFailure as failure:
        logger.warning(
            "Bytemark %s gave up after %d attempts (%s)",
            endpoint,
            policy.max_attempts,
            failure,
        )
        raise UpstreamUnavailable(
            endpoint, f"{failure.reason} after {policy.max_attempts} attempts", failure.retry_after
        ) from failure
