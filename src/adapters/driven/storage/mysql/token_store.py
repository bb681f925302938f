"""TokenStore on MySQL/MariaDB: table `bytemark_tokens` (the production table the old service used)."""

from __future__ import annotations

from adapters.driven.storage.mysql.dialect import MysqlDialect
from adapters.driven.storage.sql import delivered_ids_table
from adapters.driven.storage.sql.token_table import TokenTable

# TEXT, not VARCHAR(255): an encrypted JWT is a few hundred bytes longer than the token.
# The index is declared inline because MySQL (unlike MariaDB) has no CREATE INDEX IF NOT EXISTS.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_tokens (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    token TEXT NULL,
    refresh_token TEXT NULL,
    token_expires_at DATETIME NULL,
    status INT NOT NULL DEFAULT 1,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_bytemark_tokens_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""


class MysqlTokenStore(MysqlDialect, TokenTable):
    in_chunk = 1000

    async def create_schema(self) -> None:
        await self._db.execute(_SCHEMA, idempotent=True)
        await self._db.execute(delivered_ids_table.MYSQL_SCHEMA, idempotent=True)
        await self._db.execute(delivered_ids_table.MYSQL_INDEX, idempotent=True)
