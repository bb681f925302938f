"""The dry run over gRPC: `dry_run` reaches the use cases, and the report and totals come back."""

from __future__ import annotations

from dataclasses import replace

from application.dry_run import DryRunTotals
from application.results import BulkProgress
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import make_result


def refs(entries: object) -> list[tuple[str, str]]:
    return [(entry.list, entry.pass_uuid) for entry in entries]  # type: ignore[attr-defined]


async def test_a_dry_check_answers_the_report(grpc_server: RunningServer) -> None:
    response = await grpc_server.stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=7, dry_run=True))

    assert grpc_server.use_cases.calls == [("check_dry_run", (7,))]
    report = response.result.dry_run
    assert refs(report.added) == [("passes", "new")] and refs(report.changed) == [("passes", "edited")]
    assert refs(report.removed) == [("passes4", "gone")] and list(report.free_tickets) == ["new"]
    assert refs(report.hash_differences) == [("passes", "legacy")] and report.token_rotated


async def test_a_check_without_dry_run_has_no_report(grpc_server: RunningServer) -> None:
    response = await grpc_server.stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=7))
    assert grpc_server.use_cases.calls == [("check", (7,))] and not response.result.HasField("dry_run")


async def test_a_dry_refresh_stale_run_streams_each_report_with_the_totals(
    grpc_server: RunningServer,
) -> None:
    totals = DryRunTotals(users=1, users_with_changes=1, users_with_hash_differences=1, tokens_rotated=0)
    result = replace(make_result(7), dry_run=grpc_server.use_cases.dry_run_report)
    grpc_server.use_cases.events = [BulkProgress(7, result, None, 1, 1, 0, dry_run_totals=totals)]

    stream = grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(user_ids=[7], dry_run=True))
    events = [event async for event in stream]

    assert grpc_server.use_cases.calls[0][0] == "refresh_stale_dry_run"
    assert refs(events[0].result.dry_run.changed) == [("passes", "edited")]
    sent = events[0].dry_run_totals
    assert (sent.users, sent.users_with_changes, sent.users_with_hash_differences) == (1, 1, 1)
