"""Domain and application results -> proto messages (and the one proto-only validation: view)."""

from __future__ import annotations

from adapters.driving.grpc_api import dry_run_messages
from adapters.driving.grpc_api.cache_encoding import CacheEncoder
from adapters.driving.grpc_api.errors import failure_for
from application.errors import InvalidArgument
from application.results import BulkProgress, PurgeResult, RefreshResult
from application.sync_queries import SyncStatusPage
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import Outcome, RefreshCounts
from domain.sync_state import SkipReason, SyncState, SyncStatus

OUTCOME_TO_PROTO: dict[Outcome, pb.Outcome.ValueType] = {
    Outcome.BUILT: pb.OUTCOME_BUILT,
    Outcome.UPDATED: pb.OUTCOME_UPDATED,
    Outcome.UNCHANGED: pb.OUTCOME_UNCHANGED,
    Outcome.FRESH: pb.OUTCOME_FRESH,
    Outcome.NO_VALID_TOKEN: pb.OUTCOME_NO_VALID_TOKEN,
}

SYNC_STATE_TO_PROTO: dict[SyncState, pb.SyncState.ValueType] = {
    SyncState.OK: pb.SYNC_STATE_OK,
    SyncState.FAILING: pb.SYNC_STATE_FAILING,
    SyncState.AUTH_REQUIRED: pb.SYNC_STATE_AUTH_REQUIRED,
}
_SYNC_STATE_FROM_PROTO = {value: state for state, value in SYNC_STATE_TO_PROTO.items()}
SKIP_REASON_TO_PROTO: dict[SkipReason, pb.SkipReason.ValueType] = {
    SkipReason.AUTH_REQUIRED: pb.SKIP_REASON_AUTH_REQUIRED,
    SkipReason.BACKOFF: pb.SKIP_REASON_BACKOFF,
}

_KNOWN_VIEWS = frozenset(pb.CacheView.values())

BulkEvent = pb.BuildCacheIfEmptyResponse | pb.RefreshStaleCachesResponse
#: Most users one batched progress event carries.
MAX_BATCH = 1000


def resolve_view(view: int) -> pb.CacheView.ValueType:
    """The request's view with UNSPECIFIED meaning FULL (AIP-157). proto3 enums are open, so
    a client built from a newer proto can send a value this server does not know."""
    if view == pb.CACHE_VIEW_UNSPECIFIED:
        return pb.CACHE_VIEW_FULL
    if view not in _KNOWN_VIEWS:
        raise InvalidArgument("view", f"unknown CacheView value {view}")
    return pb.CacheView.ValueType(view)


def cache_view(view: int, include_cache: bool) -> pb.CacheView.ValueType | None:
    """The view to send a refreshed cache in, or None when the request did not ask for it.
    The view is validated either way: a bad value is a bad request."""
    resolved = resolve_view(view)
    return resolved if include_cache else None


class ProtoConverter:
    """Writes results into (empty) proto messages; holds the per-server cache encoder."""

    def __init__(self, encoder: CacheEncoder) -> None:
        self._encoder = encoder

    @property
    def encoder(self) -> CacheEncoder:
        return self._encoder

    def write_refresh_result(
        self, target: pb.RefreshResult, result: RefreshResult, view: pb.CacheView.ValueType | None
    ) -> None:
        target.user_id = result.user_id
        target.outcome = OUTCOME_TO_PROTO[result.outcome]
        _write_counts(target.counts, result.counts)
        if result.refreshed_at:
            target.refreshed_at.seconds = result.refreshed_at
        if view is not None and result.cache is not None:
            self._encoder.write_cache(target.cache, result.cache, view)
        if result.dry_run is not None:
            dry_run_messages.write_report(target.dry_run, result.dry_run)

    def write_progress(
        self, target: BulkEvent, progress: BulkProgress, view: pb.CacheView.ValueType | None
    ) -> None:
        """One stream event: the user's result or error plus the running totals."""
        self.write_user_event(target, progress, view)
        _write_totals(target, progress)

    def add_to_batch(
        self, target: BulkEvent, progress: BulkProgress, view: pb.CacheView.ValueType | None
    ) -> pb.BulkUserEvent:
        """One more user in a batched event; the event's totals become this user's."""
        event = target.batch.add()
        self.write_user_event(event, progress, view)
        _write_totals(target, progress)
        return event

    def write_user_event(
        self,
        target: BulkEvent | pb.BulkUserEvent,
        progress: BulkProgress,
        view: pb.CacheView.ValueType | None,
    ) -> None:
        target.user_id = progress.user_id or 0
        if progress.skipped is not None:
            target.skipped = SKIP_REASON_TO_PROTO[progress.skipped.reason]
        if progress.result is not None:
            self.write_refresh_result(target.result, progress.result, view)
        elif progress.error is not None:
            failure = failure_for(progress.error)
            target.error.code = failure.code.name  # deprecated; `status` has it all
            target.error.message = failure.message
            target.status.CopyFrom(failure.status())


