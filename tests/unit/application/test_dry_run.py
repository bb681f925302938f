"""The cut-over dry run: it reports what a refresh would add, change, remove and announce, and
which stored hashes this service computes otherwise, and it writes nothing."""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import replace

from application.dry_run import PassRef
from domain.model import Outcome
from tests.unit.application.conftest import World
from tests.unit.passes import FREE_PRODUCT, a_pass

USER = 7


async def stored_cache_of(world: World, *passes: dict) -> None:
    world.tokens.put(USER, "tok-7", refresh="rt-7")
    world.bytemark.give("tok-7", list(passes))
    await world.use_cases.build(USER)
    world.sync_states.statuses.clear()


def nothing_written_since(world: World, before: object, saves: int) -> None:
    assert world.caches.caches[USER] == before and world.caches.saves == saves
    assert world.ticket_log.entries == [] and world.notifier.free_notices == []
    assert world.sync_states.statuses == {} and world.caches.changes == []


async def test_a_dry_check_reports_each_added_changed_and_removed_pass_and_writes_nothing(
    world: World,
) -> None:
    await stored_cache_of(world, a_pass("kept"), a_pass("edited"), a_pass("gone"))
    before, saves = world.caches.caches[USER], world.caches.saves
    world.caches.changes.clear()
    world.bytemark.give(
        "tok-7",
        [a_pass("kept"), a_pass("edited", status="USED"), a_pass("gift", product=FREE_PRODUCT)],
    )

    result = await world.use_cases.check(USER, dry_run=True)

    report = result.dry_run
    assert report is not None and result.outcome is Outcome.UPDATED
    assert report.added == (PassRef("passes", "gift"),)
    assert report.changed == (PassRef("passes", "edited"),)
    assert report.removed == (PassRef("passes", "gone"),)
    assert report.free_tickets == ("gift",) and report.hash_differences == ()
    assert not report.token_rotated and result.cache == before
    nothing_written_since(world, before, saves)


async def test_a_stored_hash_this_service_computes_otherwise_is_reported(world: World) -> None:
    await stored_cache_of(world, a_pass("a"), a_pass("b"))
    cache = world.caches.caches[USER]
    tampered = replace(cache.passes[1], payload_hash="0" * 32)  # as a writer hashing differently would
    world.caches.caches[USER] = replace(cache, passes=(cache.passes[0], tampered))

    report = (await world.use_cases.check(USER, dry_run=True)).dry_run

    assert report is not None and report.hash_differences == (PassRef("passes", "b"),)


async def test_a_dry_refresh_stale_run_totals_riders_with_changes_and_writes_no_sync_state(
    world: World,
) -> None:
    await stored_cache_of(world, a_pass("a"))
    world.clock.advance(7200)  # stale
    world.bytemark.give("tok-7", [a_pass("a"), a_pass("new")])
    before, saves = world.caches.caches[USER], world.caches.saves
    world.caches.changes.clear()

    async with aclosing(world.use_cases.refresh_stale(None, None, 0, 0, [USER], dry_run=True)) as events:
        progress = [event async for event in events]

    assert progress[-1].dry_run_totals is not None
    totals = progress[-1].dry_run_totals
    assert (totals.users, totals.users_with_changes, totals.users_with_hash_differences) == (1, 1, 0)
    nothing_written_since(world, before, saves)
