"""TokenStore on MySQL/MariaDB: table `bytemark_tokens` (the production table the old service used)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.sql.token_table import TokenTable

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


class MysqlTokenStore(TokenTable):
    in_chunk = 1000

    async def create_schema(self) -> None:
        await self._db.execute(_SCHEMA, idempotent=True)

    def sql(self, statement: str) -> str:
        # pyformat placeholders; a literal % (the shard modulo) is written %%
        return statement.replace("%", "%%").replace("?", "%s")

    def write_datetime(self, value: datetime | None) -> datetime | None:
        return _write_datetime(value)

    def read_datetime(self, value: Any) -> datetime | None:
        return _read_datetime(value)


def _write_datetime(value: datetime | None) -> datetime | None:
    """DATETIME has no zone: store naive UTC, to the second (MariaDB truncates fractions anyway)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _read_datetime(value: Any) -> datetime | None:
    """Aware UTC. The driver hands zero dates ('0000-00-00 00:00:00') back as text: no expiry."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC)
