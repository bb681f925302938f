"""Outbox contract: records commit with the cache write or not at all, on every cache backend, and
each delivery target takes a record once however often it is delivered."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from application.errors import WriteConflict
from application.outbox import (
    RotatedToken,
    Target,
    free_ticket_reward_record,
    ticket_log_record,
    token_record,
)
from domain.model import Change, PassList, TicketCache, TicketLogEntry
from tests.contract.cache_fixtures import Backend
from tests.contract.conftest import StoreEngine

NOW = 1_700_000_000


def entry(user_id: int, uuid: str) -> TicketLogEntry:
    return TicketLogEntry(user_id, uuid, PassList.PASSES, Change.CREATED, "ACTIVE", {"uuid": uuid}, "h", NOW)


async def test_records_written_with_the_cache_are_pending_until_marked_delivered(backend: Backend) -> None:
    first = await backend.cache_store.save(TicketCache(5, NOW), None)
    records = [ticket_log_record(entry(5, "a"), NOW), free_ticket_reward_record(5, NOW)]

    await backend.cache_store.save(TicketCache(5, NOW + 1), first.version, records)

    pending = await backend.outbox.pending(10)
    assert [(r.record_id, r.target) for r in pending] == [(r.record_id, r.target) for r in records]
    assert pending[0].entry == records[0].entry
    await backend.outbox.mark_delivered(pending[:1])
    assert [r.record_id for r in await backend.outbox.pending(10)] == [records[1].record_id]
    cache = await backend.cache_store.get(5)
    assert cache is not None and cache.timestamp == NOW + 1


async def test_a_lost_compare_and_set_stores_neither_the_cache_nor_its_records(backend: Backend) -> None:
    await backend.cache_store.save(TicketCache(6, NOW), None)
    with pytest.raises(WriteConflict):
        await backend.cache_store.save(TicketCache(6, NOW + 5), 7, [free_ticket_reward_record(6, NOW)])
    with pytest.raises(WriteConflict):
        await backend.cache_store.save(TicketCache(6, NOW + 5), None, [free_ticket_reward_record(6, NOW)])
    assert await backend.outbox.pending(10) == []
    cache = await backend.cache_store.get(6)
    assert cache is not None and cache.timestamp == NOW


async def test_the_newest_pending_rotated_token_is_read_back_decrypted(backend: Backend) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    older = token_record(8, RotatedToken("at-1", "rt-1", None), NOW)
    newer = token_record(8, RotatedToken("at-2", "rt-2", expires), NOW + 1)
    await backend.outbox.add([older])
    await backend.outbox.add([newer])

    assert await backend.outbox.newest_token(8) == RotatedToken("at-2", "rt-2", expires)
    assert await backend.outbox.newest_token(9) is None
    backlog = await backend.outbox.backlog()
    assert backlog.pending[Target.TOKEN] == 2 and backlog.oldest_created_at == NOW
    await backend.outbox.mark_delivered([older, newer])
    assert await backend.outbox.newest_token(8) is None


async def test_a_ticket_log_record_delivered_twice_is_logged_once(backend: Backend) -> None:
    record = ticket_log_record(entry(11, "p"), NOW)
    assert record.entry is not None
    await backend.ticket_log.deliver(record.record_id, record.entry)
    await backend.ticket_log.deliver(record.record_id, record.entry)
    assert [e["pass_uuid"] for e in await backend.ticket_log.entries_for_user(11)] == ["p"]


async def test_a_reward_record_delivered_twice_is_one_row(store_engine: StoreEngine) -> None:
    log = store_engine.refresh_log()
    await log.create_schema()
    record = free_ticket_reward_record(21, NOW)
    await log.deliver_free_ticket_reward(record.record_id, 21)
    await log.deliver_free_ticket_reward(record.record_id, 21)
    rows = await store_engine.raw.fetchall("SELECT user_id FROM bytemark_ticket_refresh_log")
    assert rows == [(21,)]
