"""RefreshLog on the embedded SQLite file: table `bytemark_ticket_refresh_log`, same columns as MySQL."""

from __future__ import annotations

from adapters.driven.storage.sql import delivered_ids_table
from adapters.driven.storage.sql.refresh_log_table import RefreshLogTable
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.dialect import SqliteDialect

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


class SqliteRefreshLog(SqliteDialect, RefreshLogTable):
    def __init__(self, db: SqliteDatabase) -> None:
        super().__init__(db)
        self._sqlite = db

    async def create_schema(self) -> None:
        await self._sqlite.executescript(_SCHEMA)
        await self._sqlite.executescript(delivered_ids_table.SQLITE_SCHEMA)
