"""RefreshLog on MySQL/MariaDB: table `bytemark_ticket_refresh_log`, read by the loyalty notifier."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.mysql.database import MysqlDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_ticket_refresh_log (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    activity_type INT NOT NULL,
    status INT NOT NULL DEFAULT 0,
    scheduled_on DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_bytemark_ticket_refresh_log_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

# Codes the loyalty notifier reads (1 purchase, 2 free-ticket reward, 3 scheduled; 0 pending, 1 processed).
ACTIVITY_FREE_TICKET_REWARD = 2
STATUS_PENDING = 0


class MysqlRefreshLog:
    def __init__(self, db: MysqlDatabase) -> None:
        self._db = db

    async def create_schema(self) -> None:
        await self._db.execute(_SCHEMA, idempotent=True)

    async def record_free_ticket_reward(self, user_id: int) -> None:
        created_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        # not retried: after a lost connection the row may already exist, and a second one would
        # make the loyalty notifier reward the user twice
        await self._db.execute(
            "INSERT INTO bytemark_ticket_refresh_log"
            " (user_id, activity_type, status, scheduled_on, created_at) VALUES (%s, %s, %s, NULL, %s)",
            (user_id, ACTIVITY_FREE_TICKET_REWARD, STATUS_PENDING, created_at),
        )
