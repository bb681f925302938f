"""SlackNotifier over real HTTP against a local stand-in for Slack's Web API."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from adapters.driven.slack import NullNotifier, SlackNotifier
from adapters.driven.slack.client import slack_client
from application.errors import StoreUnavailable
from application.notices import BulkJob, BulkSummary, FreeTicket, RiderFreeTickets

BOT_TOKEN = "xoxb-test"
CHANNEL = "C0123TEST"


@dataclass
class ReceivedPost:
    authorization: str | None
    fields: dict[str, Any]


@dataclass
class FakeSlack:
    """Answers `POST /api/chat.postMessage` with `status` and `answer`, recording each post."""

    port: int = 0
    status: int = 200
    throttled: int = 0  # answer this many posts 429 with Retry-After: 1 first
    answer: dict[str, Any] = field(default_factory=lambda: {"ok": True, "ts": "1.2"})
    posts: list[ReceivedPost] = field(default_factory=list)

    async def post_message(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields = await request.json()
        else:
            fields = dict(await request.post())
        self.posts.append(ReceivedPost(request.headers.get("Authorization"), fields))
        if self.throttled:
            self.throttled -= 1
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "1"}
            )
        if self.status != 200:
            return web.Response(status=self.status, text="upstream exploded")
        return web.json_response(self.answer)

    @property
    def texts(self) -> list[str]:
        return [str(post.fields["text"]) for post in self.posts]


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    app = web.Application()
    app.router.add_post("/api/chat.postMessage", fake.post_message)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    fake.port = runner.addresses[0][1]
    try:
        yield fake
    finally:
        await runner.cleanup()


def notifier_for(port: int, *, retries: bool = True) -> SlackNotifier:
    """A notifier on the client the service uses (with its retry handlers), or one with none."""
    base_url = f"http://127.0.0.1:{port}/api/"
    client = (
        slack_client(BOT_TOKEN, base_url) if retries else AsyncWebClient(token=BOT_TOKEN, base_url=base_url)
    )
    if not retries:  # slack_sdk's default handler retries a connection error after ~1 s
        client.retry_handlers = []
    return SlackNotifier(client, CHANNEL, project="ticket-cache", stage="staging")


def found(user_id: int, *tickets: tuple[str, str | None]) -> RiderFreeTickets:
    return RiderFreeTickets(user_id, tuple(FreeTicket(uuid, product) for uuid, product in tickets))


def summary(**overrides: Any) -> BulkSummary:
    values: dict[str, Any] = {
        "job": BulkJob.REFRESH_STALE,
        "total": 1000,
        "done": 950,
        "failed": 50,
        "failures_by_reason": {"UpstreamUnavailable": 40, "NO_VALID_TOKEN": 10},
        "sample_failed_user_ids": (11, 22, 33),
    }
    return BulkSummary(**(values | overrides))


async def test_free_tickets_found_posts_one_message_to_the_channel_with_the_bot_token(
    fake_slack: FakeSlack,
) -> None:
    notifier = notifier_for(fake_slack.port)

    await notifier.free_tickets_found(found(42, ("pass-1", "Free Day Pass"), ("pass-2", None)))

    (post,) = fake_slack.posts
    assert post.authorization == f"Bearer {BOT_TOKEN}"
    assert post.fields["channel"] == CHANNEL
    text = post.fields["text"]
    assert "[ticket-cache/staging]" in text
    assert "user 42" in text
    assert "`pass-1` (Free Day Pass)" in text
    assert "`pass-2`" in text


async def test_product_names_are_escaped_for_slack_markup(fake_slack: FakeSlack) -> None:
    notifier = notifier_for(fake_slack.port)

    await notifier.free_tickets_found(found(7, ("p", "Kids <12> & Seniors")))

    assert "Kids &lt;12&gt; &amp; Seniors" in fake_slack.texts[0]


async def test_bulk_run_finished_posts_one_summary_with_counts_reasons_and_sample_users(
    fake_slack: FakeSlack,
) -> None:
    notifier = notifier_for(fake_slack.port)

    await notifier.bulk_run_finished(summary())

    (text,) = fake_slack.texts
    assert "[ticket-cache/staging] Bulk run `refresh_stale` finished" in text
    assert "950/1000 done, 50 failed" in text
    assert "Failures by reason: UpstreamUnavailable: 40, NO_VALID_TOKEN: 10" in text
    assert "Sample failed users: 11, 22, 33" in text


async def test_a_cancelled_run_says_so_and_long_samples_are_cut(
    fake_slack: FakeSlack,
) -> None:
    notifier = notifier_for(fake_slack.port)

    await notifier.bulk_run_finished(summary(cancelled=True, sample_failed_user_ids=tuple(range(1, 15))))

    (text,) = fake_slack.texts
    assert "was cancelled" in text
    assert "Sample failed users: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 (+4 more)" in text


async def test_a_run_stopped_by_an_outage_says_why_and_what_it_skipped(fake_slack: FakeSlack) -> None:
    notifier = notifier_for(fake_slack.port)

    await notifier.bulk_run_finished(
        summary(stopped="stopped early: 17 of the last 20 riders failed", skipped_by_reason={"backoff": 3})
    )

    (text,) = fake_slack.texts
    assert "General outage: stopped early: 17 of the last 20 riders failed" in text
    assert "Skipped without calling Bytemark: backoff: 3" in text


async def test_a_clean_run_still_posts_its_summary_without_failure_lines(
    fake_slack: FakeSlack,
) -> None:
    notifier = notifier_for(fake_slack.port)

    await notifier.bulk_run_finished(
        summary(done=1000, failed=0, failures_by_reason={}, sample_failed_user_ids=())
    )

    (text,) = fake_slack.texts
    assert "1000/1000 done, 0 failed" in text
    assert "Failures" not in text
    assert "Sample" not in text


async def test_a_500_from_slack_is_retried_once_then_raised_for_the_outbox_without_the_token(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_slack.status = 500
    notifier = notifier_for(fake_slack.port)

    with pytest.raises(StoreUnavailable) as raised:
        await notifier.free_tickets_found(found(1, ("p", None)))

    assert len(fake_slack.posts) == 2  # the server-error handler's one retry
    assert "HTTP 500" in raised.value.reason
    assert "not posted" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_an_ok_false_answer_is_logged_with_its_error_code_and_raised(
    fake_slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_slack.answer = {"ok": False, "error": "channel_not_found"}
    notifier = notifier_for(fake_slack.port)

    with pytest.raises(StoreUnavailable):
        await notifier.free_tickets_found(found(1, ("p", None)))

    assert "channel_not_found" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_an_unreachable_slack_is_logged_and_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    notifier = notifier_for(closed_port, retries=False)

    with pytest.raises(StoreUnavailable):
        await notifier.bulk_run_finished(summary())

    assert "not posted" in caplog.text
    assert BOT_TOKEN not in caplog.text


async def test_the_notifier_repr_does_not_show_the_token() -> None:
    assert BOT_TOKEN not in repr(notifier_for(1))


async def test_the_null_notifier_sends_nothing(fake_slack: FakeSlack) -> None:
    notifier = NullNotifier()

    await notifier.free_tickets_found(found(1, ("p", None)))
    await notifier.bulk_run_finished(summary())

    assert fake_slack.posts == []


async def test_a_429_is_retried_after_its_retry_after_and_posted_once(fake_slack: FakeSlack) -> None:
    fake_slack.throttled = 2
    notifier = notifier_for(fake_slack.port)

    await notifier.free_tickets_found(found(5, ("p", None)))

    assert len(fake_slack.posts) == 3 and fake_slack.throttled == 0  # two 429s, then the post


async def test_a_bulk_run_digest_names_the_first_riders_and_counts_the_rest(fake_slack: FakeSlack) -> None:
    riders = tuple(found(user_id, ("p", "Free Day Pass")) for user_id in range(1, 4))
    notifier = notifier_for(fake_slack.port)

    await notifier.bulk_run_finished(summary(free_tickets=riders, more_free_ticket_riders=37))

    (text,) = fake_slack.texts
    assert "Free ticket(s) found for 40 rider(s):" in text
    assert "• user 1: Free Day Pass" in text and "• user 3: Free Day Pass" in text
    assert "… and 37 more rider(s)" in text
