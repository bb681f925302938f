"""Slack notices through the outbox, in a real `serve`, against a Slack stand-in that throttles:
it answers 429 with a Retry-After to the first posts, then 200. Every notice still arrives, and
exactly once; and a bulk run that finds free tickets for many riders posts one digest."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server, wait_until

UNARY_RIDERS = 4
BULK_RIDERS = 26  # past the digest's 20 named riders
THROTTLED_POSTS = 3
CALL_TIMEOUT = 30.0


class ThrottlingSlack:
    """Slack's chat.postMessage: 429 (Retry-After: 1) to the first `throttled` posts, then 200;
    records the text of every post it accepted."""

    def __init__(self) -> None:
        self.accepted: list[str] = []
        self.refused = 0
        self.throttled = 0
        lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    refuse = recorder.throttled > 0
                    if refuse:
                        recorder.throttled -= 1
                        recorder.refused += 1
                    else:
                        recorder.accepted.append(str(json.loads(body or b"{}").get("text", "")))
                answer: dict[str, Any] = {"ok": not refuse}
                if refuse:
                    answer["error"] = "ratelimited"
                reply = json.dumps(answer).encode()
                self.send_response(429 if refuse else 200)
                if refuse:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def slack() -> Iterator[ThrottlingSlack]:
    stand_in = ThrottlingSlack()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path, slack: ThrottlingSlack) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        SLACK_BOT_TOKEN="xoxb-e2e-outbox",
        SLACK_CHANNEL_ID="C0OUTBOX",
        SLACK_API_URL=slack.url,
    )
    yield process
    process.stop()


def riders_with_caches(server: ServerProcess, sandbox: SandboxProcess, stub: Any, count: int) -> list[int]:
    riders = [server.seed_user(sandbox, passes=1, expired=0) for _ in range(count)]
    for event in stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=riders), timeout=120):
        assert not event.HasField("error"), event.error.message
    return riders


def give_free_tickets(sandbox: SandboxProcess, riders: list[int]) -> None:
    for rider in riders:
        sandbox.call("POST", f"/_sandbox/users/{rider}/passes", {"free": True})


def notices_by_rider(texts: list[str]) -> Counter[int]:
    return Counter(
        int(match.group(1))
        for text in texts
        if (match := re.search(r"Free ticket\(s\) found for user (\d+):", text))
    )


def test_while_slack_throttles_every_unary_notice_still_arrives_exactly_once(
    server: ServerProcess, sandbox: SandboxProcess, slack: ThrottlingSlack
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        riders = riders_with_caches(server, sandbox, stub, UNARY_RIDERS)
        give_free_tickets(sandbox, riders)
        slack.throttled = THROTTLED_POSTS
        started = time.monotonic()
        updates = [
            stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=rider), timeout=CALL_TIMEOUT)
            for rider in riders
        ]
        answered = time.monotonic() - started
    wait_until(lambda: set(notices_by_rider(slack.accepted)) >= set(riders), 60, "every notice", server.proc)
    wait_until(
        lambda: server.query("SELECT COUNT(*) FROM bytemark_outbox")[0][0] == 0, 30, "outbox", server.proc
    )

    assert [u.result.counts.new_free for u in updates] == [1] * UNARY_RIDERS
    assert slack.refused == THROTTLED_POSTS  # Slack did throttle
    assert notices_by_rider(slack.accepted) == Counter({rider: 1 for rider in riders})  # exactly once each
    assert answered < UNARY_RIDERS * 1.0  # no call waited out a Retry-After


def test_a_bulk_run_finding_many_free_tickets_posts_one_digest(
    server: ServerProcess, sandbox: SandboxProcess, slack: ThrottlingSlack
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        riders = riders_with_caches(server, sandbox, stub, BULK_RIDERS)
        give_free_tickets(sandbox, riders)
        built_at = time.time()
        wait_until(lambda: time.time() > built_at + 1.1, 5, "the caches to age past 1 s", server.proc)
        before = len(slack.accepted)
        slack.throttled = 1
        request = pb.RefreshStaleCachesRequest(user_ids=riders, max_age_seconds=1)
        events = list(stub.RefreshStaleCaches(request, timeout=120))
    wait_until(lambda: len(slack.accepted) > before, 60, "the digest", server.proc)
    wait_until(
        lambda: server.query("SELECT COUNT(*) FROM bytemark_outbox")[0][0] == 0, 30, "outbox", server.proc
    )

    assert sum(e.result.counts.new_free for e in events if e.HasField("result")) == BULK_RIDERS
    (digest,) = slack.accepted[before:]
    assert f"Free ticket(s) found for {BULK_RIDERS} rider(s):" in digest
    assert len(re.findall(r"^• user \d+:", digest, flags=re.MULTILINE)) == 20
    assert f"… and {BULK_RIDERS - 20} more rider(s)" in digest
    assert notices_by_rider(slack.accepted[before:]) == Counter()  # no message per rider
