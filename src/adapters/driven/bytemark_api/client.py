"""Bytemark HTTP client: the customer API (passes) and the account API (OAuth refresh)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from adapters.driven.bytemark_api.loop_lag import LoopLag, TimeoutExcludingLoopLag
from adapters.driven.bytemark_api.rate_limit import RateLimiter
from adapters.driven.bytemark_api.responses import (
    PassesPage,
    oauth_error_code,
    parse_passes_page,
    parse_token_grant,
)
from adapters.driven.bytemark_api.retry import (
    RetryableFailure,
    RetryPolicy,
    Sleep,
    call_with_retries,
    parse_retry_after,
)
from application.errors import (
    AccessTokenRejected,
    RefreshTokenInvalid,
    UpstreamUnavailable,
)
from application.ports import TokenGrant
from domain.model import FetchedPasses, Payload

logger = logging.getLogger(__name__)

#: Called after every HTTP attempt with (endpoint, outcome, seconds); outcome is the HTTP
#: status ("200", "503") or "timeout", "reset", "error", "cancelled".
CallObserver = Callable[[str, str, float], None]

PASSES_ENDPOINT = "GET /passes"
EXPIRED_PASSES_ENDPOINT = "GET /v4.0/passes"
TOKEN_ENDPOINT = "POST /oauth/token"

#: A guard against a server announcing absurd page counts (10M passes at the default limit).
MAX_PAGES = 1000

# OAuth errors that blame our client credentials, not the user's refresh token: reporting them
# as RefreshTokenInvalid would mark every user NO_VALID_TOKEN because of a configuration error.
_CLIENT_CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client"})

_EXPIRED_FILTER: Mapping[str, str] = {"status": "EXPIRED"}
_ACCEPT_JSON: Mapping[str, str] = {"Accept": "application/json"}  # shared: never mutated


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    retry_after: str | None
    parsed: Any = None  # what `parse` made of a 200 body


class BytemarkClient:
    """Implements PassesSource and TokenRefresher over one shared aiohttp session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        customer_api_url: str,
        account_api_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_seconds: float = 10.0,
        retry_policy: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        page_limit: int = 9999,
        on_call: CallObserver | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        if page_limit < 1:
            raise ValueError("page_limit must be >= 1")
        self._session = session
        self._customer_api_url = customer_api_url.rstrip("/")
        self._account_api_url = account_api_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout_seconds = timeout_seconds
        self._retry_policy = retry_policy or RetryPolicy()
        self._rate_limiter = rate_limiter or RateLimiter(None)
        self._page_limit = page_limit
        self._on_call = on_call
        self._sleep = sleep
        self._loop_lag = LoopLag()
        # Page URLs with their query, built once: (endpoint, page) -> URL. Bounded by
        # MAX_PAGES per endpoint; in practice page 1 of each list.
        self._page_urls: dict[tuple[str, int], URL] = {}
        self._token_url = URL(self._account_api_url + "/oauth/token")

    def __repr__(self) -> str:  # the client secret stays out of reprs
        return (
            f"BytemarkClient(customer_api_url={self._customer_api_url!r}, "
            f"account_api_url={self._account_api_url!r}, client_secret=***)"
        )

    # PassesSource

    async def fetch_passes(self, access_token: str) -> FetchedPasses:
        """Both lists concurrently; the first failure cancels the other request."""
        headers = {"Authorization": f"Bearer {access_token}", **_ACCEPT_JSON}  # for every page
        try:
            async with asyncio.TaskGroup() as group:
                v1 = group.create_task(self._fetch_all_pages(PASSES_ENDPOINT, "/passes", {}, headers))
                v4_expired = group.create_task(
                    self._fetch_all_pages(EXPIRED_PASSES_ENDPOINT, "/v4.0/passes", _EXPIRED_FILTER, headers)
                )
        except ExceptionGroup as failures:
            failure = _most_relevant(failures)
            raise failure from failure.__cause__  # keep its own cause, drop the group
        return FetchedPasses(v1=v1.result(), v4_expired=v4_expired.result())

    async def _fetch_all_pages(
        self, endpoint: str, path: str, filters: Mapping[str, str], headers: Mapping[str, str]
    ) -> list[Payload]:
        passes: list[Payload] = []
        page = 1
        while True:
            result = await self._fetch_page(endpoint, path, filters, page, headers)
            passes.extend(result.passes)
            if result.total_pages <= page:
                return passes
            if page >= MAX_PAGES:
                raise UpstreamUnavailable(
                    endpoint,
                    f"pagination announces {result.total_pages} pages (limit {MAX_PAGES})",
                )
            page += 1

    async def _fetch_page(
        self,
        endpoint: str,
        path: str,
        filters: Mapping[str, str],
        page: int,
        headers: Mapping[str, str],
    ) -> PassesPage:
        url = self._page_urls.get((endpoint, page))
        if url is None:
            # The same URL aiohttp would build from `params`, without yarl re-encoding the
            # query on every request.
            query = {**filters, "page": str(page), "limit": str(self._page_limit)}
            url = URL(self._customer_api_url + path).extend_query(query)
            self._page_urls[(endpoint, page)] = url

        def parse(body: bytes) -> PassesPage:
            return parse_passes_page(endpoint, body)

        async def attempt() -> PassesPage:
            reply = await self._send(endpoint, "GET", url, parse, headers=headers)
            if reply.status == 401:
                logger.info("Bytemark %s page %d: access token rejected (401)", endpoint, page)
                raise AccessTokenRejected(endpoint)
            self._raise_for_failure(endpoint, reply)
            page_result: PassesPage = reply.parsed
            return page_result

        return await call_with_retries(endpoint, attempt, self._retry_policy, self._sleep)

    # TokenRefresher

    async def refresh(self, refresh_token: str) -> TokenGrant:
        url = self._token_url
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }

        async def attempt() -> TokenGrant:
            reply = await self._send(
                TOKEN_ENDPOINT,
                "POST",
                url,
                lambda body: parse_token_grant(TOKEN_ENDPOINT, body),
                data=form,
                headers=_ACCEPT_JSON,
            )
            if reply.status in (400, 401):
                raise _rejected_grant(reply)
            self._raise_for_failure(TOKEN_ENDPOINT, reply)
            grant: TokenGrant = reply.parsed
            return grant

        return await call_with_retries(TOKEN_ENDPOINT, attempt, self._retry_policy, self._sleep)

    # One HTTP attempt

    def _raise_for_failure(self, endpoint: str, reply: _Reply) -> None:
        """Classify a non-200 status: retryable (429, 5xx) or final (other statuses)."""
        if reply.status == 200:
            return
        if reply.status == 429:
            wait = parse_retry_after(reply.retry_after)
            bound = self._retry_policy.max_retry_after_seconds
            if wait is not None and wait > bound:
                # Retrying earlier than asked only earns another 429: give up now.
                raise UpstreamUnavailable(
                    endpoint,
                    f"rate limited (429), Retry-After {wait:g}s exceeds the {bound:g}s bound",
                    retry_after=wait,
                )
            raise RetryableFailure("rate limited (429)", retry_after=wait)
        if reply.status >= 500:
            raise RetryableFailure(f"HTTP {reply.status}")
        raise UpstreamUnavailable(endpoint, f"HTTP {reply.status}")

    async def _send(
        self, endpoint: str, method: str, url: URL, parse: Callable[[bytes], Any], **request: Any
    ) -> _Reply:
        """One rate-limited, time-bounded attempt. Network failures become RetryableFailure.
        A 200 body is parsed here so a malformed one is observed as an error ("malformed")."""
        await self._rate_limiter.acquire()
        outcome = "error"
        started = time.perf_counter()
        try:
            # Bytemark's time only: an answer that waited for our late loop has not timed out.
            async with TimeoutExcludingLoopLag(self._timeout_seconds, self._loop_lag):
                # No redirects: a bearer token must not follow a Location header anywhere.
                async with self._session.request(method, url, allow_redirects=False, **request) as response:
                    status = response.status
                    outcome = str(status)
                    body = await response.read()
                    retry_after = None if status == 200 else response.headers.get("Retry-After")
            if status == 200:
                try:
                    return _Reply(status, body, retry_after, parse(body))
                except UpstreamUnavailable:
                    outcome = "malformed"
                    raise
            return _Reply(status, body, retry_after)
        except TimeoutError:
            outcome = "timeout"
            raise RetryableFailure("timeout") from None
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as error:
            outcome = "reset"
            raise RetryableFailure(f"connection error ({type(error).__name__})") from None
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except aiohttp.ClientError as error:
            outcome = "error"
            raise UpstreamUnavailable(endpoint, f"client error ({type(error).__name__})") from None
        finally:
            self._observe(endpoint, outcome, time.perf_counter() - started)

    def _observe(self, endpoint: str, outcome: str, seconds: float) -> None:
        logger.debug("Bytemark %s -> %s in %.3fs", endpoint, outcome, seconds)
        if self._on_call is None:
            return
        try:
            self._on_call(endpoint, outcome, seconds)
        except Exception:  # metrics must never break a call
            logger.exception("on_call observer failed for Bytemark %s", endpoint)


