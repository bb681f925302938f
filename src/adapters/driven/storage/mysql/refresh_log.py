"""RefreshLog on MySQL/MariaDB: table `bytemark_ticket_refresh_log`, read by the loyalty notifier."""

from __future__ import annotations

from adapters.driven.storage.mysql.dialect import MysqlDialect
from adapters.driven.storage.sql import delivered_ids_table
from adapters.driven.storage.sql.refresh_log_table import RefreshLogTable

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


class MysqlRefreshLog(MysqlDialect, RefreshLogTable):
    async def create_schema(self) -> None:
        await self._db.execute(_SCHEMA, idempotent=True)
        await self._db.execute(delivered_ids_table.MYSQL_SCHEMA, idempotent=True)
        await self._db.execute(delivered_ids_table.MYSQL_INDEX, idempotent=True)
