"""What use cases return to a transport (gRPC, CLI)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from application.dry_run import DryRunReport, DryRunTotals
from application.errors import ApplicationError
from application.notices import FreeTicket
from domain.model import Outcome, RefreshCounts, TicketCache
from domain.sync_state import SkipReason, SyncStatus


@dataclass(frozen=True, slots=True)
class RefreshResult:
    user_id: int
    outcome: Outcome
    counts: RefreshCounts
    refreshed_at: int  # epoch seconds; the cache timestamp after the call (0 when nothing written)
    cache: TicketCache | None  # the stored cache after the call (None for NO_VALID_TOKEN)
    no_token_reason: str = ""  # NO_VALID_TOKEN: why (no token row, invalid_grant, ...)
    dry_run: DryRunReport | None = None  # a dry run's report (then nothing was written)
    #: Free tickets found that no notice was stored for: a bulk run's digest reports them.
    unannounced_free_tickets: tuple[FreeTicket, ...] = ()


@dataclass(frozen=True, slots=True)
class Skipped:
    """A bulk run left the rider alone (no Bytemark call) because of its sync status."""

    reason: SkipReason
    status: SyncStatus


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """One event of a bulk stream: a user's result, error or skip, plus running totals.
    `skipped_not_empty` is set on the single event of a bootstrap that found caches already;
    `stopped` on the last event of a run that stopped early (a general Bytemark outage)."""

    user_id: int | None
    result: RefreshResult | None
    error: ApplicationError | None
    done: int
    total: int
    failed: int
    skipped_not_empty: bool = False
    skipped: Skipped | None = None
    skipped_by_reason: Mapping[SkipReason, int] = field(default_factory=dict)
    stopped: str = ""
    #: Another event is already waiting: a transport may send them together.
    more_ready: bool = False
    #: A dry run's summary so far (None when not a dry run).
    dry_run_totals: DryRunTotals | None = None


@dataclass(frozen=True, slots=True)
class PurgeResult:
    user_ids: tuple[int, ...]  # caches removed, or that would be removed in a dry run
    dry_run: bool
    sync_statuses: int = 0  # sync statuses of riders without a token, removed (or that would be)
