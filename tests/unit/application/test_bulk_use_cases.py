from __future__ import annotations

import asyncio

import pytest

from application.errors import InternalError, InvalidArgument, UpstreamUnavailable
from application.ports import UserToken
from application.results import BulkProgress
from domain.model import Outcome
from tests.unit.application.conftest import World
from tests.unit.passes import a_pass


def add_users(world: World, user_ids: range | list[int]) -> None:
    for user_id in user_ids:
        world.tokens.put(user_id, f"tok-{user_id}")
        world.bytemark.give(f"tok-{user_id}", [a_pass(f"p-{user_id}")])


async def collect(stream) -> list[BulkProgress]:  # type: ignore[no-untyped-def]
    return [event async for event in stream]


async def test_bootstrap_builds_every_user_with_a_token_when_the_store_is_empty(world: World) -> None:
    add_users(world, range(1, 11))
    events = await collect(world.use_cases.build_if_empty(None))
    assert sorted(e.user_id for e in events if e.user_id) == list(range(1, 11))
    assert all(e.result and e.result.outcome is Outcome.BUILT for e in events)
    assert [e.done for e in events] == list(range(1, 11))
    assert events[-1].total == 10 and events[-1].failed == 0
    assert len(world.caches.caches) == 10
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert world.notifier.summaries == []  # nothing failed: no Slack noise


async def test_bootstrap_does_nothing_when_any_cache_exists(world: World) -> None:
    add_users(world, [1, 2])
    await world.use_cases.build(1)
    world.bytemark.fetches.clear()
    [event] = await collect(world.use_cases.build_if_empty(None))
    assert event.skipped_not_empty and event.user_id is None
    assert world.bytemark.fetches == []


async def test_one_users_failure_never_stops_the_others_and_is_summarised_once(world: World) -> None:
    add_users(world, range(1, 7))
    world.bytemark.failing_users["tok-3"] = "HTTP 503 after 4 attempts"
    world.bytemark.failing_users["tok-5"] = "timeout"
    events = await collect(world.use_cases.build_if_empty(2))
    failed = [e for e in events if e.error is not None]
    assert sorted(e.user_id for e in failed if e.user_id) == [3, 5]
    assert all(isinstance(e.error, UpstreamUnavailable) for e in failed)
    assert events[-1].done == 6 and events[-1].failed == 2
    assert len(world.caches.caches) == 4
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    [summary] = world.notifier.summaries
    assert (summary.job, summary.total, summary.done, summary.failed) == ("bootstrap", 6, 6, 2)
    assert summary.failures_by_reason == {"UpstreamUnavailable": 2}
    assert sorted(summary.sample_failed_user_ids) == [3, 5]


