"""The metrics wrapper around the use cases: what it counts, and that it is transparent."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from adapters.driven.observability.instrumented_use_cases import InstrumentedUseCases
from application.errors import CacheNotFound, InvalidArgument, UpstreamUnavailable
from application.results import BulkProgress, Skipped
from domain.model import Outcome
from domain.sync_state import SkipReason, SyncState, SyncStatus
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases, make_cache, make_result


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def progress(user_id: int, *, ok: bool) -> BulkProgress:
    if ok:
        return BulkProgress(user_id, make_result(user_id, Outcome.BUILT), None, 1, 2, 0)
    return BulkProgress(user_id, None, UpstreamUnavailable("GET /passes", "HTTP 503"), 2, 2, 1)


async def test_get_cache_counts_a_hit_when_found_and_a_miss_when_not_found() -> None:
    fake = FakeUseCases(caches={7: make_cache(7)})
    wrapped = InstrumentedUseCases(fake)
    hits, misses = sample("ticket_cache_lookups_total", result="hit"), sample(
        "ticket_cache_lookups_total", result="miss"
    )

    cache = await wrapped.get_cache(7)
    with pytest.raises(CacheNotFound):
        await wrapped.get_cache(8)

    assert cache.user_id == 7
    assert sample("ticket_cache_lookups_total", result="hit") == hits + 1
    assert sample("ticket_cache_lookups_total", result="miss") == misses + 1


async def test_an_invalid_argument_is_neither_a_hit_nor_a_miss() -> None:
    fake = FakeUseCases(failures={"get_cache": InvalidArgument("user_id", "must be positive")})
    before = [sample("ticket_cache_lookups_total", result=r) for r in ("hit", "miss")]

    with pytest.raises(InvalidArgument):
        await InstrumentedUseCases(fake).get_cache(0)

    assert [sample("ticket_cache_lookups_total", result=r) for r in ("hit", "miss")] == before


@pytest.mark.parametrize(
    ("method", "outcome"),
    [("build", "BUILT"), ("check", "UPDATED"), ("update", "UNCHANGED"), ("check_timeout", "FRESH")],
)
async def test_every_single_user_refresh_counts_its_outcome_and_free_tickets(
    method: str, outcome: str
) -> None:
    wrapped = InstrumentedUseCases(FakeUseCases())
    before = sample("ticket_cache_refresh_outcomes_total", outcome=outcome)
    free_before = sample("ticket_cache_free_tickets_found_total")

    args = (5, None) if method == "check_timeout" else (5,)
    result = await getattr(wrapped, method)(*args)

    assert result.outcome == outcome
    assert sample("ticket_cache_refresh_outcomes_total", outcome=outcome) == before + 1
    assert sample("ticket_cache_free_tickets_found_total") == free_before + result.counts.new_free


async def test_a_bulk_stream_counts_users_ok_and_failed_and_is_in_progress_until_it_ends() -> None:
    fake = FakeUseCases(events=[progress(1, ok=True), progress(2, ok=False)])
    wrapped = InstrumentedUseCases(fake)
    ok = sample("ticket_cache_bulk_users_total", job="refresh_stale", result="ok")
    failed = sample("ticket_cache_bulk_users_total", job="refresh_stale", result="failed")
    built = sample("ticket_cache_refresh_outcomes_total", outcome="BUILT")

    stream = wrapped.refresh_stale(60, 4, 0, 0, [1, 2])
    first = await anext(stream)
    running = sample("ticket_cache_bulk_runs_in_progress", job="refresh_stale")
    rest = [event async for event in stream]

    assert [first.user_id, *(e.user_id for e in rest)] == [1, 2]
    assert running == 1
    assert sample("ticket_cache_bulk_runs_in_progress", job="refresh_stale") == 0
    assert sample("ticket_cache_bulk_users_total", job="refresh_stale", result="ok") == ok + 1
    assert sample("ticket_cache_bulk_users_total", job="refresh_stale", result="failed") == failed + 1
    assert sample("ticket_cache_refresh_outcomes_total", outcome="BUILT") == built + 1
    assert fake.calls == [("refresh_stale", (60, 4, 0, 0, [1, 2])), ("sync_overview", ())]


async def test_a_bulk_run_records_skips_cache_ages_and_the_sync_gauges() -> None:
    now = int(time.time())
    status = SyncStatus(3, SyncState.FAILING, now, cache_timestamp=now - 7200)
    fake = FakeUseCases(
        events=[
            BulkProgress(3, None, None, 1, 2, 0, skipped=Skipped(SkipReason.BACKOFF, status)),
            BulkProgress(None, None, None, 1, 2, 0, stopped="stopped early: general outage"),
        ],
        sync_statuses={3: status, 4: SyncStatus(4, SyncState.AUTH_REQUIRED, now)},
    )
    skipped = sample("ticket_cache_bulk_skipped_total", job="refresh_stale", reason="backoff")
    stopped = sample("ticket_cache_bulk_runs_stopped_total", job="refresh_stale")
    aged = sample("ticket_cache_age_seconds_count")

    _ = [event async for event in InstrumentedUseCases(fake).refresh_stale(None, None, 0, 0, [])]

    assert sample("ticket_cache_bulk_skipped_total", job="refresh_stale", reason="backoff") == skipped + 1
    assert sample("ticket_cache_bulk_runs_stopped_total", job="refresh_stale") == stopped + 1
    assert sample("ticket_cache_age_seconds_count") == aged + 1
    assert 7200 <= sample("ticket_cache_age_max_seconds", job="refresh_stale") < 7300
    assert sample("ticket_cache_sync_riders", state="FAILING") == 1
    assert sample("ticket_cache_sync_riders", state="AUTH_REQUIRED") == 1
    assert sample("ticket_cache_sync_riders", state="OK") == 0


async def test_closing_a_bulk_stream_closes_the_inner_stream_at_once() -> None:
    fake = FakeUseCases(events=[progress(1, ok=True)], hold_stream_open=True)
    stream = InstrumentedUseCases(fake).build_if_empty(8)

    await anext(stream)
    await stream.aclose()

    assert fake.stream_closed.is_set()
    assert sample("ticket_cache_bulk_runs_in_progress", job="bootstrap") == 0


async def test_a_cancelled_bulk_stream_stops_the_inner_one_and_leaves_no_run_in_progress() -> None:
    fake = FakeUseCases(events=[progress(1, ok=True)], hold_stream_open=True)
    stream = InstrumentedUseCases(fake).build_if_empty(None)

    async def drain() -> None:
        async for _ in stream:
            pass

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await stream.aclose()

    assert fake.cancelled.is_set() and fake.stream_closed.is_set()
    assert sample("ticket_cache_bulk_runs_in_progress", job="bootstrap") == 0


async def test_a_failing_bulk_stream_passes_the_error_on_and_ends_the_run() -> None:
    fake = FakeUseCases(failures={"build_if_empty": InvalidArgument("concurrency", "too big")})

    with pytest.raises(InvalidArgument):
        [event async for event in InstrumentedUseCases(fake).build_if_empty(10_000)]

    assert sample("ticket_cache_bulk_runs_in_progress", job="bootstrap") == 0


async def test_purge_is_passed_through() -> None:
    result = await InstrumentedUseCases(FakeUseCases()).purge_orphans(True)

    assert result.user_ids == (7, 9) and result.dry_run


def test_the_container_gives_transports_the_instrumented_use_cases() -> None:
    from adapters.composition.container import Container

    assert Container.use_cases.provides is InstrumentedUseCases
    assert Container.use_cases.args[0] is Container.core_use_cases
