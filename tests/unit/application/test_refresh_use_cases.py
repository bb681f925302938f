from __future__ import annotations

import asyncio

import pytest

from application.errors import (
    CacheNotFound,
    InvalidArgument,
    UpstreamUnavailable,
    WriteConflict,
)
from application.ports import TokenGrant
from domain.model import Outcome
from tests.unit.application.conftest import World
from tests.unit.passes import FREE_PRODUCT, a_pass

USER = 7


def with_user(world: World, v1: list[dict], v4: list[dict] | None = None, token: str = "tok-7") -> None:
    world.tokens.put(USER, token, refresh="rt-7")
    world.bytemark.give(token, v1, v4)


async def test_build_without_a_token_is_no_valid_token_and_writes_nothing(world: World) -> None:
    result = await world.use_cases.build(USER)
    assert result.outcome is Outcome.NO_VALID_TOKEN
    assert world.caches.caches == {} and world.bytemark.fetches == []


async def test_build_stores_both_lists_and_never_notifies(world: World) -> None:
    with_user(world, [a_pass("a", product=FREE_PRODUCT)], [a_pass("e", status="EXPIRED")])
    result = await world.use_cases.build(USER)
    assert result.outcome is Outcome.BUILT
    assert (result.counts.passes, result.counts.passes4) == (1, 1)
    stored = world.caches.caches[USER]
    assert stored.version == 1 and result.cache == stored
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert world.notifier.free_notices == [] and world.refresh_log.free_ticket_rewards == []


async def test_build_replaces_an_existing_cache(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("b")])
    result = await world.use_cases.build(USER)
    assert [e.pass_uuid for e in world.caches.caches[USER].passes] == ["b"]
    assert result.cache is not None and result.cache.version == 2


async def test_check_builds_when_there_is_no_cache_then_updates(world: World) -> None:
    with_user(world, [a_pass("a")])
    assert (await world.use_cases.check(USER)).outcome is Outcome.BUILT
    assert (await world.use_cases.check(USER)).outcome is Outcome.UNCHANGED
    world.bytemark.give("tok-7", [a_pass("a"), a_pass("gift", product=FREE_PRODUCT)])
    world.clock.advance(60)
    result = await world.use_cases.check(USER)
    assert result.outcome is Outcome.UPDATED
    assert result.counts.new == 1 and result.counts.new_free == 1
    assert result.refreshed_at == world.clock.now()


async def test_an_update_with_a_new_free_pass_logs_rewards_and_notifies_once(world: World) -> None:
    with_user(world, [])
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("g1", product=FREE_PRODUCT), a_pass("g2", product=FREE_PRODUCT)])
    await world.use_cases.update(USER)
    assert world.refresh_log.free_ticket_rewards == [USER]
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert world.notifier.free_notices == [(USER, ["g1", "g2"])]
    assert [(e.pass_uuid, e.change.value) for e in world.ticket_log.entries] == [
        ("g1", "created"),
        ("g2", "created"),
    ]


