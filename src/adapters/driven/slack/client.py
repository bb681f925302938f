"""The Slack Web API client the service posts with: Slack's own retry handlers for a 429 (after
its Retry-After) and a 5xx; past those, the notice stays in the outbox for the relay to retry."""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

RATE_LIMIT_RETRIES = 2
SERVER_ERROR_RETRIES = 1


def slack_client(token: str, base_url: str, timeout: int = 5) -> AsyncWebClient:
    client = AsyncWebClient(token=token, base_url=base_url, timeout=timeout)
    client.retry_handlers += [  # after the default connection-error handler
        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
    ]
    return client
