"""RefreshLog contract: one suite, run against every adapter (SQLite file and MariaDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.driven.storage.mysql.refresh_log import MysqlRefreshLog
from adapters.driven.storage.sqlite.refresh_log import SqliteRefreshLog
from tests.contract.conftest import StoreEngine

Log = SqliteRefreshLog | MysqlRefreshLog

COLUMNS = "user_id, activity_type, status, scheduled_on, created_at"


def as_utc(value: Any) -> datetime:
    """SQLite hands back text, MySQL a naive datetime; both hold UTC."""
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=UTC)


async def test_free_ticket_reward_is_one_pending_row(refresh_log: Log, store_engine: StoreEngine) -> None:
    before = datetime.now(UTC).replace(microsecond=0)

    await refresh_log.record_free_ticket_reward(77)

    rows = await store_engine.raw.fetchall(f"SELECT {COLUMNS} FROM bytemark_ticket_refresh_log")
    assert len(rows) == 1
    user_id, activity_type, status, scheduled_on, created_at = rows[0]
    assert (user_id, activity_type, status, scheduled_on) == (77, 2, 0, None)
    assert before <= as_utc(created_at) <= datetime.now(UTC) + timedelta(seconds=1)


async def test_every_reward_adds_a_row(refresh_log: Log, store_engine: StoreEngine) -> None:
    for user_id in (5, 6, 5):
        await refresh_log.record_free_ticket_reward(user_id)

    rows = await store_engine.raw.fetchall(
        "SELECT user_id, activity_type, status FROM bytemark_ticket_refresh_log ORDER BY id"
    )
    assert rows == [(5, 2, 0), (6, 2, 0), (5, 2, 0)]


async def test_rows_seeded_by_other_writers_are_left_alone(
    refresh_log: Log, store_engine: StoreEngine
) -> None:
    # the loyalty notifier and purchase flow share the table: plain SQL with the same columns works
    await store_engine.raw.execute(
        "INSERT INTO bytemark_ticket_refresh_log (user_id, activity_type, status, scheduled_on)"
        " VALUES (?, 1, 1, '2030-01-01 00:00:00')",
        [5],
    )

    await refresh_log.record_free_ticket_reward(5)

    rows = await store_engine.raw.fetchall(
        "SELECT activity_type, status, created_at FROM bytemark_ticket_refresh_log"
        " WHERE user_id = ? ORDER BY id",
        [5],
    )
    assert [(row[0], row[1]) for row in rows] == [(1, 1), (2, 0)]
    assert rows[0][2] is not None  # created_at has a default for hand-written rows


async def test_create_schema_is_idempotent_and_keeps_rows(
    refresh_log: Log, store_engine: StoreEngine
) -> None:
    await refresh_log.record_free_ticket_reward(8)

    await refresh_log.create_schema()
    await refresh_log.create_schema()

    rows = await store_engine.raw.fetchall("SELECT user_id FROM bytemark_ticket_refresh_log")
    assert rows == [(8,)]
