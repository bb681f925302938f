"""The `bytemark_ticket_refresh_log` logic shared by the SQLite and MySQL refresh logs, written once
like `token_table.py`: each engine's class says how to spell the statement and store a DATETIME."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.sql.token_table import SqlDatabase

# Codes the loyalty notifier reads (1 purchase, 2 free-ticket reward, 3 scheduled; 0 pending, 1 processed).
ACTIVITY_FREE_TICKET_REWARD = 2
STATUS_PENDING = 0


class RefreshLogTable:
    """RefreshLog over one `bytemark_ticket_refresh_log` table, read by the loyalty notifier."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    # -- what differs per engine -----------------------------------------------------------

    def sql(self, statement: str) -> str:
        """The statement in the driver's placeholder style."""
        return statement

    def write_datetime(self, value: datetime | None) -> Any:
        raise NotImplementedError

    # -- RefreshLog --------------------------------------------------------------------------

    async def record_free_ticket_reward(self, user_id: int) -> None:
        # not retried: after a lost connection the row may already exist, and a second one would
        # make the loyalty notifier reward the user twice
        await self._db.execute(
            self.sql(
                "INSERT INTO bytemark_ticket_refresh_log"
                " (user_id, activity_type, status, scheduled_on, created_at) VALUES (?, ?, ?, NULL, ?)"
            ),
            (user_id, ACTIVITY_FREE_TICKET_REWARD, STATUS_PENDING, self.write_datetime(datetime.now(UTC))),
        )
