"""Sync state through the use cases: AUTH_REQUIRED and backoff skips in bulk runs, explicit
calls that always try, the general-outage stop, proactive token refresh, and status paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.errors import InvalidArgument, SyncStatusNotFound, UpstreamUnavailable
from application.ports import TokenGrant
from application.results import BulkProgress
from domain.model import Outcome
from domain.sync_state import SkipReason, SyncState
from tests.unit.application.conftest import World
from tests.unit.passes import a_pass


def add_users(world: World, user_ids: range | list[int]) -> None:
    for user_id in user_ids:
        world.tokens.put(user_id, f"tok-{user_id}", refresh=f"ref-{user_id}")
        world.bytemark.give(f"tok-{user_id}", [a_pass(f"p-{user_id}")])


async def refresh_all(world: World, user_ids: list[int] | None = None) -> list[BulkProgress]:
    stream = world.use_cases.refresh_stale(1, None, 0, 0, user_ids or [])
    return [event async for event in stream]


def revoke(world: World, user_id: int) -> None:
    world.bytemark.rejected_tokens.add(f"tok-{user_id}")  # 401, and no grant for its refresh token


async def test_a_revoked_rider_reaches_auth_required(world: World) -> None:
    add_users(world, [1])
    revoke(world, 1)
    result = await world.use_cases.check(1)
    assert result.outcome is Outcome.NO_VALID_TOKEN
    status = await world.use_cases.get_sync_status(1)
    assert status.state is SyncState.AUTH_REQUIRED
    assert status.last_error is not None and "invalid_grant" in status.last_error.message
    assert status.consecutive_failures == 1 and status.next_attempt_at is None


async def test_bulk_runs_skip_auth_required_riders_without_calling_bytemark(world: World) -> None:
    add_users(world, [1, 2])
    revoke(world, 1)
    await world.use_cases.check(1)
    world.bytemark.fetches.clear()
    world.bytemark.refreshes.clear()
    world.clock.advance(7200)

    events = await refresh_all(world)

    assert "tok-1" not in world.bytemark.fetches and world.bytemark.refreshes == []
    skipped = [e for e in events if e.skipped is not None]
    assert [(e.user_id, e.skipped.reason) for e in skipped if e.skipped] == [(1, SkipReason.AUTH_REQUIRED)]
    assert events[-1].skipped_by_reason == {SkipReason.AUTH_REQUIRED: 1}
    assert events[-1].done == 2 and events[-1].failed == 0


async def test_new_tokens_bring_an_auth_required_rider_back_on_the_next_run(world: World) -> None:
    add_users(world, [1])
    revoke(world, 1)
    await world.use_cases.check(1)
    world.tokens.put(1, "tok-1-new", refresh="ref-1-new")  # the app stored a new login
    world.bytemark.give("tok-1-new", [a_pass("p-1")])
    world.clock.advance(60)

    events = await refresh_all(world)

    assert events[0].result is not None and events[0].result.outcome is Outcome.BUILT
    assert (await world.use_cases.get_sync_status(1)).state is SyncState.OK


async def test_a_touched_token_row_with_the_same_tokens_is_retried_too(world: World) -> None:
    add_users(world, [1])
    revoke(world, 1)
    await world.use_cases.check(1)
    world.clock.advance(60)
    later = datetime.fromtimestamp(world.clock.now(), UTC)
    world.tokens.put(1, "tok-1", refresh="ref-1", updated_at=later)
    world.bytemark.fetches.clear()
    await refresh_all(world)
    assert world.bytemark.fetches == ["tok-1"]


async def test_failing_riders_back_off_in_bulk_runs_and_recover_after_a_success(world: World) -> None:
    add_users(world, [1, 2])
    world.bytemark.failing_users["tok-1"] = "HTTP 500 after 4 attempts"

    events = await refresh_all(world)
    assert [e.user_id for e in events if e.error is not None] == [1]
    status = await world.use_cases.get_sync_status(1)
    assert status.state is SyncState.FAILING and status.consecutive_failures == 1
    assert status.next_attempt_at == world.clock.now() + 60  # jitter 1.0: the full base delay
    assert status.last_error is not None and status.last_error.code == "UNAVAILABLE"

    world.bytemark.fetches.clear()
    events = await refresh_all(world)
    assert "tok-1" not in world.bytemark.fetches
    assert events[-1].skipped_by_reason == {SkipReason.BACKOFF: 1}

    del world.bytemark.failing_users["tok-1"]
    world.clock.advance(60)
    await refresh_all(world)
    status = await world.use_cases.get_sync_status(1)
    assert status.state is SyncState.OK and status.consecutive_failures == 0
    assert status.last_success_at == world.clock.now()


async def test_consecutive_failures_double_the_backoff(world: World) -> None:
    add_users(world, [1])
    world.bytemark.failing_users["tok-1"] = "HTTP 500"
    await refresh_all(world)
    world.clock.advance(60)
    await refresh_all(world)
    status = await world.use_cases.get_sync_status(1)
    assert status.consecutive_failures == 2
    assert status.next_attempt_at == world.clock.now() + 120


async def test_explicit_calls_always_try_whatever_the_state(world: World) -> None:
    add_users(world, [1])
    world.bytemark.failing_users["tok-1"] = "HTTP 500"
    with pytest.raises(UpstreamUnavailable):
        await world.use_cases.check(1)
    del world.bytemark.failing_users["tok-1"]
    result = await world.use_cases.check(1)  # still within the backoff: a caller asked
    assert result.outcome is Outcome.BUILT
    assert (await world.use_cases.get_sync_status(1)).state is SyncState.OK


async def test_a_failed_call_tells_the_caller_to_wait_out_the_riders_backoff(world: World) -> None:
    add_users(world, [1])
    world.bytemark.failing_users["tok-1"] = "HTTP 500 after 4 attempts"
    waits = []
    for _ in range(2):
        with pytest.raises(UpstreamUnavailable) as raised:
            await world.use_cases.check(1)
        waits.append(raised.value.retry_after)
    assert waits == [60, 120]  # jitter 1.0: the full delay, doubling as the bulk runs' backoff does


async def test_a_sync_store_blip_never_changes_the_answer_of_a_refresh(world: World) -> None:
    add_users(world, [1, 2])
    world.sync_states.down = True
    assert (await world.use_cases.check(1)).outcome is Outcome.BUILT
    world.bytemark.failing_users["tok-2"] = "HTTP 500"
    with pytest.raises(UpstreamUnavailable):
        await world.use_cases.check(2)
    world.sync_states.down = False
    assert world.sync_states.statuses == {}


async def test_a_fresh_cache_is_no_attempt_and_leaves_the_status_alone(world: World) -> None:
    add_users(world, [1])
    await world.use_cases.check(1)
    before = await world.use_cases.get_sync_status(1)
    world.clock.advance(10)
    result = await world.use_cases.check_timeout(1, 3600)
    assert result.outcome is Outcome.FRESH
    assert await world.use_cases.get_sync_status(1) == before


async def test_a_general_outage_stops_the_run_without_backing_everyone_off(world: World) -> None:
    add_users(world, range(1, 41))
    for user_id in range(1, 41):
        world.bytemark.failing_users[f"tok-{user_id}"] = "HTTP 503 after 4 attempts"

    events = await refresh_all(world)

    last = events[-1]
    assert last.user_id is None and "general outage" in last.stopped
    assert last.done < 40  # stopped early (window 10 in these tests, 4 workers in flight)
    assert world.sync_states.statuses == {}  # nobody was put into backoff
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    [summary] = world.notifier.summaries
    assert summary.stopped == last.stopped


async def test_riders_failing_on_their_own_amid_successes_are_backed_off(world: World) -> None:
    add_users(world, range(1, 31))
    for user_id in (3, 17):
        world.bytemark.failing_users[f"tok-{user_id}"] = "HTTP 500"
    events = await refresh_all(world)
    assert not events[-1].stopped
    failing = [u for u, s in world.sync_states.statuses.items() if s.state is SyncState.FAILING]
    assert sorted(failing) == [3, 17]


async def test_a_bulk_run_writes_statuses_in_batches(world: World) -> None:
    add_users(world, range(1, 451))
    await refresh_all(world)
    assert len(world.sync_states.statuses) == 450
    assert world.sync_states.writes <= 3  # 200 per round trip


async def test_a_token_about_to_expire_is_exchanged_before_fetching(world: World) -> None:
    soon = datetime.fromtimestamp(world.clock.now(), UTC) + timedelta(seconds=30)
    world.tokens.put(1, "tok-old", refresh="ref-1", expires_at=soon)
    world.bytemark.rejected_tokens.add("tok-old")
    world.bytemark.refresh_grants["ref-1"] = TokenGrant("tok-new", "ref-2", 3600)
    world.bytemark.give("tok-new", [a_pass("p-1")])

    result = await world.use_cases.check(1)

    assert result.outcome is Outcome.BUILT
    assert world.bytemark.fetches == ["tok-new"]  # no 401 round trip with the old token
    assert world.bytemark.refreshes == ["ref-1"]


async def test_a_token_far_from_expiry_is_used_as_it_is(world: World) -> None:
    later = datetime.fromtimestamp(world.clock.now(), UTC) + timedelta(hours=1)
    world.tokens.put(1, "tok-1", refresh="ref-1", expires_at=later)
    world.bytemark.give("tok-1", [a_pass("p-1")])
    await world.use_cases.check(1)
    assert world.bytemark.refreshes == []


async def test_a_rider_never_seen_has_no_sync_status(world: World) -> None:
    with pytest.raises(SyncStatusNotFound):
        await world.use_cases.get_sync_status(99)
    with pytest.raises(InvalidArgument, match="user_id"):
        await world.use_cases.get_sync_status(0)


async def test_status_pages_cover_every_rider_once_in_user_id_order(world: World) -> None:
    add_users(world, range(1, 24))
    for user_id in (5, 6, 7):
        world.bytemark.failing_users[f"tok-{user_id}"] = "HTTP 500"
    await refresh_all(world)

    seen: list[int] = []
    token = ""
    while True:
        page = await world.use_cases.list_sync_statuses(None, 5, token)
        assert len(page.statuses) <= 5
        seen += [s.user_id for s in page.statuses]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(range(1, 24))

    page = await world.use_cases.list_sync_statuses(SyncState.FAILING, 2, "")
    assert [s.user_id for s in page.statuses] == [5, 6] and page.next_page_token
    rest = await world.use_cases.list_sync_statuses(SyncState.FAILING, 2, page.next_page_token)
    assert [s.user_id for s in rest.statuses] == [7] and rest.next_page_token == ""


async def test_a_page_token_only_works_with_its_own_filter(world: World) -> None:
    add_users(world, range(1, 5))
    await refresh_all(world)
    page = await world.use_cases.list_sync_statuses(None, 2, "")
    with pytest.raises(InvalidArgument, match="page_token"):
        await world.use_cases.list_sync_statuses(SyncState.OK, 2, page.next_page_token)
    with pytest.raises(InvalidArgument, match="page_token"):
        await world.use_cases.list_sync_statuses(None, 2, "not-a-token")
    with pytest.raises(InvalidArgument, match="page_size"):
        await world.use_cases.list_sync_statuses(None, -1, "")


async def test_the_overview_counts_states_and_expiring_tokens(world: World) -> None:
    add_users(world, [1, 2, 3])
    revoke(world, 3)
    await refresh_all(world)
    expired = datetime.fromtimestamp(world.clock.now(), UTC) - timedelta(hours=1)
    world.tokens.put(2, "tok-2", refresh="ref-2", expires_at=expired)
    overview = await world.use_cases.sync_overview()
    assert overview.by_state == {SyncState.OK: 2, SyncState.FAILING: 0, SyncState.AUTH_REQUIRED: 1}
    assert overview.tokens_expiring == 1


# --- strangers: ids without a token row leave no trace ------------------------------------


async def test_calls_for_riders_without_a_token_row_answer_no_valid_token_and_store_no_status(
    world: World,
) -> None:
    strangers = [7_001, 7_002, 7_003, 7_004]

    results = [
        await world.use_cases.check(strangers[0]),
        await world.use_cases.build(strangers[1]),
        await world.use_cases.check_timeout(strangers[2], None),
    ]
    events = await refresh_all(world, [strangers[3]])

    assert [r.outcome for r in results] == [Outcome.NO_VALID_TOKEN] * 3
    assert [e.result.outcome for e in events if e.result] == [Outcome.NO_VALID_TOKEN]
    assert world.sync_states.statuses == {}
    assert (await world.use_cases.sync_overview(count_tokens=False)).by_state[SyncState.AUTH_REQUIRED] == 0


async def test_purge_removes_and_counts_the_sync_statuses_of_riders_without_a_token(world: World) -> None:
    add_users(world, [1, 2, 3])
    for user_id in (1, 2, 3):
        revoke(world, user_id)
        await world.use_cases.check(user_id)  # AUTH_REQUIRED, token row kept
    del world.tokens.tokens[2]

    dry = await world.use_cases.purge_orphans(dry_run=True)
    kept_by_the_dry_run = sorted(world.sync_states.statuses)
    done = await world.use_cases.purge_orphans(dry_run=False)
    again = await world.use_cases.purge_orphans(dry_run=False)

    assert (dry.sync_statuses, kept_by_the_dry_run) == (1, [1, 2, 3])
    assert done.sync_statuses == 1 and sorted(world.sync_states.statuses) == [1, 3]
    assert again.sync_statuses == 0
