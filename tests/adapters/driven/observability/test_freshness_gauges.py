"""The store-derived freshness gauges: what `serve` exports from the cache store's freshness, and a
read that has become slow (FerretDB's scan) stretching its own period instead of running back to
back."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from adapters.driven.observability.freshness_gauges import BUSY_SHARE, FreshnessGaugeRefresher
from application import periodic
from application.freshness import FreshnessQuery, StoreFreshness
from domain.model import TicketCache
from tests.unit.fakes import FakeCacheStore, FakeClock


def exported(max_age: int) -> tuple[float | None, float | None]:
    return (
        REGISTRY.get_sample_value("ticket_cache_store_oldest_cache_age_seconds"),
        REGISTRY.get_sample_value("ticket_cache_store_stale_riders", {"max_age_seconds": str(max_age)}),
    )


async def test_the_gauges_show_the_oldest_age_and_the_riders_past_the_max_age() -> None:
    clock, store = FakeClock(now=1_700_010_000), FakeCacheStore()
    for user_id, age in ((1, 30), (2, 4000), (3, 9000)):
        store.caches[user_id] = TicketCache(user_id, clock.now() - age, (), ())
    query = FreshnessQuery(store, clock, max_age_seconds=3600)

    await FreshnessGaugeRefresher(query.read, 60).refresh()

    assert exported(3600) == (9000, 2)


async def test_an_empty_store_is_not_stale() -> None:
    freshness = await FreshnessQuery(FakeCacheStore(), FakeClock(), max_age_seconds=77).read()

    assert freshness == StoreFreshness(oldest_cache_age_seconds=0, stale_riders=0, max_age_seconds=77)


async def test_a_slow_read_waits_long_enough_to_take_only_its_share_of_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now, waits = [0.0], []

    async def read() -> StoreFreshness:
        now[0] += 30.0 if len(waits) == 0 else 1.0  # first read 30 s (a scan), then 1 s
        return StoreFreshness(0, 0, 60)

    async def recorded_sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise asyncio.CancelledError

    monkeypatch.setattr(periodic.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(periodic.asyncio, "sleep", recorded_sleep)
    with pytest.raises(asyncio.CancelledError):
        await FreshnessGaugeRefresher(read, 60).run()

    assert waits == [pytest.approx(30 / BUSY_SHARE - 30), 60]  # a fast read keeps the period
