"""The sweep of delivered record ids: it never forgets an id whose record a relay may still deliver."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.delivered_sweep import DeliveredIdSweep
from application.errors import StoreUnavailable
from application.outbox import OutboxBacklog, free_ticket_reward_record
from tests.unit.fakes import FakeClock, FakeOutbox

KEEP = 1000


class RecordingTable:
    def __init__(self) -> None:
        self.horizons: list[datetime] = []

    async def sweep_delivered(self, delivered_before: datetime) -> int:
        self.horizons.append(delivered_before)
        return 3


class UnreadableOutbox(FakeOutbox):
    async def backlog(self) -> OutboxBacklog:
        raise StoreUnavailable("MongoDB", "connection refused")


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def test_with_nothing_pending_ids_older_than_the_margin_are_swept_in_every_table() -> None:
    clock, tables = FakeClock(), [RecordingTable(), RecordingTable()]

    removed = await DeliveredIdSweep(FakeOutbox(), tables, clock, KEEP).sweep_once()

    assert removed == 6
    assert [t.horizons for t in tables] == [[at(clock.now() - KEEP)]] * 2


async def test_the_horizon_stays_behind_the_oldest_pending_record() -> None:
    clock, outbox, table = FakeClock(), FakeOutbox(), RecordingTable()
    await outbox.add([free_ticket_reward_record(1, clock.now() - 86_400 * 30)])
    clock.advance(5)

    await DeliveredIdSweep(outbox, [table], clock, KEEP).sweep_once()

    assert table.horizons == [at(clock.now() - 5 - 86_400 * 30 - KEEP)]


async def test_with_the_outbox_unreadable_nothing_is_swept() -> None:
    table = RecordingTable()

    with pytest.raises(StoreUnavailable):
        await DeliveredIdSweep(UnreadableOutbox(), [table], FakeClock(), KEEP).sweep_once()
    assert table.horizons == []
