"""RefreshLog on the embedded SQLite file: table `bytemark_ticket_refresh_log`, same columns as MySQL."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.sqlite.database import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_ticket_refresh_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    activity_type INTEGER NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    scheduled_on DATETIME,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_bytemark_ticket_refresh_log_user_id
    ON bytemark_ticket_refresh_log (user_id);
"""

# Codes the loyalty notifier reads (1 purchase, 2 free-ticket reward, 3 scheduled; 0 pending, 1 processed).
ACTIVITY_FREE_TICKET_REWARD = 2
STATUS_PENDING = 0


class SqliteRefreshLog:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create_schema(self) -> None:
        await self._db.executescript(_SCHEMA)

    async def record_free_ticket_reward(self, user_id: int) -> None:
        created_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        await self._db.execute(
            "INSERT INTO bytemark_ticket_refresh_log"
            " (user_id, activity_type, status, scheduled_on, created_at) VALUES (?, ?, ?, NULL, ?)",
            (user_id, ACTIVITY_FREE_TICKET_REWARD, STATUS_PENDING, created_at),
        )