async def test_a_bug_for_one_user_becomes_an_internal_error_carrying_the_bug_and_the_run_goes_on(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    add_users(world, range(1, 5))
    real_get_token = world.tokens.get_token

    async def get_token(user_id: int) -> UserToken | None:
        if user_id == 3:
            raise KeyError("bug")
        return await real_get_token(user_id)

    world.tokens.get_token = get_token  # type: ignore[method-assign]
    events = await collect(world.use_cases.build_if_empty(2))

    [failed] = [e for e in events if e.error is not None]
    assert failed.user_id == 3 and isinstance(failed.error, InternalError)
    assert isinstance(failed.error.__cause__, KeyError)  # the traceback travels to the one log line
    assert events[-1].done == 4 and len(world.caches.caches) == 3
    assert [r for r in caplog.records if r.name.startswith("application")] == []  # the transport logs it


async def test_bulk_work_never_exceeds_the_requested_concurrency(world: World) -> None:
    add_users(world, range(1, 21))
    running = peak = 0
    original = world.bytemark.fetch_passes

    async def counting_fetch(token: str):  # type: ignore[no-untyped-def]
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        try:
            return await original(token)
        finally:
            running -= 1

    world.bytemark.fetch_passes = counting_fetch  # type: ignore[method-assign]
    await collect(world.use_cases.build_if_empty(3))
    assert peak == 3


async def test_refresh_stale_only_calls_bytemark_for_stale_caches(world: World) -> None:
    add_users(world, [1, 2, 3])
    await world.use_cases.build(1)
    world.clock.advance(4000)
    await world.use_cases.build(2)
    world.bytemark.fetches.clear()
    events = await collect(world.use_cases.refresh_stale(None, None, 0, 0, []))
    outcomes = {e.user_id: e.result.outcome for e in events if e.result}
    assert outcomes == {1: Outcome.UNCHANGED, 2: Outcome.FRESH, 3: Outcome.BUILT}
    assert sorted(world.bytemark.fetches) == ["tok-1", "tok-3"]


async def test_refresh_stale_covers_only_its_shard(world: World) -> None:
    add_users(world, range(1, 11))
    events = await collect(world.use_cases.refresh_stale(None, 2, 1, 3, []))
    assert sorted(e.user_id for e in events if e.user_id) == [1, 4, 7, 10]
    assert events[-1].total == 4


async def test_refresh_stale_accepts_an_explicit_user_list_filtered_by_shard(world: World) -> None:
    add_users(world, range(1, 11))
    events = await collect(world.use_cases.refresh_stale(None, None, 0, 2, [2, 3, 4, 4]))
    assert sorted(e.user_id for e in events if e.user_id) == [2, 4]


async def test_refresh_stale_reports_users_without_token_as_no_valid_token(world: World) -> None:
    events = await collect(world.use_cases.refresh_stale(None, None, 0, 0, [99]))
    [event] = events
    assert event.result is not None and event.result.outcome is Outcome.NO_VALID_TOKEN


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shard_index": 3, "shard_count": 3}, "shard_index"),
        ({"shard_index": -1, "shard_count": 3}, "shard_index"),
        ({"shard_index": 1, "shard_count": 0}, "shard_index"),
        ({"shard_count": -2}, "shard_count"),
        ({"concurrency": 10_000}, "concurrency"),
        ({"concurrency": -1}, "concurrency"),
        ({"max_age_seconds": -5}, "max_age_seconds"),
        ({"user_ids": [0]}, "user_ids[0]"),
        ({"user_ids": list(range(1, 10_002))}, "user_ids"),
    ],
)
async def test_bad_bulk_arguments_are_refused_naming_the_field(
    world: World, kwargs: dict, field: str
) -> None:
    args = {"max_age_seconds": None, "concurrency": None, "shard_index": 0, "shard_count": 0, "user_ids": []}
    args.update(kwargs)
    with pytest.raises(InvalidArgument) as refused:
        await collect(world.use_cases.refresh_stale(**args))
    assert refused.value.field == field


async def test_closing_the_stream_stops_new_work(world: World) -> None:
    add_users(world, range(1, 101))
    world.bytemark.delay = 0.01
    stream = world.use_cases.build_if_empty(2)
    async for _ in stream:
        break
    await stream.aclose()
    fetched = len(world.bytemark.fetches)
    await asyncio.sleep(0.1)
    assert len(world.bytemark.fetches) == fetched < 10
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    [summary] = world.notifier.summaries
    assert summary.cancelled


async def test_cancelling_the_task_reading_the_stream_ends_the_run_promptly(world: World) -> None:
    """What a client cancel or server shutdown does to the RPC's task: it must not hang the task."""
    add_users(world, range(1, 101))
    world.bytemark.delay = 0.05
    stream = world.use_cases.build_if_empty(2)

    async def read_all() -> None:
        async for _ in stream:
            pass

    reader = asyncio.ensure_future(read_all())
    await asyncio.sleep(0.2)
    reader.cancel()
    finished, _ = await asyncio.wait([reader], timeout=3)

    assert finished == {reader} and reader.cancelled()
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    [summary] = world.notifier.summaries
    assert summary.cancelled and summary.done < 100


async def test_a_failing_id_stream_ends_the_bulk_run_with_its_error(world: World) -> None:
    add_users(world, [1, 2])

    async def broken_ids(shard=None, batch_size=1000):  # type: ignore[no-untyped-def]
        yield 1
        raise UpstreamUnavailable("ids", "boom")

    world.tokens.iter_user_ids_with_token = broken_ids  # type: ignore[method-assign]
    with pytest.raises(UpstreamUnavailable):
        await collect(world.use_cases.refresh_stale(None, None, 0, 0, []))


async def test_purge_lists_orphans_in_a_dry_run_and_removes_them_otherwise(world: World) -> None:
    add_users(world, [1, 2, 3])
    for user_id in (1, 2, 3):
        await world.use_cases.build(user_id)
    del world.tokens.tokens[2]
    dry = await world.use_cases.purge_orphans(dry_run=True)
    assert dry.user_ids == (2,) and dry.dry_run and 2 in world.caches.caches
    done = await world.use_cases.purge_orphans(dry_run=False)
    assert done.user_ids == (2,) and sorted(world.caches.caches) == [1, 3]
