"""Slack notices through the outbox, in a real `serve`, against a Slack stand-in that throttles:
it answers 429 with a Retry-After to the first posts, then 200. Every notice still arrives, and
exactly once; and a bulk run that finds free tickets for many riders posts one digest."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, start_server, wait_until
from tests.e2e.slack_stand_in import SlackStandIn

UNARY_RIDERS = 4
BULK_RIDERS = 26  # past the digest's 20 named riders
THROTTLED_POSTS = 3
CALL_TIMEOUT = 30.0


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path, slack: SlackStandIn) -> Iterator[ServerProcess]:
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


def wait_for_an_empty_outbox(server: ServerProcess) -> None:
    wait_until(
        lambda: server.query("SELECT COUNT(*) FROM bytemark_outbox")[0][0] == 0, 30, "outbox", server.proc
    )


def notices_by_rider(texts: list[str]) -> Counter[int]:
    return Counter(
        int(match.group(1))
        for text in texts
        if (match := re.search(r"Free ticket\(s\) found for user (\d+):", text))
    )


def test_while_slack_throttles_every_unary_notice_still_arrives_exactly_once(
    server: ServerProcess, sandbox: SandboxProcess, slack: SlackStandIn
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        riders = riders_with_caches(server, sandbox, stub, UNARY_RIDERS)
        give_free_tickets(sandbox, riders)
        slack.throttled = THROTTLED_POSTS
        updates = [
            stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=rider), timeout=CALL_TIMEOUT)
            for rider in riders
        ]
    wait_until(lambda: set(notices_by_rider(slack.texts)) >= set(riders), 60, "every notice", server.proc)
    wait_for_an_empty_outbox(server)

    assert [u.result.counts.new_free for u in updates] == [1] * UNARY_RIDERS
    assert slack.refused == THROTTLED_POSTS  # Slack did throttle
    assert notices_by_rider(slack.texts) == Counter({rider: 1 for rider in riders})  # exactly once each


def test_a_bulk_run_finding_many_free_tickets_posts_one_digest(
    server: ServerProcess, sandbox: SandboxProcess, slack: SlackStandIn
) -> None:
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        riders = riders_with_caches(server, sandbox, stub, BULK_RIDERS)
        give_free_tickets(sandbox, riders)
        built_at = int(time.time())  # caches are stamped in whole seconds; stale is strictly older
        wait_until(lambda: int(time.time()) >= built_at + 3, 10, "the caches to age past 1 s", server.proc)
        before = len(slack.texts)
        slack.throttled = 1
        request = pb.RefreshStaleCachesRequest(user_ids=riders, max_age_seconds=1)
        events = list(stub.RefreshStaleCaches(request, timeout=120))
    assert sum(e.result.counts.new_free for e in events if e.HasField("result")) == BULK_RIDERS
    wait_until(lambda: len(slack.texts) > before, 60, "the digest", server.proc)
    wait_for_an_empty_outbox(server)

    (digest,) = slack.texts[before:]
    assert f"Free ticket(s) found for {BULK_RIDERS} rider(s):" in digest
    assert len(re.findall(r"^• user \d+:", digest, flags=re.MULTILINE)) == 20
    assert f"… and {BULK_RIDERS - 20} more rider(s)" in digest
    assert notices_by_rider(slack.texts[before:]) == Counter()  # no message per rider
