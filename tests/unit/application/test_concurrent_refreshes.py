"""Two refreshes of one rider at once, for every pair of build, update, check and timeout check:
what each caller gets (the table in docs/concurrency.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from application.errors import CacheNotFound
from application.results import RefreshResult
from application.use_cases import TicketCacheUseCases
from domain.model import Outcome
from tests.unit.application.conftest import World
from tests.unit.passes import FREE_PRODUCT, a_pass

USER = 7
TOKEN = "tok-7"
Operation = Callable[[TicketCacheUseCases], Awaitable[RefreshResult]]
OPERATIONS: dict[str, Operation] = {
    "build": lambda uc: uc.build(USER),
    "update": lambda uc: uc.update(USER),
    "check": lambda uc: uc.check(USER),
    "timeout check": lambda uc: uc.check_timeout(USER, None),
}
# What the second caller gets when it arrives while the first is fetching, for a rider whose
# cache is stale. "shares": the first call's very result, one Bytemark fetch in all. "own":
# it waits for the first to end, then runs its own refresh (a second fetch, the newer lists).
# On a stale cache the first check or timeout check runs an update, so it behaves as one.
SECOND_GETS = {
    ("build", "build"): "shares",
    ("build", "update"): "own",
    ("build", "check"): "shares",
    ("build", "timeout check"): "shares",
    **{(first, "build"): "own" for first in ("update", "check", "timeout check")},
    **{
        (first, second): "shares"
        for first in ("update", "check", "timeout check")
        for second in ("update", "check", "timeout check")
    },
}


async def first_in_flight(world: World, first: str) -> tuple[asyncio.Task[RefreshResult], asyncio.Event]:
    """Start `first` and hold it inside its Bytemark fetch."""
    gate = world.bytemark.gate = asyncio.Event()
    task = asyncio.create_task(OPERATIONS[first](world.use_cases))
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(world.bytemark.fetches) == 1, "the first call should be fetching by now"
    return task, gate


async def arrive(world: World, second: str) -> asyncio.Task[RefreshResult]:
    task = asyncio.create_task(OPERATIONS[second](world.use_cases))
    for _ in range(20):  # let it reach the point where it shares or waits
        await asyncio.sleep(0)
    return task


async def stale_rider(world: World) -> None:
    world.tokens.put(USER, TOKEN)
    world.bytemark.give(TOKEN, [a_pass("a")])
    await world.use_cases.build(USER)
    world.bytemark.fetches.clear()
    world.clock.advance(3601)


@pytest.mark.parametrize(("first", "second"), sorted(SECOND_GETS))
async def test_what_a_second_call_gets_while_a_first_refresh_of_the_rider_is_in_flight(
    world: World, first: str, second: str
) -> None:
    await stale_rider(world)
    world.bytemark.give(TOKEN, [a_pass("a"), a_pass("b")])  # what the first call fetches
    first_task, gate = await first_in_flight(world, first)
    world.bytemark.give(TOKEN, [a_pass("a"), a_pass("b"), a_pass("c")])  # newer, for a later fetch
    second_task = await arrive(world, second)
    gate.set()
    first_result, second_result = await asyncio.gather(first_task, second_task)

    first_outcome = Outcome.BUILT if first == "build" else Outcome.UPDATED
    assert first_result.outcome is first_outcome
    assert first_result.cache is not None
    assert [p.pass_uuid for p in first_result.cache.passes] == ["a", "b"]
    assert second_result.cache is not None
    if SECOND_GETS[first, second] == "shares":
        assert second_result is first_result
        assert len(world.bytemark.fetches) == 1
    else:
        assert second_result.outcome is (Outcome.BUILT if second == "build" else Outcome.UPDATED)
        assert [p.pass_uuid for p in second_result.cache.passes] == ["a", "b", "c"]
        assert second_result.cache.version == first_result.cache.version + 1
        assert len(world.bytemark.fetches) == 2
    stored = world.caches.caches[USER]
    assert stored == (first_result if SECOND_GETS[first, second] == "shares" else second_result).cache


async def test_a_build_during_an_update_answers_built_with_a_fresh_snapshot(world: World) -> None:
    await stale_rider(world)
    world.bytemark.give(TOKEN, [a_pass("a"), a_pass("f", product=FREE_PRODUCT)])
    updating, gate = await first_in_flight(world, "update")
    world.bytemark.give(TOKEN, [a_pass("a"), a_pass("f", product=FREE_PRODUCT), a_pass("new")])
    building = await arrive(world, "build")
    gate.set()

    updated, built = await updating, await building

    assert updated.outcome is Outcome.UPDATED and updated.counts.new_free == 1
    assert built.outcome is Outcome.BUILT
    assert built.cache is not None
    # a snapshot of what Bytemark has now, with nothing carried over from the update
    assert [(p.pass_uuid, p.free_ticket_status) for p in built.cache.passes] == [
        ("a", 0),
        ("f", 0),
        ("new", 0),
    ]


@pytest.mark.parametrize("first", ["build", "update", "check"])
async def test_a_timeout_check_of_a_fresh_cache_answers_fresh_while_a_refresh_runs(
    world: World, first: str
) -> None:
    await stale_rider(world)
    world.clock.advance(-3601)  # fresh again
    running, gate = await first_in_flight(world, first)
    fresh = await (await arrive(world, "timeout check"))
    gate.set()
    await running

    assert fresh.outcome is Outcome.FRESH
    assert len(world.bytemark.fetches) == 1


@pytest.mark.parametrize("second", ["build", "check", "timeout check"])
async def test_without_a_cache_calls_that_accept_a_build_share_it(world: World, second: str) -> None:
    world.tokens.put(USER, TOKEN)
    world.bytemark.give(TOKEN, [a_pass("a")])
    building, gate = await first_in_flight(world, "build")
    waiting = await arrive(world, second)
    gate.set()

    assert await waiting is await building
    assert len(world.bytemark.fetches) == 1


async def test_without_a_cache_an_update_waits_for_a_running_build_then_updates(world: World) -> None:
    world.tokens.put(USER, TOKEN)
    world.bytemark.give(TOKEN, [a_pass("a")])
    building, gate = await first_in_flight(world, "build")
    world.bytemark.give(TOKEN, [a_pass("a"), a_pass("b")])
    updating = await arrive(world, "update")
    gate.set()

    assert (await building).outcome is Outcome.BUILT
    updated = await updating
    assert updated.outcome is Outcome.UPDATED and updated.counts.new == 1
    with pytest.raises(CacheNotFound):  # with nothing running and no cache, update is NOT_FOUND
        await world.use_cases.update(USER + 1)


async def test_calls_waiting_behind_an_update_share_one_build(world: World) -> None:
    await stale_rider(world)
    updating, gate = await first_in_flight(world, "update")
    builds = [await arrive(world, "build") for _ in range(3)]
    gate.set()
    await updating

    results = await asyncio.gather(*builds)

    assert all(r is results[0] and r.outcome is Outcome.BUILT for r in results)
    assert len(world.bytemark.fetches) == 2


async def test_a_cancelled_waiter_leaves_the_running_update_and_the_next_caller_alone(world: World) -> None:
    await stale_rider(world)
    updating, gate = await first_in_flight(world, "update")
    waiting_build = await arrive(world, "build")
    waiting_build.cancel()
    gate.set()

    assert (await updating).outcome is Outcome.UNCHANGED
    assert waiting_build.cancelled()
    assert (await world.use_cases.build(USER)).outcome is Outcome.BUILT
    assert len(world.bytemark.fetches) == 2
