"""The Bytemark sandbox over real HTTP, as the service's client and the E2E tests see it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from devtools.sandbox import (
    FREE_TICKET_PRODUCT_UUIDS,
    RunningSandbox,
    SandboxConfig,
    SandboxState,
    start_sandbox,
)

CLIENT = {"client_id": "sandbox-client", "client_secret": "sandbox-secret"}


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    state = SandboxState.seeded(users=3, passes_per_user=5, expired_per_user=3, seed=7)
    running = await start_sandbox("127.0.0.1", 0, state, SandboxConfig(page_size=2))
    yield running
    await running.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


def bearer(sandbox: RunningSandbox, user_id: int = 1) -> dict[str, str]:
    """Headers with the user's current access token."""
    return auth(sandbox.state.users[user_id].access_token)


async def get_json(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.get(url, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def status_of(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> int:
    async with http.get(url, headers=headers) as response:
        return response.status


async def all_pages(http: aiohttp.ClientSession, sandbox: RunningSandbox, path: str) -> list[dict[str, Any]]:
    passes: list[dict[str, Any]] = []
    page, total_pages = 1, 1
    while page <= total_pages:
        sep = "&" if "?" in path else "?"
        status, body = await get_json(
            http, f"{sandbox.url}{path}{sep}page={page}&limit=9999", bearer(sandbox)
        )
        assert status == 200
        passes += body["data"]["passes"]
        total_pages = body["data"]["pagination"]["total_pages"]
        page += 1
    return passes


async def refresh(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, token: str, **form: str
) -> tuple[int, Any]:
    data = {"grant_type": "refresh_token", "refresh_token": token, **CLIENT, **form}
    async with http.post(f"{sandbox.url}/oauth/token", data=data) as response:
        return response.status, await response.json(content_type=None)


async def control(
    http: aiohttp.ClientSession, sandbox: RunningSandbox, method: str, path: str, body: Any = None
) -> Any:
    async with http.request(method, f"{sandbox.url}/_sandbox{path}", json=body) as response:
        assert response.status < 300, await response.text()
        return await response.json()


async def test_v1_lists_current_passes_and_v4_lists_expired_ones(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    v1 = await all_pages(http, sandbox, "/passes")
    v4 = await all_pages(http, sandbox, "/v4.0/passes?status=EXPIRED")
    assert len(v1) == 5 and {p["status"] for p in v1} <= {"USABLE", "ACTIVE"}
    assert len(v4) == 3 and {p["status"] for p in v4} == {"EXPIRED"}
    sample = v1[0]
    assert sample["time_created"].endswith("Z")
    assert set(sample["product"]) == {"name", "fare", "currency", "fare_medium"}
    assert {"uuid", "product_uuid", "order_uuid", "activation_count", "max_activations", "rider_type"} <= set(
        sample
    )


async def test_page_size_knob_caps_the_limit_and_totals_describe_all_pages(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await get_json(http, f"{sandbox.url}/passes?page=3&limit=9999", bearer(sandbox))
    assert status == 200
    assert body["errors"] == []
    assert body["data"]["pagination"] == {"page": 3, "limit": 2, "total_pages": 3, "total": 5}
    assert len(body["data"]["passes"]) == 1
    status, body = await get_json(http, f"{sandbox.url}/passes?page=1&limit=1", bearer(sandbox))
    assert body["data"]["pagination"]["total_pages"] == 5


def test_same_seed_gives_same_passes_and_some_users_own_free_tickets() -> None:
    first = SandboxState.seeded(users=50, passes_per_user=4, expired_per_user=1, seed=3)
    second = SandboxState.seeded(users=50, passes_per_user=4, expired_per_user=1, seed=3)
    assert first.users[17].passes == second.users[17].passes
    products = {p["product_uuid"] for user in first.users.values() for p in user.passes.values()}
    assert products & set(FREE_TICKET_PRODUCT_UUIDS)


async def test_a_bearer_token_is_required(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    for headers in (None, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        status, body = await get_json(http, f"{sandbox.url}/passes", headers)
        assert status == 401
        assert body["errors"]


async def test_refresh_rotates_both_tokens(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    user = sandbox.state.users[1]
    old_access, old_refresh = user.access_token, user.refresh_token
    status, grant = await refresh(http, sandbox, old_refresh)
    assert status == 200
    assert grant["token_type"] == "Bearer" and grant["expires_in"] > 0
    assert grant["access_token"].startswith("sandbox-access-1-") and grant["access_token"] != old_access
    assert grant["refresh_token"] != old_refresh
    assert await status_of(http, f"{sandbox.url}/passes", auth(old_access)) == 401
    assert await status_of(http, f"{sandbox.url}/passes", auth(grant["access_token"])) == 200
    status, body = await refresh(http, sandbox, old_refresh)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_wrong_client_credentials_are_invalid_client(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    status, body = await refresh(http, sandbox, sandbox.state.users[1].refresh_token, client_secret="guess")
    assert (status, body["error"]) == (401, "invalid_client")


async def test_revoked_grant_refreshes_to_invalid_grant(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(http, sandbox, "POST", "/users/2/revoke")
    status, body = await refresh(http, sandbox, sandbox.state.users[2].refresh_token)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await status_of(http, f"{sandbox.url}/passes", bearer(sandbox, 2)) == 401


async def test_a_new_login_after_a_revoke_issues_a_working_grant(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(http, sandbox, "POST", "/users/2/revoke")
    old_refresh = sandbox.state.users[2].refresh_token
    creds = await control(http, sandbox, "POST", "/users/2/login")
    assert creds["refresh_token"] != old_refresh
    assert await status_of(http, f"{sandbox.url}/passes", auth(creds["access_token"])) == 200
    status, _ = await refresh(http, sandbox, old_refresh)
    assert status == 400


async def test_expired_access_token_is_401_until_refreshed(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(http, sandbox, "POST", "/users/1/expire-token")
    assert await status_of(http, f"{sandbox.url}/passes", bearer(sandbox)) == 401
    status, grant = await refresh(http, sandbox, sandbox.state.users[1].refresh_token)
    assert status == 200
    assert await status_of(http, f"{sandbox.url}/passes", auth(grant["access_token"])) == 200


async def test_token_ttl_expires_access_tokens_by_the_clock(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    now = [1_000_000.0]
    sandbox.state.clock = lambda: now[0]
    await control(http, sandbox, "PATCH", "/config", {"token_ttl_seconds": 60})
    status, grant = await refresh(http, sandbox, sandbox.state.users[1].refresh_token)
    assert grant["expires_in"] == 60
    headers = auth(grant["access_token"])
    assert await status_of(http, f"{sandbox.url}/passes", headers) == 200
    now[0] += 61
    assert await status_of(http, f"{sandbox.url}/passes", headers) == 401
    (user_id, access, refresh_token, expires_at) = sandbox.state.credentials(60)[0]
    assert (user_id, access) == (1, grant["access_token"]) and expires_at is not None


@pytest.mark.parametrize(
    ("kind", "status"), [("500", 500), ("429", 429), ("401", 401), ("invalid_grant", 400)]
)
async def test_status_faults_answer_with_their_status_once(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, kind: str, status: int
) -> None:
    await control(http, sandbox, "POST", "/faults", [{"endpoint": "v1", "kind": kind, "retry_after": 2}])
    async with http.get(f"{sandbox.url}/passes", headers=bearer(sandbox)) as response:
        assert response.status == status
        if kind == "429":
            assert response.headers["Retry-After"] == "2"
    assert await status_of(http, f"{sandbox.url}/passes", bearer(sandbox)) == 200


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [("500", 500, "server_error"), ("401", 401, "invalid_grant"), ("invalid_grant", 400, "invalid_grant")],
)
async def test_token_endpoint_faults(
    sandbox: RunningSandbox, http: aiohttp.ClientSession, kind: str, status: int, error: str
) -> None:
    await control(http, sandbox, "POST", "/faults", {"endpoint": "token", "kind": kind, "user_id": 1})
    refresh_token = sandbox.state.users[1].refresh_token
    answered, body = await refresh(http, sandbox, refresh_token)
    assert (answered, body["error"]) == (status, error)
    assert (await refresh(http, sandbox, refresh_token))[0] == 200  # used up, tokens not rotated


async def test_malformed_json_and_wrong_shape_are_200s_a_client_cannot_use(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(
        http,
        sandbox,
        "POST",
        "/faults",
        [{"endpoint": "v4", "kind": "malformed_json"}, {"endpoint": "v4", "kind": "wrong_shape"}],
    )
    url = f"{sandbox.url}/v4.0/passes?status=EXPIRED"
    async with http.get(url, headers=bearer(sandbox)) as response:
        assert response.status == 200
        with pytest.raises(ValueError):
            await response.json()
    status, body = await get_json(http, url, bearer(sandbox))
    assert status == 200 and "passes" not in body.get("data", {})


async def test_reset_breaks_the_connection_mid_body(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(http, sandbox, "POST", "/faults", {"endpoint": "v1", "kind": "reset"})
    with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
        async with http.get(f"{sandbox.url}/passes", headers=bearer(sandbox)) as response:
            await response.read()


async def test_timeout_hangs_past_the_client_timeout(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(http, sandbox, "POST", "/faults", {"endpoint": "token", "kind": "timeout"})
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(refresh(http, sandbox, sandbox.state.users[1].refresh_token), 0.3)
    assert sandbox.stats.outcomes["token"]["timeout"] == 1


async def test_token_faults_and_filters_by_page_user_and_times(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await control(
        http,
        sandbox,
        "POST",
        "/faults",
        [
            {"endpoint": "v1", "kind": "500", "page": 2, "user_id": 2, "times": -1},
            {"endpoint": "token", "kind": "wrong_shape"},
        ],
    )
    assert await status_of(http, f"{sandbox.url}/passes?page=1", bearer(sandbox, 2)) == 200
    assert await status_of(http, f"{sandbox.url}/passes?page=2", bearer(sandbox, 1)) == 200
    for _ in range(2):
        assert await status_of(http, f"{sandbox.url}/passes?page=2", bearer(sandbox, 2)) == 500
    status, body = await refresh(http, sandbox, sandbox.state.users[1].refresh_token)
    assert status == 200 and "access_token" not in body
    assert len((await control(http, sandbox, "GET", "/faults"))["rules"]) == 1
    assert (await control(http, sandbox, "DELETE", "/faults")) == {"cleared": 1}
    assert await status_of(http, f"{sandbox.url}/passes?page=2", bearer(sandbox, 2)) == 200


async def test_invalid_fault_rules_are_rejected(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{sandbox.url}/_sandbox/faults", json={"endpoint": "v9", "kind": "500"}
    ) as response:
        assert response.status == 400
        assert "endpoint" in (await response.json())["error"]


async def test_error_rate_and_rate_429_knobs(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    await control(http, sandbox, "PATCH", "/config", {"error_rate": 1.0})
    assert await status_of(http, f"{sandbox.url}/passes", bearer(sandbox)) == 503
    await control(http, sandbox, "PATCH", "/config", {"error_rate": 0, "rate_429": 1.0})
    async with http.get(f"{sandbox.url}/passes", headers=bearer(sandbox)) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "1")
    async with http.patch(f"{sandbox.url}/_sandbox/config", json={"error_rate": 0.5}) as response:
        assert response.status == 400  # 0.5 + 1.0 > 1


async def test_stats_count_requests_per_endpoint_and_user(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    await get_json(http, f"{sandbox.url}/passes", bearer(sandbox, 1))
    await get_json(http, f"{sandbox.url}/passes", bearer(sandbox, 2))
    await get_json(http, f"{sandbox.url}/v4.0/passes?status=EXPIRED", bearer(sandbox, 2))
    await refresh(http, sandbox, sandbox.state.users[2].refresh_token)
    stats = await control(http, sandbox, "GET", "/stats")
    assert stats["total"] == 4
    assert stats["endpoints"] == {"v1": 2, "v4": 1, "token": 1}
    assert stats["users"]["2"] == {"v1": 1, "v4": 1, "token": 1}
    assert stats["outcomes"]["v1"] == {"200": 2}
    await control(http, sandbox, "POST", "/stats/reset")
    assert (await control(http, sandbox, "GET", "/stats"))["total"] == 0


async def test_added_and_patched_passes_change_the_lists(
    sandbox: RunningSandbox, http: aiohttp.ClientSession
) -> None:
    before = await all_pages(http, sandbox, "/passes")
    free = await control(http, sandbox, "POST", "/users/1/passes", {"free": True})
    assert free["product_uuid"] in FREE_TICKET_PRODUCT_UUIDS
    custom = await control(
        http, sandbox, "POST", "/users/1/passes", {"uuid": "u-1", "status": "USABLE", "x": 1}
    )
    after = await all_pages(http, sandbox, "/passes")
    assert [p["uuid"] for p in after] == [p["uuid"] for p in before] + [free["uuid"], "u-1"]
    assert after[-1] == custom
    await control(http, sandbox, "PATCH", "/users/1/passes/u-1", {"status": "EXPIRED"})
    assert "u-1" not in {p["uuid"] for p in await all_pages(http, sandbox, "/passes")}
    assert "u-1" in {p["uuid"] for p in await all_pages(http, sandbox, "/v4.0/passes?status=EXPIRED")}


async def test_created_user_gets_working_tokens(sandbox: RunningSandbox, http: aiohttp.ClientSession) -> None:
    created = await control(http, sandbox, "POST", "/users", {"passes": 2})
    assert created["user_id"] == 4
    headers = auth(created["access_token"])
    status, body = await get_json(http, f"{sandbox.url}/passes", headers)
    assert status == 200 and body["data"]["pagination"]["total"] == 2
    status, _ = await refresh(http, sandbox, created["refresh_token"])
    assert status == 200
