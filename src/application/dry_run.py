"""The cut-over dry run: what a refresh would do to a rider's stored cache, whoever wrote it (the
Node job included), with nothing written. It also checks fidelity: whether the stored hashes are
the ones this service computes for the same passes."""

from __future__ import annotations

from dataclasses import dataclass

from application.ports import BulkSummary
from domain.cache_diff import build_cache, update_cache
from domain.changes import ChangeKind, PassChange, cache_changes
from domain.free_tickets import FreeTicketPolicy
from domain.model import FetchedPasses, Outcome, TicketCache
from domain.payload_hash import payload_hash


@dataclass(frozen=True, slots=True)
class PassRef:
    pass_list: str  # "passes" or "passes4"
    pass_uuid: str


@dataclass(frozen=True, slots=True)
class DryRunReport:
    """What a refresh of one rider would do; nothing of it was written."""

    would: Outcome  # BUILT, UPDATED, UNCHANGED, FRESH (not stale: not fetched), NO_VALID_TOKEN
    added: tuple[PassRef, ...] = ()
    changed: tuple[PassRef, ...] = ()
    removed: tuple[PassRef, ...] = ()
    free_tickets: tuple[str, ...] = ()  # pass uuids a refresh would announce (Slack)
    hash_differences: tuple[PassRef, ...] = ()  # stored hashes this service computes otherwise
    #: Bytemark rotated the rider's token during the run: the new one was stored (the one write).
    token_rotated: bool = False


@dataclass(frozen=True, slots=True)
class DryRunTotals:
    """A dry run's summary so far."""

    users: int = 0
    users_with_changes: int = 0
    users_with_hash_differences: int = 0  # the fidelity check: 0 when this service hashes as the writer did
    tokens_rotated: int = 0

    def counting(self, report: DryRunReport) -> DryRunTotals:
        return DryRunTotals(
            self.users + 1,
            self.users_with_changes + bool(report.added or report.changed or report.removed),
            self.users_with_hash_differences + bool(report.hash_differences),
            self.tokens_rotated + report.token_rotated,
        )


def hash_differences(cache: TicketCache | None) -> tuple[PassRef, ...]:
    """Stored entries whose hash is not what this service computes for their payload."""
    if cache is None:
        return ()
    return tuple(
        PassRef(pass_list, entry.pass_uuid)
        for pass_list, entries in (("passes", cache.passes), ("passes4", cache.passes4))
        for entry in entries
        if payload_hash(entry.payload) != entry.payload_hash
    )


def preview(
    user_id: int,
    current: TicketCache | None,
    fetched: FetchedPasses,
    now: int,
    free_tickets: FreeTicketPolicy,
    passes4_retention_days: int | None,
) -> DryRunReport:
    """The report of a refresh with `fetched` over `current` (a build when there is none)."""
    if current is None:
        built = build_cache(user_id, fetched, now)
        return _report(Outcome.BUILT, cache_changes(user_id, None, built, now), (), ())
    update = update_cache(current, fetched, now, free_tickets, passes4_retention_days)
    changes = cache_changes(user_id, current, update.cache, now)
    free = tuple(entry.pass_uuid for entry in update.new_free_passes)
    return _report(update.outcome, changes, free, hash_differences(current))


def _report(
    would: Outcome, changes: tuple[PassChange, ...], free: tuple[str, ...], differences: tuple[PassRef, ...]
) -> DryRunReport:
    def of(kind: ChangeKind) -> tuple[PassRef, ...]:
        return tuple(PassRef(c.list.value, c.pass_uuid) for c in changes if c.kind is kind)

    added, changed, removed = of(ChangeKind.ADDED), of(ChangeKind.CHANGED), of(ChangeKind.REMOVED)
    return DryRunReport(would, added, changed, removed, free, differences)


async def no_notice(summary: BulkSummary) -> None:
    """A dry run's bulk run announces nothing: no Slack notice, no outbox record."""
