"""The `bytemark_ticket_refresh_log` logic shared by the SQLite and MySQL refresh logs, written once
like `token_table.py`: each engine's class says how to spell the statement and store a DATETIME."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.driven.storage.sql.delivered_ids_table import claim
from adapters.driven.storage.sql.engine_hooks import EngineHooks
from adapters.driven.storage.sql.token_table import SqlDatabase, SqlStatements

# Codes the loyalty notifier reads (1 purchase, 2 free-ticket reward, 3 scheduled; 0 pending, 1 processed).
ACTIVITY_FREE_TICKET_REWARD = 2
STATUS_PENDING = 0


class RefreshLogTable(EngineHooks):
    """RefreshLog over one `bytemark_ticket_refresh_log` table, read by the loyalty notifier."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    # -- RefreshLog --------------------------------------------------------------------------

    async def record_free_ticket_reward(self, user_id: int) -> None:
        await self._insert(self._db, user_id)

    async def deliver_free_ticket_reward(self, record_id: str, user_id: int) -> None:
        # the row and its record id commit together: a second delivery finds the id and stops
        async with self._db.transaction() as tx:
            if await claim(tx, record_id, self):
                await self._insert(tx, user_id)

    async def _insert(self, db: SqlStatements, user_id: int) -> None:
        # not retried: after a lost connection the row may already exist, and a second one would
        # make the loyalty notifier reward the user twice
        await db.execute(
            self.sql(
                "INSERT INTO bytemark_ticket_refresh_log"
                " (user_id, activity_type, status, scheduled_on, created_at) VALUES (?, ?, ?, NULL, ?)"
            ),
            (user_id, ACTIVITY_FREE_TICKET_REWARD, STATUS_PENDING, self.write_datetime(datetime.now(UTC))),
        )