def _rejected_grant(reply: _Reply) -> Exception:
    code = oauth_error_code(reply.body)
    if code in _CLIENT_CREDENTIAL_ERRORS:
        logger.error("Bytemark %s: client credentials rejected (%s)", TOKEN_ENDPOINT, code)
        return UpstreamUnavailable(TOKEN_ENDPOINT, f"client credentials rejected ({code})")
    logger.info(
        "Bytemark %s: refresh token rejected (HTTP %d, %s)",
        TOKEN_ENDPOINT,
        reply.status,
        code,
    )
    return RefreshTokenInvalid(code or f"HTTP {reply.status}")


def _most_relevant(failures: ExceptionGroup[Exception]) -> Exception:
    """Usually one list failed and the other was cancelled. When both failed, a rejected token
    wins: the caller refreshes it and retries, which may fix both."""
    leaves = list(_leaves(failures))
    for failure in leaves:
        if isinstance(failure, AccessTokenRejected):
            return failure
    return leaves[0]


def _leaves(group: BaseExceptionGroup[Exception]) -> list[Exception]:
    found: list[Exception] = []
    for failure in group.exceptions:
        if isinstance(failure, BaseExceptionGroup):
            found.extend(_leaves(failure))
        else:
            found.append(failure)
    return found


__all__ = [
    "EXPIRED_PASSES_ENDPOINT",
    "PASSES_ENDPOINT",
    "TOKEN_ENDPOINT",
    "BytemarkClient",
    "CallObserver",
]
