"""The Bytemark session against a real local HTTP server: riders' cookies never travel, and
sequential calls share one kept-alive connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from adapters.driven.bytemark_api.session import bytemark_session


@pytest.fixture
async def server() -> AsyncIterator[tuple[TestServer, list[tuple[str | None, int]]]]:
    seen: list[tuple[str | None, int]] = []  # (Cookie header, client port) per request

    async def passes(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append((request.headers.get("Cookie"), peer[1] if peer else -1))
        response = web.json_response({"data": {"passes": []}})
        response.set_cookie("session", f"rider-{request.query.get('rider')}")
        return response

    app = web.Application()
    app.router.add_get("/passes", passes)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server, seen
    finally:
        await test_server.close()


async def test_a_cookie_set_for_one_rider_is_not_sent_with_the_next_request(
    server: tuple[TestServer, list[tuple[str | None, int]]],
) -> None:
    test_server, seen = server
    # a host name: aiohttp's default jar ignores cookies from IP addresses
    url = URL.build(scheme="http", host="localhost", port=test_server.port, path="/passes")
    async with bytemark_session(max_connections=4) as session:
        for rider in (1, 2, 3):
            async with session.get(url, params={"rider": rider}) as response:
                await response.read()

    assert [cookie for cookie, _ in seen] == [None, None, None]


async def test_sequential_calls_reuse_one_connection(
    server: tuple[TestServer, list[tuple[str | None, int]]],
) -> None:
    test_server, seen = server
    async with bytemark_session(max_connections=4) as session:
        for rider in (1, 2, 3):
            async with session.get(test_server.make_url("/passes"), params={"rider": rider}) as response:
                await response.read()

    assert len({port for _, port in seen}) == 1
