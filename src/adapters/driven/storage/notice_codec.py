"""Slack notices waiting in the outbox, as plain documents (see outbox_codec)."""

from __future__ import annotations

from typing import Any

from application.notices import BulkJob, BulkSummary, FreeTicket, Notice, RiderFreeTickets


def notice_document(notice: Notice) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if notice.free_tickets is not None:
        document["free_tickets"] = _rider_document(notice.free_tickets)
    if notice.summary is not None:
        summary = notice.summary
        document["summary"] = {
            "job": summary.job.value,
            "total": summary.total,
            "done": summary.done,
            "failed": summary.failed,
            "failures_by_reason": summary.failures_by_reason,
            "sample_failed_user_ids": list(summary.sample_failed_user_ids),
            "cancelled": summary.cancelled,
            "skipped_by_reason": summary.skipped_by_reason,
            "stopped": summary.stopped,
            "free_tickets": [_rider_document(found) for found in summary.free_tickets],
            "more_free_ticket_riders": summary.more_free_ticket_riders,
        }
    return document


def notice_from_document(document: dict[str, Any]) -> Notice:
    free_tickets = document.get("free_tickets")
    summary = document.get("summary")
    return Notice(
        free_tickets=_rider(free_tickets) if free_tickets is not None else None,
        summary=_summary(summary) if summary is not None else None,
    )


def _summary(document: dict[str, Any]) -> BulkSummary:
    return BulkSummary(
        job=BulkJob(document["job"]),
        total=int(document["total"]),
        done=int(document["done"]),
        failed=int(document["failed"]),
        failures_by_reason={str(k): int(v) for k, v in document["failures_by_reason"].items()},
        sample_failed_user_ids=tuple(int(u) for u in document["sample_failed_user_ids"]),
        cancelled=bool(document["cancelled"]),
        skipped_by_reason={str(k): int(v) for k, v in document["skipped_by_reason"].items()},
        stopped=str(document["stopped"]),
        free_tickets=tuple(_rider(found) for found in document["free_tickets"]),
        more_free_ticket_riders=int(document["more_free_ticket_riders"]),
    )


def _rider_document(found: RiderFreeTickets) -> dict[str, Any]:
    # objects, not pairs: FerretDB stores no nested arrays
    return {"user_id": found.user_id, "tickets": [{"u": t.pass_uuid, "p": t.product} for t in found.tickets]}


def _rider(document: dict[str, Any]) -> RiderFreeTickets:
    tickets = tuple(FreeTicket(str(ticket["u"]), ticket.get("p")) for ticket in document["tickets"])
    return RiderFreeTickets(int(document["user_id"]), tickets)
