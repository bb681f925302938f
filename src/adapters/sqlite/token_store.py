"""TokenStore on the embedded SQLite file: table `bytemark_tokens`, same columns as MySQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.crypto import TokenCipher
from adapters.sql.token_table import TokenTable
from adapters.sqlite.database import SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    token TEXT,
    refresh_token TEXT,
    token_expires_at DATETIME,
    status INTEGER NOT NULL DEFAULT 1,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_bytemark_tokens_user_id ON bytemark_tokens (user_id);
"""


class SqliteTokenStore(TokenTable):
    in_chunk = 500  # well below SQLite's bound-variable limit (999 on old builds)

    def __init__(self, db: SqliteDatabase, cipher: TokenCipher) -> None:
        super().__init__(db, cipher)
        self._sqlite = db

    async def create_schema(self) -> None:
        await self._sqlite.executescript(_SCHEMA)

    async def read_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        rows = await self._sqlite.read_rows(sql, params)  # on the loop's thread (WAL)
        return rows[0] if rows else None

    def write_datetime(self, value: datetime | None) -> str | None:
        return _write_datetime(value)

    def read_datetime(self, value: Any) -> datetime | None:
        return _read_datetime(value)


def _write_datetime(value: datetime | None) -> str | None:
    """Naive UTC text to the second, the form MySQL DATETIME holds and operators write by hand."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _read_datetime(value: Any) -> datetime | None:
    """Aware UTC. Hand-seeded rows may hold any ISO form, a zero date or junk: unreadable means no expiry."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        parsed = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        return None  # includes '0000-00-00 00:00:00'
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
