"""Slack notices as data: what an outbox record carries until the relay has posted it.

A unary refresh that finds free tickets stores one `Notice` for that rider with its cache write;
a bulk run stores one at its end: its summary, with a digest of the free tickets it found (the
first riders, and a count of the rest) instead of one message per rider.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from domain.model import CachedPass

#: Riders a bulk run's digest names; the rest are counted.
DIGEST_RIDERS = 20


class BulkJob(StrEnum):
    """Which bulk run; its value names the run in logs, metrics labels and Slack notices."""

    BOOTSTRAP = "bootstrap"
    REFRESH_STALE = "refresh_stale"


@dataclass(frozen=True, slots=True)
class FreeTicket:
    """One free-ticket pass found: its uuid and product name (when the payload names one)."""

    pass_uuid: str
    product: str | None = None


@dataclass(frozen=True, slots=True)
class RiderFreeTickets:
    user_id: int
    tickets: tuple[FreeTicket, ...]


def free_tickets_of(passes: Iterable[CachedPass]) -> tuple[FreeTicket, ...]:
    return tuple(FreeTicket(cached.pass_uuid, _product_name(cached)) for cached in passes)


def _product_name(cached: CachedPass) -> str | None:
    product = cached.payload.get("product")
    name = product.get("name") if isinstance(product, dict) else None
    return name if isinstance(name, str) and name else None


@dataclass(frozen=True, slots=True)
class BulkSummary:
    """One bulk run's totals, for the single per-run notice, and the free tickets it found."""

    job: BulkJob
    total: int
    done: int
    failed: int
    failures_by_reason: dict[str, int]
    sample_failed_user_ids: tuple[int, ...]
    cancelled: bool = False
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    stopped: str = ""  # why the run stopped early (a general Bytemark or store outage), else ""
    free_tickets: tuple[RiderFreeTickets, ...] = ()  # the first DIGEST_RIDERS riders
    more_free_ticket_riders: int = 0  # riders with free tickets beyond those


@dataclass(frozen=True, slots=True)
class Notice:
    """One Slack message to post: a rider's free tickets (unary), or a bulk run's end."""

    free_tickets: RiderFreeTickets | None = None
    summary: BulkSummary | None = None


@dataclass
class FreeTicketDigest:
    """The free tickets a bulk run found, capped at DIGEST_RIDERS riders."""

    riders: list[RiderFreeTickets] = field(default_factory=list)
    more: int = 0

    def add(self, user_id: int, tickets: tuple[FreeTicket, ...]) -> None:
        if not tickets:
            return
        if len(self.riders) < DIGEST_RIDERS:
            self.riders.append(RiderFreeTickets(user_id, tickets))
        else:
            self.more += 1
