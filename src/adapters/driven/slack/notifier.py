"""Slack notices: free tickets found, and one summary per bulk run (with a digest of the free
tickets it found). The outbox relay calls these; a notice Slack did not take raises
StoreUnavailable so the relay keeps it and tries again (the client itself first retries a 429
after its Retry-After, see the container's Slack client)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from application.errors import StoreUnavailable
from application.notices import BulkSummary, FreeTicket, RiderFreeTickets

logger = logging.getLogger(__name__)

#: How many failed user ids a summary shows; the rest are in the logs and metrics.
MAX_SAMPLE_USER_IDS = 10


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ticket_line(ticket: FreeTicket) -> str:
    suffix = f" ({escape(ticket.product)})" if ticket.product else ""
    return f"• `{escape(ticket.pass_uuid)}`{suffix}"


def free_tickets_text(project: str, stage: str, user_id: int, tickets: Iterable[FreeTicket]) -> str:
    lines = [f"[{escape(project)}/{escape(stage)}] Free ticket(s) found for user {user_id}:"]
    lines += [_ticket_line(ticket) for ticket in tickets]
    return "\n".join(lines)


def _digest_lines(summary: BulkSummary) -> list[str]:
    riders = len(summary.free_tickets) + summary.more_free_ticket_riders
    lines = [f"Free ticket(s) found for {riders} rider(s):"]
    for found in summary.free_tickets:
        products = ", ".join(escape(t.product or t.pass_uuid) for t in found.tickets)
        lines.append(f"• user {found.user_id}: {products}")
    if summary.more_free_ticket_riders:
        lines.append(f"… and {summary.more_free_ticket_riders} more rider(s)")
    return lines


def bulk_summary_text(project: str, stage: str, summary: BulkSummary) -> str:
    verb = "was cancelled" if summary.cancelled else "finished"
    headline = (
        f"[{escape(project)}/{escape(stage)}] Bulk run `{escape(summary.job)}` {verb}: "
        f"{summary.done}/{summary.total} done, {summary.failed} failed"
    )
    lines = [headline]
    if summary.stopped:
        lines.append(f"General outage: {escape(summary.stopped)}")
    if summary.skipped_by_reason:
        skipped = ", ".join(
            f"{escape(reason)}: {count}" for reason, count in sorted(summary.skipped_by_reason.items())
        )
        lines.append(f"Skipped without calling Bytemark: {skipped}")
    if summary.failures_by_reason:
        by_count = sorted(summary.failures_by_reason.items(), key=lambda item: (-item[1], item[0]))
        reasons = ", ".join(f"{escape(reason)}: {count}" for reason, count in by_count)
        lines.append(f"Failures by reason: {reasons}")
    if summary.sample_failed_user_ids:
        sample = summary.sample_failed_user_ids[:MAX_SAMPLE_USER_IDS]
        more = len(summary.sample_failed_user_ids) - len(sample)
        shown = ", ".join(str(user_id) for user_id in sample) + (f" (+{more} more)" if more else "")
        lines.append(f"Sample failed users: {shown}")
    if summary.free_tickets:
        lines += _digest_lines(summary)
    return "\n".join(lines)


class SlackNotifier:
    """Implements Notifier with `chat.postMessage` on one channel."""

    def __init__(self, client: AsyncWebClient, channel_id: str, project: str, stage: str) -> None:
        self._client = client
        self._channel_id = channel_id
        self._project = project
        self._stage = stage

    def __repr__(self) -> str:  # the client holds the bot token; keep it out of reprs
        return f"SlackNotifier(channel_id={self._channel_id!r}, project={self._project!r})"

    async def free_tickets_found(self, found: RiderFreeTickets) -> None:
        text = free_tickets_text(self._project, self._stage, found.user_id, found.tickets)
        await self._post("free_tickets_found", text)

    async def bulk_run_finished(self, summary: BulkSummary) -> None:
        await self._post("bulk_run_finished", bulk_summary_text(self._project, self._stage, summary))

    async def _post(self, notice: str, text: str) -> None:
        try:
            await self._client.chat_postMessage(channel=self._channel_id, text=text)
        except SlackApiError as error:
            # Only the API's error code: the response object also carries the request headers.
            status = getattr(error.response, "status_code", None)
            reason = f"API error {_api_error_code(error)} (HTTP {status})"
        except Exception as error:  # noqa: BLE001 - any failure leaves the notice to a retry
            reason = type(error).__name__
        else:
            logger.debug("Slack notice %s posted", notice)
            return
        logger.warning("Slack notice %s not posted (the outbox retries it): %s", notice, reason)
        raise StoreUnavailable("Slack", reason)


def _api_error_code(error: SlackApiError) -> str:
    try:
        code = error.response.get("error")
    except (
        ValueError,
        AttributeError,
        TypeError,
    ):  # a non-JSON body has no error field
        return "unknown"
    return code if isinstance(code, str) else "unknown"


class NullNotifier:
    """Notifier used when Slack is not configured."""

    async def free_tickets_found(self, found: RiderFreeTickets) -> None:
        return None

    async def bulk_run_finished(self, summary: BulkSummary) -> None:
        return None
