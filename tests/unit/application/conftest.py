from __future__ import annotations

from dataclasses import dataclass

import pytest

from application.refresh import RefreshDependencies
from application.sync_tracking import SyncPolicy
from application.use_cases import TicketCacheUseCases
from domain.free_tickets import FreeTicketPolicy
from domain.outage import OutageRule
from tests.unit.fakes import (
    FakeBytemark,
    FakeCacheStore,
    FakeClock,
    FakeNotifier,
    FakeRefreshLog,
    FakeSyncStateStore,
    FakeTicketLog,
    FakeTokenStore,
)


@dataclass
class World:
    tokens: FakeTokenStore
    caches: FakeCacheStore
    ticket_log: FakeTicketLog
    refresh_log: FakeRefreshLog
    bytemark: FakeBytemark
    notifier: FakeNotifier
    clock: FakeClock
    use_cases: TicketCacheUseCases
    sync_states: FakeSyncStateStore


@pytest.fixture
def world() -> World:
    return make_world()


def make_world(store_outage_grace_seconds: float = 30.0, tokens: FakeTokenStore | None = None) -> World:
    tokens, caches = tokens or FakeTokenStore(), FakeCacheStore()
    ticket_log, refresh_log = FakeTicketLog(), FakeRefreshLog()
    bytemark, notifier, clock = FakeBytemark(), FakeNotifier(), FakeClock()
    deps = RefreshDependencies(
        tokens=tokens,
        caches=caches,
        ticket_log=ticket_log,
        refresh_log=refresh_log,
        passes_source=bytemark,
        token_refresher=bytemark,
        notifier=notifier,
        clock=clock,
        outbox=caches.outbox,
    )
    sync_states = FakeSyncStateStore()
    use_cases = TicketCacheUseCases(
        deps,
        free_tickets=FreeTicketPolicy(),
        cache_timeout_seconds=3600,
        bulk_concurrency=4,
        sync_states=sync_states,
        sync_policy=SyncPolicy(
            jitter=lambda: 1.0,
            outage=OutageRule(window=10, ratio=0.8),
            store_outage_grace_seconds=store_outage_grace_seconds,
        ),
    )
    return World(tokens, caches, ticket_log, refresh_log, bytemark, notifier, clock, use_cases, sync_states)
