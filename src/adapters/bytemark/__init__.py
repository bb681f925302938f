"""Bytemark adapter: HTTP client for the customer API (passes) and account API (OAuth)."""

from adapters.bytemark.client import (
    EXPIRED_PASSES_ENDPOINT,
    PASSES_ENDPOINT,
    TOKEN_ENDPOINT,
    BytemarkClient,
    CallObserver,
)
from adapters.bytemark.rate_limit import RateLimiter
from adapters.bytemark.retry import RetryPolicy

__all__ = [
    "EXPIRED_PASSES_ENDPOINT",
    "PASSES_ENDPOINT",
    "TOKEN_ENDPOINT",
    "BytemarkClient",
    "CallObserver",
    "RateLimiter",
    "RetryPolicy",
]
