"""CacheStore on the embedded SQLite file: one row per user, entry lists as JSON text.

Compare-and-set is one statement each (the connection is shared by concurrent tasks in autocommit
mode, so no transaction is ever held across an await): the insert does nothing on an existing
user_id, the update matches only the expected version; rowcount says who won.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from adapters.sqlite.database import SqliteDatabase
from adapters.sqlite.identifiers import quoted_identifier
from adapters.sqlite.json_codec import dumps_json, loads_json
from application.errors import WriteConflict
from domain.model import CachedPass, TicketCache


class SqliteCacheStore:
    def __init__(self, db: SqliteDatabase, table: str = "bytemark_tickets_cache") -> None:
        self._db = db
        self._table = quoted_identifier(table)

    async def create_schema(self) -> None:
        await self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            " user_id INTEGER PRIMARY KEY,"
            " timestamp INTEGER NOT NULL,"
            " version INTEGER NOT NULL DEFAULT 0,"
            " passes TEXT NOT NULL,"
            " passes4 TEXT NOT NULL)"
        )

    async def get(self, user_id: int) -> TicketCache | None:
        rows = await self._db.fetch_rows(
            f"SELECT timestamp, version, passes, passes4 FROM {self._table} WHERE user_id = ?",
            (user_id,),
        )
        if not rows:
            return None
        timestamp, version, passes, passes4 = rows[0]
        return TicketCache(
            user_id=user_id,
            timestamp=int(timestamp),
            passes=tuple(map(CachedPass.from_document, loads_json(passes))),
            passes4=tuple(map(CachedPass.from_document, loads_json(passes4))),
            version=int(version or 0),
        )

    async def save(self, cache: TicketCache, expected_version: int | None) -> TicketCache:
        new_version = (expected_version or 0) + 1
        passes = dumps_json([p.to_document() for p in cache.passes])
        passes4 = dumps_json([p.to_document() for p in cache.passes4])
        if expected_version is None:
            written = await self._db.execute(
                f"INSERT INTO {self._table} (user_id, timestamp, version, passes, passes4)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO NOTHING",
                (cache.user_id, cache.timestamp, new_version, passes, passes4),
            )
        else:
            written = await self._db.execute(
                f"UPDATE {self._table} SET timestamp = ?, version = ?, passes = ?, passes4 = ?"
                " WHERE user_id = ? AND version = ?",
                (cache.timestamp, new_version, passes, passes4, cache.user_id, expected_version),
            )
        if written != 1:
            raise WriteConflict(cache.user_id, expected_version)
        return replace(cache, version=new_version)

    async def is_empty(self) -> bool:
        return not await self._db.fetch_rows(f"SELECT 1 FROM {self._table} LIMIT 1")

    async def count(self) -> int:
        rows = await self._db.fetch_rows(f"SELECT COUNT(*) FROM {self._table}")
        return int(rows[0][0])

    async def iter_user_ids(self, batch_size: int = 1000) -> AsyncIterator[int]:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        # Keyset pagination: each batch starts after the last id seen, so memory stays flat.
        rows = await self._db.fetch_rows(
            f"SELECT user_id FROM {self._table} ORDER BY user_id LIMIT ?", (batch_size,)
        )
        while rows:
            for (user_id,) in rows:
                yield int(user_id)
            if len(rows) < batch_size:
                return
            rows = await self._db.fetch_rows(
                f"SELECT user_id FROM {self._table} WHERE user_id > ? ORDER BY user_id LIMIT ?",
                (rows[-1][0], batch_size),
            )

    async def delete(self, user_id: int) -> bool:
        deleted = await self._db.execute(f"DELETE FROM {self._table} WHERE user_id = ?", (user_id,))
        return deleted > 0