async def test_update_moves_the_top_level_timestamp_even_when_unchanged(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.clock.advance(100)
    result = await world.use_cases.update(USER)
    assert result.outcome is Outcome.UNCHANGED
    assert world.caches.caches[USER].timestamp == world.clock.now()
    assert world.caches.caches[USER].passes[0].timestamp == world.clock.now() - 100


async def test_update_without_a_cache_is_not_found(world: World) -> None:
    with_user(world, [a_pass("a")])
    with pytest.raises(CacheNotFound):
        await world.use_cases.update(USER)


async def test_timeout_check_is_fresh_without_calling_bytemark(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.bytemark.fetches.clear()
    world.clock.advance(3600)
    result = await world.use_cases.check_timeout(USER, None)
    assert result.outcome is Outcome.FRESH and world.bytemark.fetches == []
    world.clock.advance(1)
    assert (await world.use_cases.check_timeout(USER, None)).outcome is Outcome.UNCHANGED
    assert len(world.bytemark.fetches) == 1


async def test_timeout_check_honours_a_per_call_max_age(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.clock.advance(11)
    assert (await world.use_cases.check_timeout(USER, 10)).outcome is Outcome.UNCHANGED
    assert (await world.use_cases.check_timeout(USER, 10)).outcome is Outcome.FRESH


async def test_timeout_check_without_a_cache_builds(world: World) -> None:
    with_user(world, [a_pass("a")])
    assert (await world.use_cases.check_timeout(USER, None)).outcome is Outcome.BUILT


async def test_an_expired_access_token_is_refreshed_once_stored_and_used(world: World) -> None:
    world.tokens.put(USER, "old", refresh="rt-7")
    world.bytemark.rejected_tokens.add("old")
    world.bytemark.refresh_grants["rt-7"] = TokenGrant("new", "rt-8", 3600)
    world.bytemark.give("new", [a_pass("a")])
    result = await world.use_cases.check(USER)
    assert result.outcome is Outcome.BUILT
    assert world.bytemark.fetches == ["old", "new"] and world.bytemark.refreshes == ["rt-7"]
    [(user, access, refresh, expires_at)] = world.tokens.saves
    assert (user, access, refresh) == (USER, "new", "rt-8") and expires_at is not None


async def test_a_dead_refresh_token_is_no_valid_token_and_keeps_the_cache(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    before = world.caches.caches[USER]
    world.bytemark.rejected_tokens.add("tok-7")
    result = await world.use_cases.check(USER)
    assert result.outcome is Outcome.NO_VALID_TOKEN
    assert world.caches.caches[USER] == before


async def test_a_401_without_a_refresh_token_is_no_valid_token(world: World) -> None:
    world.tokens.put(USER, "old", refresh=None)
    world.bytemark.rejected_tokens.add("old")
    assert (await world.use_cases.check(USER)).outcome is Outcome.NO_VALID_TOKEN


async def test_a_token_rejected_again_after_refresh_is_unavailable(world: World) -> None:
    world.tokens.put(USER, "old", refresh="rt")
    world.bytemark.rejected_tokens.update({"old", "new"})
    world.bytemark.refresh_grants["rt"] = TokenGrant("new", None, None)
    with pytest.raises(UpstreamUnavailable, match="again right after a refresh"):
        await world.use_cases.check(USER)
    assert world.tokens.tokens[USER].refresh_token == "rt"  # kept when the grant had none


async def test_an_upstream_failure_leaves_the_stored_cache_as_it_was(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    before = world.caches.caches[USER]
    world.bytemark.failing_users["tok-7"] = "HTTP 503 after 4 attempts"
    with pytest.raises(UpstreamUnavailable, match="503"):
        await world.use_cases.check(USER)
    assert world.caches.caches[USER] == before
    assert world.ticket_log.entries == []


async def test_a_lost_write_race_is_retried_once_against_the_new_version(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.caches.conflicts_to_inject = 1
    result = await world.use_cases.update(USER)
    assert result.outcome is Outcome.UNCHANGED and world.caches.caches[USER].version == 2


async def test_losing_the_write_race_twice_is_a_conflict_and_nothing_is_logged(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("a"), a_pass("b")])
    world.caches.conflicts_to_inject = 2
    with pytest.raises(WriteConflict):
        await world.use_cases.update(USER)
    assert world.ticket_log.entries == []


async def test_a_build_that_loses_every_write_is_a_conflict(world: World) -> None:
    with_user(world, [a_pass("a")])
    world.caches.conflicts_to_inject = 3  # the first insert, then a compare-and-set after each read
    with pytest.raises(WriteConflict):
        await world.use_cases.build(USER)


async def test_a_build_that_loses_its_first_insert_and_one_race_still_stores_the_cache(world: World) -> None:
    with_user(world, [a_pass("a")])
    world.caches.conflicts_to_inject = 2
    result = await world.use_cases.build(USER)
    assert result.outcome is Outcome.BUILT and world.caches.caches[USER].version == 1


async def test_a_build_of_a_rider_without_a_cache_inserts_without_reading_first(world: World) -> None:
    """A read that finds nothing is the costly one on FerretDB v1 (a scan of the collection)."""
    with_user(world, [a_pass("a")])
    reads: list[int] = []
    original = world.caches.get

    async def counting_get(user_id: int) -> object:
        reads.append(user_id)
        return await original(user_id)

    world.caches.get = counting_get  # type: ignore[method-assign,assignment]
    assert (await world.use_cases.build(USER)).outcome is Outcome.BUILT
    assert reads == [] and world.caches.caches[USER].version == 1


async def test_concurrent_checks_of_one_user_share_one_bytemark_fetch(world: World) -> None:
    with_user(world, [a_pass("a")])
    world.bytemark.delay = 0.05
    results = await asyncio.gather(*(world.use_cases.check(USER) for _ in range(50)))
    assert len(world.bytemark.fetches) == 1
    assert {r.outcome for r in results} == {Outcome.BUILT}
    assert world.caches.saves == 1


async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh(world: World) -> None:
    with_user(world, [a_pass("a")])
    world.bytemark.delay = 0.05
    first = asyncio.create_task(world.use_cases.check(USER))
    second = asyncio.create_task(world.use_cases.check(USER))
    await asyncio.sleep(0.01)
    first.cancel()
    assert (await second).outcome is Outcome.BUILT
    assert USER in world.caches.caches


@pytest.mark.parametrize("user_id", [0, -1, 2**63])
async def test_invalid_user_ids_are_refused_naming_the_field(world: World, user_id: int) -> None:
    for call in (
        world.use_cases.build,
        world.use_cases.check,
        world.use_cases.update,
        world.use_cases.get_cache,
    ):
        with pytest.raises(InvalidArgument) as refused:
            await call(user_id)
        assert refused.value.field == "user_id"


@pytest.mark.parametrize("max_age", [-1, 30 * 24 * 3600 + 1])
async def test_out_of_range_max_age_is_refused(world: World, max_age: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await world.use_cases.check_timeout(USER, max_age)
    assert refused.value.field == "max_age_seconds"


async def test_get_cache_reads_without_calling_bytemark(world: World) -> None:
    with_user(world, [a_pass("a")])
    with pytest.raises(CacheNotFound):
        await world.use_cases.get_cache(USER)
    await world.use_cases.build(USER)
    world.bytemark.fetches.clear()
    cache = await world.use_cases.get_cache(USER)
    assert cache.passes[0].pass_uuid == "a" and world.bytemark.fetches == []


async def test_a_rotated_token_the_token_store_refuses_is_kept_used_and_delivered_once_later(
    world: World,
) -> None:
    world.tokens.put(USER, "old", refresh="rt-7")
    world.bytemark.rejected_tokens.add("old")
    world.bytemark.refresh_grants["rt-7"] = TokenGrant("new", "rt-8", 3600)
    world.bytemark.give("new", [a_pass("a")])
    world.tokens.unavailable = True

    assert (await world.use_cases.check(USER)).outcome is Outcome.BUILT
    assert world.tokens.tokens[USER].refresh_token == "rt-7"  # not delivered yet
    assert (await world.use_cases.check(USER)).outcome is Outcome.UNCHANGED
    assert world.bytemark.fetches[-1] == "new"  # the pending token, not the stored one

    world.tokens.unavailable = False
    await world.use_cases.relay.deliver(await world.caches.outbox.pending(100))
    await world.use_cases.relay.deliver([r for r in world.caches.outbox.records])  # nothing left
    assert world.tokens.tokens[USER].refresh_token == "rt-8"
    assert len(world.tokens.saves) == 1 and world.caches.outbox.records == []


async def test_logs_whose_store_is_down_do_not_fail_the_refresh_and_land_once_when_it_returns(
    world: World,
) -> None:
    with_user(world, [])
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("gift", product=FREE_PRODUCT)])
    world.refresh_log.unavailable = world.ticket_log.unavailable = True

    result = await world.use_cases.update(USER)

    assert result.outcome is Outcome.UPDATED
    assert world.refresh_log.free_ticket_rewards == [] and world.ticket_log.entries == []
    pending = await world.caches.outbox.pending(100)
    world.refresh_log.unavailable = world.ticket_log.unavailable = False
    assert await world.use_cases.relay.deliver(pending)
    assert await world.use_cases.relay.deliver(pending)  # a second delivery (crash before mark) is ignored
    assert world.refresh_log.free_ticket_rewards == [USER]
    assert [e.pass_uuid for e in world.ticket_log.entries] == ["gift"]


async def test_a_users_later_records_wait_behind_one_that_failed(world: World) -> None:
    with_user(world, [])
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("gift", product=FREE_PRODUCT)])
    world.ticket_log.unavailable = True
    await world.use_cases.update(USER)
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert [r.target.value for r in world.caches.outbox.records] == ["ticket_log", "refresh_log"]
    assert world.refresh_log.free_ticket_rewards == []
    assert world.notifier.free_notices == [(USER, ["gift"])]  # a notice waits behind no store


async def test_the_cache_write_carries_the_diff_against_the_replaced_cache_for_the_feed(world: World) -> None:
    with_user(world, [a_pass("a"), a_pass("b")])
    await world.use_cases.build(USER)
    world.bytemark.give("tok-7", [a_pass("b"), a_pass("c")])
    await world.use_cases.build(USER)
    kinds = [(c.pass_uuid, c.kind.value) for c in world.caches.changes]
    assert kinds == [("a", "added"), ("b", "added"), ("c", "added"), ("a", "removed")]


async def test_a_timeout_check_of_a_stale_cache_reads_it_once_before_fetching(world: World) -> None:
    with_user(world, [a_pass("a")])
    await world.use_cases.build(USER)
    world.clock.advance(3601)
    reads: list[int] = []
    original = world.caches.get

    async def counting_get(user_id: int):  # type: ignore[no-untyped-def]
        reads.append(len(world.bytemark.fetches))
        return await original(user_id)

    world.caches.get = counting_get  # type: ignore[method-assign]
    assert (await world.use_cases.check_timeout(USER, None)).outcome is Outcome.UNCHANGED
    # one read to judge staleness, one for the compare-and-set after the fetch
    assert reads == [1, 2]
