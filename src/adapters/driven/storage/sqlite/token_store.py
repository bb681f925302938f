"""TokenStore on the embedded SQLite file: table `bytemark_tokens`, same columns as MySQL."""

from __future__ import annotations

from typing import Any

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.sql import delivered_ids_table
from adapters.driven.storage.sql.token_table import TokenTable
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.dialect import SqliteDialect

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


class SqliteTokenStore(SqliteDialect, TokenTable):
    in_chunk = 500  # well below SQLite's bound-variable limit (999 on old builds)

    def __init__(self, db: SqliteDatabase, cipher: TokenCipher) -> None:
        super().__init__(db, cipher)
        self._sqlite = db

    async def create_schema(self) -> None:
        await self._sqlite.executescript(_SCHEMA)
        await self._sqlite.executescript(delivered_ids_table.SQLITE_SCHEMA)

    async def read_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        rows = await self._sqlite.read_rows(sql, params)  # on the loop's thread (WAL)
        return rows[0] if rows else None
