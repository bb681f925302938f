"""A dry run's report and totals as proto messages (see application/dry_run.py)."""

from __future__ import annotations

from application.dry_run import DryRunReport, DryRunTotals, PassRef
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb


def write_report(target: pb.DryRunReport, report: DryRunReport) -> None:
    _add(target.added, report.added)
    _add(target.changed, report.changed)
    _add(target.removed, report.removed)
    target.free_tickets.extend(report.free_tickets)
    _add(target.hash_differences, report.hash_differences)
    target.token_rotated = report.token_rotated


def write_totals(target: pb.DryRunTotals, totals: DryRunTotals) -> None:
    target.users = totals.users
    target.users_with_changes = totals.users_with_changes
    target.users_with_hash_differences = totals.users_with_hash_differences
    target.tokens_rotated = totals.tokens_rotated


def _add(target: object, refs: tuple[PassRef, ...]) -> None:
    for ref in refs:
        target.add(list=ref.pass_list, pass_uuid=ref.pass_uuid)  # type: ignore[attr-defined]
