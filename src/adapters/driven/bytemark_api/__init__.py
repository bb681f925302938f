"""Bytemark adapter: HTTP client for the customer API (passes) and account API (OAuth)."""

from adapters.driven.bytemark_api.client import (
    EXPIRED_PASSES_ENDPOINT,
    PASSES_ENDPOINT,
    TOKEN_ENDPOINT,
    BytemarkClient,
    CallObserver,
)
from adapters.driven.bytemark_api.rate_limit import RateLimiter
from adapters.driven.bytemark_api.retry import RetryPolicy

__all__ = [
    "EXPIRED_PASSES_ENDPOINT",
    "PASSES_ENDPOINT",
    "TOKEN_ENDPOINT",
    "BytemarkClient",
    "CallObserver",
    "RateLimiter",
    "RetryPolicy",
]
