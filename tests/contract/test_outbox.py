"""Outbox contract: records commit with the cache write or not at all, on every cache backend, and
each delivery target takes a record once however often it is delivered."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from adapters.driven.storage.mysql.delivered_ids import MysqlDeliveredIds
from adapters.driven.storage.sql import delivered_ids_table
from adapters.driven.storage.sqlite.delivered_ids import SqliteDeliveredIds
from application.errors import WriteConflict
from application.notices import BulkJob, BulkSummary, FreeTicket, Notice, RiderFreeTickets
from application.outbox import (
    RUN_NOTICE_USER_ID,
    RotatedToken,
    Target,
    free_ticket_reward_record,
    notice_record,
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


async def test_the_backlog_counts_every_pending_record_and_finds_the_oldest_however_many_are_pending(
    backend: Backend,
) -> None:
    # more than the 10,000 pending records a read returns: the oldest sits in a cache after them
    many_tokens = [token_record(u, RotatedToken("at", None, None), NOW + 10) for u in range(100, 10_101)]
    await backend.outbox.add(many_tokens)
    first = await backend.cache_store.save(TicketCache(12, NOW), None)
    oldest = [ticket_log_record(entry(12, "o"), NOW - 100), free_ticket_reward_record(12, NOW - 50)]
    await backend.cache_store.save(TicketCache(12, NOW + 1), first.version, oldest)

    backlog = await backend.outbox.backlog()

    assert backlog.oldest_created_at == NOW - 100
    assert backlog.pending[Target.TOKEN] == 10_001
    assert backlog.pending[Target.TICKET_LOG] == 1 and backlog.pending[Target.REFRESH_LOG] == 1
    await backend.outbox.mark_delivered(oldest)
    assert (await backend.outbox.backlog()).oldest_created_at == NOW + 10


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


async def test_a_record_delivered_twice_logs_nothing_at_warning_it_is_the_claim_working(
    store_engine: StoreEngine, caplog: pytest.LogCaptureFixture
) -> None:
    log = store_engine.refresh_log()
    await log.create_schema()
    record = free_ticket_reward_record(22, NOW)
    caplog.clear()

    await log.deliver_free_ticket_reward(record.record_id, 22)
    await log.deliver_free_ticket_reward(record.record_id, 22)  # a second relay, turned away

    # asyncmy logged INSERT IGNORE's "Duplicate entry '<id>' for key 'PRIMARY'" note as a WARNING
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert await claimed_ids(store_engine) == [record.record_id]


def delivered_ids(store_engine: StoreEngine) -> SqliteDeliveredIds | MysqlDeliveredIds:
    if store_engine.sqlite_db is not None:
        return SqliteDeliveredIds(store_engine.sqlite_db)
    assert store_engine.mysql_db is not None
    return MysqlDeliveredIds(store_engine.mysql_db)


async def claimed_ids(store_engine: StoreEngine) -> list[str]:
    rows = await store_engine.raw.fetchall(
        "SELECT record_id FROM bytemark_outbox_delivered ORDER BY record_id"
    )
    return [row[0] for row in rows]


async def test_a_claim_is_stamped_with_the_delivery_time_in_utc(store_engine: StoreEngine) -> None:
    log = store_engine.refresh_log()
    await log.create_schema()
    await log.deliver_free_ticket_reward(free_ticket_reward_record(31, NOW).record_id, 31)

    ((stamped,),) = await store_engine.raw.fetchall("SELECT delivered_at FROM bytemark_outbox_delivered")
    stamped_at = stamped if isinstance(stamped, datetime) else datetime.fromisoformat(stamped)
    # the sweep's horizon is UTC from the service's clock: a store clock or zone would skew it
    assert abs(stamped_at.replace(tzinfo=UTC) - datetime.now(UTC)) < timedelta(seconds=30)


async def test_the_sweep_forgets_ids_claimed_before_the_horizon_and_keeps_later_ones(
    store_engine: StoreEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivered_ids_table, "SWEEP_BATCH", 2)  # several DELETE rounds
    log = store_engine.refresh_log()
    await log.create_schema()
    old = [free_ticket_reward_record(41, NOW) for _ in range(5)]
    recent = free_ticket_reward_record(42, NOW)
    for record in [*old, recent]:
        await log.deliver_free_ticket_reward(record.record_id, record.user_id)
    marks = ", ".join("?" * len(old))
    await store_engine.raw.execute(
        "UPDATE bytemark_outbox_delivered SET delivered_at = '2026-01-01 00:00:00'"
        f" WHERE record_id IN ({marks})",
        [record.record_id for record in old],
    )

    removed = await delivered_ids(store_engine).sweep_delivered(datetime(2026, 1, 2, tzinfo=UTC))

    assert removed == 5
    assert await claimed_ids(store_engine) == [recent.record_id]
    # the kept id still guards its record: a redelivery writes no second row
    await log.deliver_free_ticket_reward(recent.record_id, 42)
    rows = await store_engine.raw.fetchall(
        "SELECT user_id FROM bytemark_ticket_refresh_log WHERE user_id = 42"
    )
    assert rows == [(42,)]
    assert await delivered_ids(store_engine).sweep_delivered(datetime(2026, 1, 2, tzinfo=UTC)) == 0


async def test_a_delivered_table_from_before_the_sweep_gets_its_delivered_at_index(
    store_engine: StoreEngine,
) -> None:
    # the table as the first outbox release created it: no index on delivered_at
    await store_engine.raw.execute(
        "CREATE TABLE bytemark_outbox_delivered (record_id CHAR(24) NOT NULL PRIMARY KEY,"
        " delivered_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)",
        [],
    )

    await store_engine.refresh_log().create_schema()
    await store_engine.refresh_log().create_schema()  # a second start finds it in place

    if store_engine.sqlite_db is not None:
        rows = await store_engine.raw.fetchall("PRAGMA index_list(bytemark_outbox_delivered)")
        names = {row[1] for row in rows}
    else:
        rows = await store_engine.raw.fetchall("SHOW INDEX FROM bytemark_outbox_delivered")
        names = {row[2] for row in rows}
    assert "idx_bytemark_outbox_delivered_at" in names  # the sweep's range delete uses it


async def test_slack_notices_round_trip_with_the_cache_write_and_on_their_own(backend: Backend) -> None:
    rider = RiderFreeTickets(41, (FreeTicket("gift", "Free Day Pass"), FreeTicket("gift-2")))
    summary = BulkSummary(
        BulkJob.REFRESH_STALE, 200, 200, 1, {"UpstreamUnavailable": 1}, (9,), free_tickets=(rider,),
        more_free_ticket_riders=3, skipped_by_reason={"backoff": 2}, stopped="stopped early: why",
    )  # fmt: skip
    with_cache = notice_record(41, Notice(free_tickets=rider), NOW)
    run_notice = notice_record(RUN_NOTICE_USER_ID, Notice(summary=summary), NOW)
    await backend.cache_store.save(TicketCache(41, NOW), None, [with_cache])
    await backend.outbox.add([run_notice])

    pending = {r.record_id: r for r in await backend.outbox.pending(10)}
    await backend.outbox.mark_delivered(list(pending.values()))

    assert pending[with_cache.record_id].notice == with_cache.notice
    assert pending[run_notice.record_id].notice == run_notice.notice
    assert {r.target for r in pending.values()} == {Target.SLACK}
    assert await backend.outbox.pending(10) == []  # the run's notice, stored on its own, too


async def test_a_notice_is_claimed_once_until_its_claim_is_released(store_engine: StoreEngine) -> None:
    log = store_engine.refresh_log()
    await log.create_schema()  # creates bytemark_outbox_delivered
    claims = delivered_ids(store_engine)

    first, second = await claims.claim_once("notice-1"), await claims.claim_once("notice-1")
    await claims.release("notice-1")
    after_release = await claims.claim_once("notice-1")

    assert (first, second, after_release) == (True, False, True)
    assert await claimed_ids(store_engine) == ["notice-1"]
