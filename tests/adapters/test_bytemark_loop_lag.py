"""The per-attempt timeout counts Bytemark's time, not time our own event loop was late.

Bytemark here is a real HTTP server on its own thread, so it answers on time while the test
blocks the client's loop, as CPU starvation, a stopped process or a long GC pause would."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import pytest

from adapters.driven.bytemark_api import BytemarkClient, RetryPolicy
from application.errors import UpstreamUnavailable

HANG = 30.0  # a Bytemark that does not answer (released when the test ends)
PAGE = json.dumps({"data": {"passes": [{"uuid": "p-1", "status": "USABLE"}]}}).encode()


class _Bytemark(BaseHTTPRequestHandler):
    answer_after = 0.1
    stopping = threading.Event()

    def do_GET(self) -> None:
        self.stopping.wait(self.answer_after)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client gave up on a hanging answer: expected here


@pytest.fixture
def bytemark() -> Iterator[tuple[str, type[_Bytemark]]]:
    handler = type("Bytemark", (_Bytemark,), {"stopping": threading.Event()})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    handler.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as shared:
        yield shared


def one_attempt_client(session: aiohttp.ClientSession, url: str, timeout_seconds: float) -> BytemarkClient:
    return BytemarkClient(
        session, url, url, "id", "secret", timeout_seconds=timeout_seconds, retry_policy=RetryPolicy(1)
    )


async def test_an_answer_that_waited_for_our_blocked_loop_is_not_a_timeout(
    bytemark: tuple[str, type[_Bytemark]], session: aiohttp.ClientSession
) -> None:
    url, _ = bytemark
    client = one_attempt_client(session, url, timeout_seconds=0.3)
    # Bytemark answers after 0.1 s; our loop is blocked from 0.02 s to 0.62 s, past the 0.3 s timeout.
    asyncio.get_running_loop().call_later(0.02, time.sleep, 0.6)

    fetched = await client.fetch_passes("token")

    assert [p["uuid"] for p in fetched.v1] == ["p-1"]


async def test_a_bytemark_that_does_not_answer_still_times_out_on_time(
    bytemark: tuple[str, type[_Bytemark]], session: aiohttp.ClientSession
) -> None:
    url, handler = bytemark
    handler.answer_after = HANG
    client = one_attempt_client(session, url, timeout_seconds=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()

    with pytest.raises(UpstreamUnavailable, match="timeout after 1 attempts"):
        await client.fetch_passes("token")

    assert loop.time() - started < HANG / 3  # 0.3 s plus whatever this busy machine adds


async def test_loop_lag_before_a_hang_is_not_counted_but_the_hang_is(
    bytemark: tuple[str, type[_Bytemark]], session: aiohttp.ClientSession
) -> None:
    url, handler = bytemark
    handler.answer_after = HANG
    client = one_attempt_client(session, url, timeout_seconds=0.3)
    loop = asyncio.get_running_loop()
    loop.call_later(0.02, time.sleep, 0.5)
    started = loop.time()

    with pytest.raises(UpstreamUnavailable, match="timeout after 1 attempts"):
        await client.fetch_passes("token")

    # 0.5 s of our own lateness plus Bytemark's 0.3 s, and not the whole hang.
    assert 0.75 < loop.time() - started < HANG / 3
