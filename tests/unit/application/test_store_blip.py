"""A bulk run rides out a blip of our own store: riders caught by it are retried and new ones
wait, so nobody fails; a store away past STORE_OUTAGE_GRACE_SECONDS stops the run with a reason
and puts nobody into backoff; unary calls still fail at once."""

from __future__ import annotations

import asyncio

import pytest

from application.errors import StoreUnavailable
from application.ports import UserToken
from application.results import BulkProgress
from domain.sync_state import SyncState
from tests.unit.application.conftest import World, make_world
from tests.unit.fakes import FakeTokenStore
from tests.unit.passes import a_pass

RIDERS = list(range(1, 41))


class BlinkingTokenStore(FakeTokenStore):
    """Token reads fail while `down`; it goes down at the `fail_at`-th read, for `down_seconds`
    (None: for good)."""

    def __init__(self, fail_at: int, down_seconds: float | None) -> None:
        super().__init__()
        self.reads = 0
        self.refused = 0
        self.down = False
        self._fail_at = fail_at
        self._down_seconds = down_seconds

    async def get_token(self, user_id: int) -> UserToken | None:
        self.reads += 1
        if self.reads == self._fail_at:
            self.down = True
            if self._down_seconds is not None:
                asyncio.get_running_loop().call_later(self._down_seconds, setattr, self, "down", False)
        if self.down:
            self.refused += 1
            raise StoreUnavailable("FakeTokenStore", "cannot get a connection")
        return await super().get_token(user_id)


def world_with(tokens: BlinkingTokenStore, grace: float) -> World:
    world = make_world(store_outage_grace_seconds=grace, tokens=tokens)
    for user_id in RIDERS:
        tokens.put(user_id, f"tok-{user_id}", refresh=f"ref-{user_id}")
        world.bytemark.give(f"tok-{user_id}", [a_pass(f"p-{user_id}")])
    return world


async def refresh_all(world: World) -> list[BulkProgress]:
    return [event async for event in world.use_cases.refresh_stale(1, None, 0, 0, [])]


async def test_a_store_blip_mid_run_fails_nobody_and_every_rider_is_refreshed() -> None:
    tokens = BlinkingTokenStore(fail_at=12, down_seconds=0.6)
    world = world_with(tokens, grace=30)

    events = await refresh_all(world)

    assert tokens.refused > 0  # the blip did hit riders in flight
    assert events[-1].failed == 0 and events[-1].done == len(RIDERS) and not events[-1].stopped
    assert sorted(e.user_id for e in events if e.user_id is not None) == RIDERS
    assert {e.result.user_id for e in events if e.result is not None} == set(RIDERS)
    assert {s.state for s in world.sync_states.statuses.values()} == {SyncState.OK}


async def test_a_store_away_past_the_grace_stops_the_run_saying_why_and_backs_nobody_off() -> None:
    tokens = BlinkingTokenStore(fail_at=12, down_seconds=None)
    world = world_with(tokens, grace=0.5)

    events = await asyncio.wait_for(refresh_all(world), timeout=20)

    last = events[-1]
    assert last.user_id is None and "our store did not answer for 0.5 s" in last.stopped
    assert "no backoff" in last.stopped and "FakeTokenStore" not in last.stopped
    assert last.done < len(RIDERS)  # the riders not started yet were left alone
    failed = [e for e in events if e.error is not None]
    assert len(failed) == last.failed <= 4  # only those in flight (concurrency 4) when it ended
    assert all(isinstance(e.error, StoreUnavailable) for e in failed)
    assert all(s.state is SyncState.OK for s in world.sync_states.statuses.values())
    assert all(s.next_attempt_at is None for s in world.sync_states.statuses.values())


async def test_unary_calls_still_fail_at_once_while_the_store_is_away() -> None:
    tokens = BlinkingTokenStore(fail_at=1, down_seconds=None)
    world = world_with(tokens, grace=30)

    with pytest.raises(StoreUnavailable):
        await asyncio.wait_for(world.use_cases.check(1), timeout=2)
    assert tokens.refused == 1
