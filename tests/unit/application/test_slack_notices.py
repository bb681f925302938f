"""Slack notices go through the outbox: a unary update stores its rider's notice with the cache
write and the relay posts it; a bulk run posts one digest instead of one message per rider; a
notice Slack refuses stays pending and is posted once when Slack takes it, even with two relays."""

from __future__ import annotations

from application.errors import StoreUnavailable
from application.notices import DIGEST_RIDERS, RiderFreeTickets
from application.outbox import Target
from application.relay import OutboxRelay
from tests.unit.application.conftest import World
from tests.unit.fakes import FakeNotifier
from tests.unit.passes import FREE_PRODUCT, a_pass

RIDERS = list(range(1, DIGEST_RIDERS + 6))


def add_riders(world: World, user_ids: list[int]) -> None:
    for user_id in user_ids:
        world.tokens.put(user_id, f"tok-{user_id}", refresh=f"ref-{user_id}")
        world.bytemark.give(f"tok-{user_id}", [a_pass(f"p-{user_id}")])


async def build_then_give_free_tickets(world: World, user_ids: list[int]) -> None:
    for user_id in user_ids:
        await world.use_cases.build(user_id)
        world.bytemark.give(
            f"tok-{user_id}", [a_pass(f"p-{user_id}"), a_pass(f"gift-{user_id}", product=FREE_PRODUCT)]
        )
    world.clock.advance(7200)


async def test_a_unary_update_posts_its_notice_through_the_outbox_at_once(world: World) -> None:
    add_riders(world, [1])
    await build_then_give_free_tickets(world, [1])

    await world.use_cases.update(1)

    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert world.notifier.free_notices == [(1, ["gift-1"])]
    assert world.caches.outbox.records == []  # delivered and marked right after the write


async def test_a_bulk_run_posts_one_digest_instead_of_a_message_per_rider(world: World) -> None:
    add_riders(world, RIDERS)
    await build_then_give_free_tickets(world, RIDERS)

    events = [e async for e in world.use_cases.refresh_stale(None, None, 0, 0, [])]

    assert events[-1].done == len(RIDERS) and events[-1].failed == 0
    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert world.notifier.free_notices == []
    (summary,) = world.notifier.summaries
    assert len(summary.free_tickets) == DIGEST_RIDERS and summary.more_free_ticket_riders == 5
    assert {found.user_id for found in summary.free_tickets} <= set(RIDERS)
    assert all(t.pass_uuid == f"gift-{f.user_id}" for f in summary.free_tickets for t in f.tickets)


async def test_a_clean_bulk_run_with_no_free_tickets_posts_nothing(world: World) -> None:
    add_riders(world, [1, 2])
    for user_id in (1, 2):
        await world.use_cases.build(user_id)
    world.clock.advance(7200)

    _ = [e async for e in world.use_cases.refresh_stale(None, None, 0, 0, [])]

    await world.use_cases.relay.notices_posted()  # posted by a task of their own
    assert world.notifier.summaries == [] and world.notifier.free_notices == []


class ThrottledNotifier(FakeNotifier):
    """Refuses the first `refusals` posts, as Slack does while it answers 429 or is down."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def free_tickets_found(self, found: RiderFreeTickets) -> None:
        if self.refusals:
            self.refusals -= 1
            raise StoreUnavailable("Slack", "API error ratelimited (HTTP 429)")
        await super().free_tickets_found(found)


class Claims:
    def __init__(self) -> None:
        self.claimed: set[str] = set()

    async def claim_once(self, record_id: str) -> bool:
        first = record_id not in self.claimed
        self.claimed.add(record_id)
        return first

    async def release(self, record_id: str) -> None:
        self.claimed.discard(record_id)


async def test_a_refused_notice_stays_pending_and_two_relays_post_it_exactly_once(world: World) -> None:
    slack, claims = ThrottledNotifier(refusals=2), Claims()
    add_riders(world, [1])
    await build_then_give_free_tickets(world, [1])
    world.use_cases.relay._notifier = slack  # the use cases' relay posts right after the write

    await world.use_cases.update(1)
    pending = [r for r in world.caches.outbox.records if r.target is Target.SLACK]
    relays = [
        OutboxRelay(
            world.caches.outbox,
            world.ticket_log,
            world.refresh_log,
            world.tokens,
            notifier=slack,
            claims=claims,
        )
        for _ in range(2)
    ]
    landed = [await relay.deliver(pending) for relay in relays]  # the second refusal, then a post
    again = [await relay.deliver(pending) for relay in relays]  # both read the record again

    assert landed == [False, True] and again == [True, True]
    assert slack.free_notices == [(1, ["gift-1"])]  # exactly once
    assert claims.claimed == {pending[0].record_id}
    assert world.caches.outbox.records == []
