"""What use cases return to a transport (gRPC, CLI)."""

from __future__ import annotations

from dataclasses import dataclass

from application.errors import ApplicationError
from domain.model import Outcome, RefreshCounts, TicketCache


@dataclass(frozen=True, slots=True)
class RefreshResult:
    user_id: int
    outcome: Outcome
    counts: RefreshCounts
    refreshed_at: int  # epoch seconds; the cache timestamp after the call (0 when nothing written)
    cache: TicketCache | None  # the stored cache after the call (None for NO_VALID_TOKEN)


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """One event of a bulk stream: a user's result or error, plus running totals.
    `skipped_not_empty` is set on the single event of a bootstrap that found caches already."""

    user_id: int | None
    result: RefreshResult | None
    error: ApplicationError | None
    done: int
    total: int
    failed: int
    skipped_not_empty: bool = False


@dataclass(frozen=True, slots=True)
class PurgeResult:
    user_ids: tuple[int, ...]  # caches removed, or that would be removed in a dry run
    dry_run: bool