def sync_state_filter(state: int) -> SyncState | None:
    """ListSyncStatuses' `state`: UNSPECIFIED means every state; an unknown value is a bad request."""
    if state == pb.SYNC_STATE_UNSPECIFIED:
        return None
    if state not in _SYNC_STATE_FROM_PROTO:
        raise InvalidArgument("state", f"unknown SyncState value {state}")
    return _SYNC_STATE_FROM_PROTO[pb.SyncState.ValueType(state)]


def write_sync_status(target: pb.SyncStatus, status: SyncStatus) -> None:
    target.user_id = status.user_id
    target.state = SYNC_STATE_TO_PROTO[status.state]
    target.last_attempt_at.seconds = status.last_attempt_at
    target.consecutive_failures = status.consecutive_failures
    if status.last_success_at is not None:
        target.last_success_at.seconds = status.last_success_at
    if status.last_error is not None:
        target.last_error.code = status.last_error.code
        target.last_error.message = status.last_error.message
    if status.next_attempt_at is not None:
        target.next_attempt_at.seconds = status.next_attempt_at
    if status.cache_timestamp is not None:
        target.cache_timestamp.seconds = status.cache_timestamp


def sync_status_page_response(page: SyncStatusPage) -> pb.ListSyncStatusesResponse:
    response = pb.ListSyncStatusesResponse(next_page_token=page.next_page_token)
    for status in page.statuses:
        write_sync_status(response.statuses.add(), status)
    return response


def max_batch(value: int) -> int:
    """A bulk request's max_batch: 0 (one user per event) up to MAX_BATCH."""
    if not 0 <= value <= MAX_BATCH:
        raise InvalidArgument("max_batch", f"must be between 0 and {MAX_BATCH}, got {value}")
    return value


def _write_totals(target: BulkEvent, progress: BulkProgress) -> None:
    target.done = progress.done
    target.total = progress.total
    target.failed = progress.failed
    target.skipped_auth_required = progress.skipped_by_reason.get(SkipReason.AUTH_REQUIRED, 0)
    target.skipped_backoff = progress.skipped_by_reason.get(SkipReason.BACKOFF, 0)
    target.stopped = progress.stopped
    if progress.dry_run_totals is not None and isinstance(target, pb.RefreshStaleCachesResponse):
        dry_run_messages.write_totals(target.dry_run_totals, progress.dry_run_totals)


def purge_response(result: PurgeResult) -> pb.PurgeOrphanedCachesResponse:
    return pb.PurgeOrphanedCachesResponse(
        removed_user_ids=result.user_ids, dry_run=result.dry_run, removed_sync_statuses=result.sync_statuses
    )


def _write_counts(target: pb.RefreshCounts, counts: RefreshCounts) -> None:
    target.passes = counts.passes
    target.passes4 = counts.passes4
    target.new = counts.new
    target.changed = counts.changed
    target.removed = counts.removed
    target.new_free = counts.new_free
