"""BytemarkClient against aioresponses: every success, retry and failure path."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from aioresponses.core import RequestCall

from adapters.driven.bytemark_api import BytemarkClient, RateLimiter, RetryPolicy
from adapters.driven.bytemark_api.responses import parse_json
from adapters.driven.bytemark_api.retry import parse_retry_after
from application.errors import (
    AccessTokenRejected,
    RefreshTokenInvalid,
    UpstreamUnavailable,
)
from domain.model import FetchedPasses

CUSTOMER = "https://customer.bytemark.test/api"
ACCOUNT = "https://account.bytemark.test"
TOKEN_URL = f"{ACCOUNT}/oauth/token"

ACCESS_TOKEN = "access-SECRET-a1"
REFRESH_TOKEN = "refresh-SECRET-r1"
CLIENT_SECRET = "client-SECRET-c1"
SECRETS = (ACCESS_TOKEN, REFRESH_TOKEN, CLIENT_SECRET)


def v1_url(page: int = 1) -> str:
    return f"{CUSTOMER}/passes?page={page}&limit=9999"


def v4_url(page: int = 1) -> str:
    return f"{CUSTOMER}/v4.0/passes?status=EXPIRED&page={page}&limit=9999"


def a_pass(uuid: str, **fields: Any) -> dict[str, Any]:
    return {"uuid": uuid, "product_uuid": "p-1", "status": "USABLE", **fields}


def page_body(passes: list[dict[str, Any]], page: int = 1, total_pages: int = 1) -> dict[str, Any]:
    pagination = {
        "page": page,
        "limit": 9999,
        "total_pages": total_pages,
        "total": len(passes),
    }
    return {"data": {"passes": passes, "pagination": pagination}, "errors": []}


def calls_to(mocked: aioresponses, method: str, path: str) -> list[RequestCall]:
    return [
        call
        for (sent_method, url), calls in mocked.requests.items()
        if sent_method == method and url.path == path
        for call in calls
    ]


class SleepRecorder:
    """Stands in for asyncio.sleep: records the requested waits, does not wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


