"""The unary refresh RPCs and the purge: request -> use case arguments, result -> response."""

from __future__ import annotations

import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import NOW


async def test_build_returns_the_outcome_counts_and_refresh_time_without_the_cache(
    grpc_server: RunningServer,
) -> None:
    response = await grpc_server.stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=7))

    result = response.result
    assert grpc_server.use_cases.calls == [("build", (7,))]
    assert (result.user_id, result.outcome, result.refreshed_at.seconds) == (7, pb.OUTCOME_BUILT, NOW)
    counts = result.counts
    got = (counts.passes, counts.passes4, counts.new, counts.changed, counts.removed, counts.new_free)
    assert got == (2, 1, 1, 1, 0, 1)
    assert not result.HasField("cache")


async def test_the_cache_comes_back_in_the_requested_view_when_asked_for(grpc_server: RunningServer) -> None:
    response = await grpc_server.stub.CheckTicketCache(
        pb.CheckTicketCacheRequest(user_id=7, include_cache=True, view=pb.CACHE_VIEW_RAW)
    )

    cache = response.result.cache
    assert response.result.outcome == pb.OUTCOME_UPDATED
    assert cache.user_id == 7 and len(cache.passes) == 2
    assert all(p.WhichOneof("content") == "payload_json" for p in cache.passes)


async def test_update_maps_to_the_update_use_case(grpc_server: RunningServer) -> None:
    response = await grpc_server.stub.UpdateTicketCache(
        pb.UpdateTicketCacheRequest(user_id=8, include_cache=True)
    )

    assert grpc_server.use_cases.calls == [("update", (8,))]
    assert response.result.outcome == pb.OUTCOME_UNCHANGED
    assert response.result.cache.passes[0].WhichOneof("content") == "payload"  # default view: FULL


@pytest.mark.parametrize(("sent", "passed_on"), [(0, None), (120, 120)])
async def test_timeout_check_passes_zero_max_age_as_the_server_default(
    grpc_server: RunningServer, sent: int, passed_on: int | None
) -> None:
    response = await grpc_server.stub.CheckTicketCacheTimeout(
        pb.CheckTicketCacheTimeoutRequest(user_id=9, max_age_seconds=sent)
    )

    assert grpc_server.use_cases.calls == [("check_timeout", (9, passed_on))]
    assert response.result.outcome == pb.OUTCOME_FRESH


@pytest.mark.parametrize("dry_run", [True, False])
async def test_purge_lists_the_removed_users_and_echoes_dry_run(
    grpc_server: RunningServer, dry_run: bool
) -> None:
    response = await grpc_server.stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=dry_run))

    assert grpc_server.use_cases.calls == [("purge_orphans", (dry_run,))]
    assert list(response.removed_user_ids) == [7, 9]
    assert response.dry_run is dry_run