class _ResponseForAiohttp314(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without the `stream_writer` argument aiohttp 3.14
    requires (pnuckowski/aioresponses#289); an already-sent request only reads its size."""

    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mocked(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    monkeypatch.setattr("aioresponses.core.ClientResponse", _ResponseForAiohttp314)
    with aioresponses() as mock:
        yield mock


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def observed() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def client(
    session: aiohttp.ClientSession,
    sleeps: SleepRecorder,
    observed: list[tuple[str, str]],
) -> BytemarkClient:
    return BytemarkClient(
        session,
        CUSTOMER + "/",  # a trailing slash must not double up
        ACCOUNT,
        "client-id-1",
        CLIENT_SECRET,
        retry_policy=RetryPolicy(),  # defaults: 4 attempts, 0.2 s base, 30 s bound
        on_call=lambda endpoint, outcome, _seconds: observed.append((endpoint, outcome)),
        sleep=sleeps,
    )


def expect_empty_v4(mocked: aioresponses) -> None:
    mocked.get(v4_url(), payload=page_body([]))


# fetch_passes: success paths


async def test_fetch_passes_returns_both_lists_exactly_as_received(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    v1 = [a_pass("u1", extra={"nested": [1, 2.5, None]}), a_pass("u2")]
    v4 = [a_pass("e1", status="EXPIRED")]
    mocked.get(v1_url(), payload=page_body(v1))
    mocked.get(v4_url(), payload=page_body(v4))

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert fetched == FetchedPasses(v1=v1, v4_expired=v4)


async def test_both_lists_are_requested_concurrently(client: BytemarkClient, mocked: aioresponses) -> None:
    in_flight = 0
    peak = 0

    async def slow_answer(url: Any, **kwargs: Any) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1

    mocked.get(v1_url(), payload=page_body([a_pass("u1")]), callback=slow_answer)
    mocked.get(v4_url(), payload=page_body([]), callback=slow_answer)

    await client.fetch_passes(ACCESS_TOKEN)

    assert peak == 2


async def test_every_page_of_both_lists_is_fetched_in_order(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    for page in (1, 2, 3):
        mocked.get(v1_url(page), payload=page_body([a_pass(f"v1-{page}")], page, total_pages=3))
    for page in (1, 2):
        mocked.get(v4_url(page), payload=page_body([a_pass(f"v4-{page}")], page, total_pages=2))

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert [p["uuid"] for p in fetched.v1] == ["v1-1", "v1-2", "v1-3"]
    assert [p["uuid"] for p in fetched.v4_expired] == ["v4-1", "v4-2"]


async def test_a_failing_second_page_fails_the_whole_fetch_and_leaves_no_task(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.get(v1_url(1), payload=page_body([a_pass("u1")], 1, total_pages=2))
    mocked.get(v1_url(2), status=503, repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.endpoint == "GET /passes"
    assert raised.value.reason == "HTTP 503 after 4 attempts"
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_missing_pagination_means_a_single_page(client: BytemarkClient, mocked: aioresponses) -> None:
    mocked.get(v1_url(), payload={"data": {"passes": [a_pass("u1")]}})
    mocked.get(v4_url(), payload={"data": {"passes": [], "pagination": None}})

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert [p["uuid"] for p in fetched.v1] == ["u1"]
    assert fetched.v4_expired == []


async def test_the_page_limit_is_configurable(session: aiohttp.ClientSession, mocked: aioresponses) -> None:
    mocked.get(f"{CUSTOMER}/passes?page=1&limit=50", payload=page_body([a_pass("u1")]))
    mocked.get(f"{CUSTOMER}/v4.0/passes?status=EXPIRED&page=1&limit=50", payload=page_body([]))
    client = BytemarkClient(session, CUSTOMER, ACCOUNT, "client-id-1", CLIENT_SECRET, page_limit=50)

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert [p["uuid"] for p in fetched.v1] == ["u1"]


async def test_an_absurd_page_count_is_an_upstream_error_not_an_endless_loop(
    client: BytemarkClient, mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("adapters.driven.bytemark_api.client.MAX_PAGES", 2)
    for page in (1, 2):
        mocked.get(v1_url(page), payload=page_body([a_pass(f"u{page}")], page, total_pages=99))
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable, match="pagination announces 99 pages"):
        await client.fetch_passes(ACCESS_TOKEN)


async def test_the_access_token_is_sent_as_a_bearer_header_on_both_lists(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.get(v1_url(), payload=page_body([]))
    expect_empty_v4(mocked)

    await client.fetch_passes(ACCESS_TOKEN)

    for path in ("/api/passes", "/api/v4.0/passes"):
        (call,) = calls_to(mocked, "GET", path)
        assert call.kwargs["headers"]["Authorization"] == f"Bearer {ACCESS_TOKEN}"


async def test_integers_beyond_64_bits_are_kept_exactly(client: BytemarkClient, mocked: aioresponses) -> None:
    body = (
        b'{"data": {"passes": [{"uuid": "u1", "fare_cents": 18446744073709551617,'
        b' "serial": -123456789012345678901234567890, "price": 2.50}]}}'
    )
    mocked.get(v1_url(), body=body)
    expect_empty_v4(mocked)

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    (payload,) = fetched.v1
    assert payload["fare_cents"] == 2**64 + 1
    assert payload["serial"] == -123456789012345678901234567890
    assert isinstance(payload["serial"], int)
    assert payload["price"] == 2.5


def test_json_parsing_keeps_every_integer_at_the_edge_of_64_bits_exact() -> None:
    # 19 digits is the shortest literal that can overflow; 18 never can; digits in strings stay text.
    edge = [2**63 - 1, 2**64 - 1, 2**64, -(2**63) - 1, 999_999_999_999_999_999, 10**19 + 7]
    numbers = b", ".join(str(v).encode() for v in edge)
    body = b'{"values": [' + numbers + b'], "serial": "1234567890123456789"}'
    parsed = parse_json(body)
    assert parsed["values"] == edge
    assert all(isinstance(v, int) for v in parsed["values"])
    assert parsed["serial"] == "1234567890123456789"


def test_json_parsing_keeps_lone_surrogates_and_rejects_nan() -> None:
    assert parse_json(b'{"name": "\\ud800"}') == {"name": "\ud800"}
    with pytest.raises(ValueError, match="NaN"):
        parse_json(b"[NaN]")


# fetch_passes: failure paths


async def test_a_401_raises_access_token_rejected_without_retrying(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v1_url(), status=401, repeat=True)
    mocked.get(v4_url(), payload=page_body([]), repeat=True)

    with pytest.raises(AccessTokenRejected) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.endpoint == "GET /passes"
    assert len(calls_to(mocked, "GET", "/api/passes")) == 1
    assert sleeps.waits == []


async def test_a_429_waits_for_retry_after_then_succeeds(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v1_url(), status=429, headers={"Retry-After": "2"})
    mocked.get(v1_url(), payload=page_body([a_pass("u1")]))
    expect_empty_v4(mocked)

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert [p["uuid"] for p in fetched.v1] == ["u1"]
    assert sleeps.waits == [2.0]


async def test_a_429_retry_after_given_as_an_http_date_is_honoured(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    mocked.get(v1_url(), status=429, headers={"Retry-After": later})
    mocked.get(v1_url(), payload=page_body([]))
    expect_empty_v4(mocked)

    await client.fetch_passes(ACCESS_TOKEN)

    (wait,) = sleeps.waits
    assert 17 < wait <= 20


async def test_a_429_without_retry_after_falls_back_to_jittered_backoff(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v1_url(), status=429)
    mocked.get(v1_url(), payload=page_body([]))
    expect_empty_v4(mocked)

    await client.fetch_passes(ACCESS_TOKEN)

    (wait,) = sleeps.waits
    assert 0 <= wait <= 0.2


async def test_429s_past_the_attempt_bound_raise_upstream_unavailable(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v1_url(), status=429, headers={"Retry-After": "1"}, repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert str(raised.value) == "Bytemark GET /passes: rate limited (429) after 4 attempts"
    assert sleeps.waits == [1.0, 1.0, 1.0]


async def test_a_retry_after_beyond_the_bound_fails_at_once(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v1_url(), status=429, headers={"Retry-After": "120"}, repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable, match="Retry-After 120s exceeds the 30s bound"):
        await client.fetch_passes(ACCESS_TOKEN)

    assert sleeps.waits == []
    assert len(calls_to(mocked, "GET", "/api/passes")) == 1


async def test_a_500_is_retried_then_succeeds(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v4_url(), status=500)
    mocked.get(v4_url(), payload=page_body([a_pass("e1")]))
    mocked.get(v1_url(), payload=page_body([]))

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert [p["uuid"] for p in fetched.v4_expired] == ["e1"]
    assert len(sleeps.waits) == 1


async def test_500s_exhausting_the_attempts_name_the_endpoint(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v4_url(), status=500, repeat=True)
    mocked.get(v1_url(), payload=page_body([]))

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.endpoint == "GET /v4.0/passes"
    assert str(raised.value) == "Bytemark GET /v4.0/passes: HTTP 500 after 4 attempts"
    assert len(calls_to(mocked, "GET", "/api/v4.0/passes")) == 4


async def test_backoff_is_full_jitter_under_a_doubling_ceiling(
    client: BytemarkClient, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    mocked.get(v1_url(), status=502, repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable):
        await client.fetch_passes(ACCESS_TOKEN)

    ceilings = [0.2, 0.4, 0.8]
    assert len(sleeps.waits) == 3
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleeps.waits, ceilings, strict=True))


async def test_a_timeout_is_retried_then_reported(
    client: BytemarkClient,
    mocked: aioresponses,
    observed: list[tuple[str, str]],
) -> None:
    mocked.get(v1_url(), timeout=True, repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.reason == "timeout after 4 attempts"
    assert observed.count(("GET /passes", "timeout")) == 4


async def test_a_slow_answer_is_cut_off_by_the_per_attempt_timeout(
    session: aiohttp.ClientSession, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    async def never_in_time(url: Any, **kwargs: Any) -> None:
        await asyncio.sleep(5)

    mocked.get(v1_url(), callback=never_in_time, repeat=True)
    expect_empty_v4(mocked)
    client = BytemarkClient(
        session,
        CUSTOMER,
        ACCOUNT,
        "client-id-1",
        CLIENT_SECRET,
        timeout_seconds=0.05,
        retry_policy=RetryPolicy(max_attempts=2),
        sleep=sleeps,
    )

    with pytest.raises(UpstreamUnavailable, match="timeout after 2 attempts"):
        await client.fetch_passes(ACCESS_TOKEN)


@pytest.mark.parametrize(
    "reset",
    [
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("Response payload is not completed"),
        aiohttp.ClientConnectionResetError("Connection reset by peer"),
    ],
    ids=["disconnect", "reset-mid-body", "connection-reset"],
)
async def test_a_connection_reset_is_retried_then_succeeds(
    client: BytemarkClient,
    mocked: aioresponses,
    observed: list[tuple[str, str]],
    reset: Exception,
) -> None:
    mocked.get(v1_url(), exception=reset)
    mocked.get(v1_url(), payload=page_body([a_pass("u1")]))
    expect_empty_v4(mocked)

    fetched = await client.fetch_passes(ACCESS_TOKEN)

    assert [p["uuid"] for p in fetched.v1] == ["u1"]
    assert ("GET /passes", "reset") in observed


async def test_resets_exhausting_the_attempts_say_so(client: BytemarkClient, mocked: aioresponses) -> None:
    mocked.get(v1_url(), exception=aiohttp.ServerDisconnectedError(), repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.reason == "connection error (ServerDisconnectedError) after 4 attempts"


async def test_a_body_that_is_not_json_is_an_upstream_error_not_retried(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.get(v1_url(), body=b"<html>maintenance</html>", content_type="text/html")
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.reason == "malformed body: not JSON"
    assert len(calls_to(mocked, "GET", "/api/passes")) == 1


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ([], "top level is not an object"),
        ({"errors": ["boom"]}, "'data' is not an object"),
        ({"data": {"passes": None}}, "'data.passes' is not a list"),
        ({"data": {"passes": {"uuid": "u1"}}}, "'data.passes' is not a list"),
        ({"data": {"passes": ["u1"]}}, "data.passes[0] is not an object"),
        ({"data": {"passes": [{"uuid": "u1"}, {"id": 2}]}}, "data.passes[1] has no string 'uuid'"),
        ({"data": {"passes": [{"uuid": 7}]}}, "data.passes[0] has no string 'uuid'"),
        ({"data": {"passes": [], "pagination": []}}, "'data.pagination' is not an object"),
        (
            {"data": {"passes": [], "pagination": {"total_pages": "2"}}},
            "'data.pagination.total_pages' is not an integer",
        ),
    ],
)
async def test_a_wrong_shaped_body_is_an_upstream_error_never_an_empty_list(
    client: BytemarkClient, mocked: aioresponses, body: Any, what: str
) -> None:
    mocked.get(v1_url(), body=json.dumps(body))
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.fetch_passes(ACCESS_TOKEN)

    assert raised.value.endpoint == "GET /passes"
    assert raised.value.reason == f"malformed body: {what}"


@pytest.mark.parametrize("status", [403, 404, 302])
async def test_other_statuses_fail_at_once(client: BytemarkClient, mocked: aioresponses, status: int) -> None:
    mocked.get(v1_url(), status=status, headers={"Location": "https://elsewhere.test/"}, repeat=True)
    expect_empty_v4(mocked)

    with pytest.raises(UpstreamUnavailable, match=f"HTTP {status}$"):
        await client.fetch_passes(ACCESS_TOKEN)

    assert len(calls_to(mocked, "GET", "/api/passes")) == 1


async def test_cancelling_a_fetch_cancels_both_requests_and_leaves_no_task(
    client: BytemarkClient,
    mocked: aioresponses,
    observed: list[tuple[str, str]],
) -> None:
    both_started = asyncio.Event()
    started = 0

    async def hang(url: Any, **kwargs: Any) -> None:
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await asyncio.Event().wait()

    mocked.get(v1_url(), callback=hang)
    mocked.get(v4_url(), callback=hang)

    fetch = asyncio.create_task(client.fetch_passes(ACCESS_TOKEN))
    await asyncio.wait_for(both_started.wait(), timeout=1)
    fetch.cancel()

    with pytest.raises(asyncio.CancelledError):
        await fetch
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert sorted(observed) == [("GET /passes", "cancelled"), ("GET /v4.0/passes", "cancelled")]


async def test_the_observer_sees_every_attempt_and_cannot_break_a_call(
    session: aiohttp.ClientSession, mocked: aioresponses, sleeps: SleepRecorder
) -> None:
    seen: list[tuple[str, str, float]] = []

    def observer(endpoint: str, outcome: str, seconds: float) -> None:
        seen.append((endpoint, outcome, seconds))
        raise RuntimeError("metrics backend down")

    mocked.get(v1_url(), status=503)
    mocked.get(v1_url(), payload=page_body([]))
    expect_empty_v4(mocked)
    client = BytemarkClient(
        session, CUSTOMER, ACCOUNT, "client-id-1", CLIENT_SECRET, on_call=observer, sleep=sleeps
    )

    await client.fetch_passes(ACCESS_TOKEN)

    assert sorted((endpoint, outcome) for endpoint, outcome, _ in seen) == [
        ("GET /passes", "200"),
        ("GET /passes", "503"),
        ("GET /v4.0/passes", "200"),
    ]
    assert all(seconds >= 0 for _, _, seconds in seen)


# refresh


async def test_refresh_posts_the_refresh_token_grant_and_returns_the_new_tokens(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.post(
        TOKEN_URL,
        payload={
            "access_token": "new-access",
            "refresh_token": "new-refresh",
            "expires_in": 3600,
            "token_type": "Bearer",
        },
    )

    grant = await client.refresh(REFRESH_TOKEN)

    assert (grant.access_token, grant.refresh_token, grant.expires_in) == (
        "new-access",
        "new-refresh",
        3600,
    )
    (call,) = calls_to(mocked, "POST", "/oauth/token")
    assert call.kwargs["data"] == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": "client-id-1",
        "client_secret": CLIENT_SECRET,
    }


async def test_refresh_without_a_new_refresh_token_or_expiry_returns_none_for_them(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.post(TOKEN_URL, payload={"access_token": "new-access"})

    grant = await client.refresh(REFRESH_TOKEN)

    assert (grant.refresh_token, grant.expires_in) == (None, None)


@pytest.mark.parametrize("status", [400, 401])
async def test_refresh_with_invalid_grant_raises_refresh_token_invalid(
    client: BytemarkClient, mocked: aioresponses, status: int
) -> None:
    mocked.post(TOKEN_URL, status=status, payload={"error": "invalid_grant"})

    with pytest.raises(RefreshTokenInvalid, match="invalid_grant"):
        await client.refresh(REFRESH_TOKEN)

    assert len(calls_to(mocked, "POST", "/oauth/token")) == 1


async def test_refresh_with_any_other_400_body_still_means_the_token_is_dead(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.post(TOKEN_URL, status=400, body=b"Bad Request", content_type="text/plain")

    with pytest.raises(RefreshTokenInvalid, match="HTTP 400"):
        await client.refresh(REFRESH_TOKEN)


async def test_refresh_rejecting_our_client_credentials_is_an_upstream_error(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.post(TOKEN_URL, status=401, payload={"error": "invalid_client"})

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.refresh(REFRESH_TOKEN)

    assert raised.value.endpoint == "POST /oauth/token"
    assert raised.value.reason == "client credentials rejected (invalid_client)"


async def test_refresh_500s_are_retried_then_reported(client: BytemarkClient, mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, status=500, repeat=True)

    with pytest.raises(UpstreamUnavailable) as raised:
        await client.refresh(REFRESH_TOKEN)

    assert str(raised.value) == "Bytemark POST /oauth/token: HTTP 500 after 4 attempts"
    assert len(calls_to(mocked, "POST", "/oauth/token")) == 4


async def test_refresh_500_then_success_returns_the_grant(
    client: BytemarkClient, mocked: aioresponses
) -> None:
    mocked.post(TOKEN_URL, status=503)
    mocked.post(TOKEN_URL, payload={"access_token": "new-access", "expires_in": 60})

    grant = await client.refresh(REFRESH_TOKEN)

    assert grant.access_token == "new-access"


@pytest.mark.parametrize(
    "body",
    [{"token_type": "Bearer"}, {"access_token": 42}, {"access_token": ""}, ["new-access"]],
)
async def test_refresh_200_without_a_string_access_token_is_malformed(
    client: BytemarkClient, mocked: aioresponses, body: Any
) -> None:
    mocked.post(TOKEN_URL, body=json.dumps(body))

    with pytest.raises(UpstreamUnavailable, match="malformed body"):
        await client.refresh(REFRESH_TOKEN)


# rate limit


async def test_a_rate_limit_of_n_per_second_spaces_every_attempt(
    session: aiohttp.ClientSession, mocked: aioresponses
) -> None:
    sent_at: list[float] = []

    def stamp(url: Any, **kwargs: Any) -> None:
        sent_at.append(asyncio.get_running_loop().time())

    mocked.get(v1_url(), payload=page_body([]), callback=stamp, repeat=True)
    mocked.get(v4_url(), payload=page_body([]), callback=stamp, repeat=True)
    mocked.post(TOKEN_URL, payload={"access_token": "new"}, callback=stamp)
    client = BytemarkClient(
        session, CUSTOMER, ACCOUNT, "client-id-1", CLIENT_SECRET, rate_limiter=RateLimiter(20)
    )

    await client.fetch_passes(ACCESS_TOKEN)
    await client.refresh(REFRESH_TOKEN)
    await client.fetch_passes(ACCESS_TOKEN)

    gaps = [later - earlier for earlier, later in zip(sent_at, sent_at[1:], strict=False)]
    assert len(sent_at) == 5
    assert min(gaps) >= 0.045  # 20 rps = one attempt per 50 ms


@pytest.mark.parametrize("rate", [0, None])
async def test_a_rate_limit_of_zero_or_none_is_unlimited(rate: float | None) -> None:
    limiter = RateLimiter(rate)
    loop = asyncio.get_running_loop()
    started = loop.time()

    for _ in range(100):
        await limiter.acquire()

    assert loop.time() - started < 0.05


def test_a_negative_rate_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="requests_per_second"):
        RateLimiter(-1)


# Retry-After parsing


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("-4", 0.0),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),
        ("Tue, 31 Dec 2024 23:59:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("inf", None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(header: str | None, seconds: float | None) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == seconds


# secrets


def everything_said_about(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


async def test_no_secret_appears_in_any_exception_repr_or_log_line(
    client: BytemarkClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = {"error": "invalid_grant", "error_description": f"{REFRESH_TOKEN} {CLIENT_SECRET}"}
    mocked.get(v1_url(), status=401)
    mocked.get(v4_url(), payload=page_body([]))
    mocked.get(v1_url(), status=500, repeat=True)
    mocked.get(v4_url(), timeout=True, repeat=True)
    mocked.post(TOKEN_URL, status=400, payload=echo)
    mocked.post(TOKEN_URL, status=500, body=json.dumps(echo))
    mocked.post(TOKEN_URL, exception=aiohttp.ServerDisconnectedError(), repeat=3)
    mocked.post(TOKEN_URL, status=200, payload={"refresh_token": REFRESH_TOKEN})

    errors: list[BaseException] = []
    for call in (
        lambda: client.fetch_passes(ACCESS_TOKEN),
        lambda: client.fetch_passes(ACCESS_TOKEN),
        lambda: client.refresh(REFRESH_TOKEN),
        lambda: client.refresh(REFRESH_TOKEN),
        lambda: client.refresh(REFRESH_TOKEN),
    ):
        with pytest.raises(Exception) as raised:  # noqa: PT011 - any error is inspected below
            await call()
        errors.append(raised.value)

    said = caplog.text + repr(client) + "".join(everything_said_about(e) for e in errors)
    assert [type(e).__name__ for e in errors] == [
        "AccessTokenRejected",
        "UpstreamUnavailable",
        "RefreshTokenInvalid",
        "UpstreamUnavailable",
        "UpstreamUnavailable",
    ]
    assert caplog.records, "the failures should have been logged"
    for secret in SECRETS:
        assert secret not in said



async def test_a_malformed_200_body_is_observed_as_an_error_not_a_success(
    client: BytemarkClient, mocked: aioresponses, observed: list[tuple[str, str]]
) -> None:
    mocked.get(v1_url(), status=200, body=b"not json")
    mocked.get(v4_url(), payload=page_body([]))
    with pytest.raises(UpstreamUnavailable, match="malformed body"):
        await client.fetch_passes(ACCESS_TOKEN)
    assert ("GET /passes", "malformed") in observed
    assert ("GET /passes", "200") not in observed
