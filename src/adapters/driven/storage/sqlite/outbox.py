"""Outbox on the embedded SQLite file: table `bytemark_outbox`, written in the cache's transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from adapters.driven.storage.outbox_codec import OutboxCodec
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.json_codec import dumps_json, loads_json
from application.outbox import OutboxBacklog, OutboxRecord, RotatedToken, Target

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record_id TEXT NOT NULL UNIQUE,
    target TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_bytemark_outbox_user_target ON bytemark_outbox (user_id, target);
"""
_INSERT = (
    "INSERT OR IGNORE INTO bytemark_outbox (record_id, target, user_id, created_at, record)"
    " VALUES (?, ?, ?, ?, ?)"
)
_NEWEST_TOKEN = (
    "SELECT record FROM bytemark_outbox WHERE user_id = ? AND target = ? ORDER BY seq DESC LIMIT 1"
)


class SqliteOutbox:
    def __init__(self, db: SqliteDatabase, codec: OutboxCodec) -> None:
        self._db = db
        self._codec = codec

    async def create_schema(self) -> None:
        await self._db.executescript(_SCHEMA)

    def insert(self, conn: sqlite3.Connection, records: Sequence[OutboxRecord]) -> None:
        """Inside a transaction the caller holds (the cache write)."""
        if records:
            conn.executemany(_INSERT, [self._row(record) for record in records])

    async def add(self, records: Sequence[OutboxRecord]) -> None:
        await self._db.atomically(lambda conn: self.insert(conn, records))

    async def pending(self, limit: int) -> list[OutboxRecord]:
        rows = await self._db.fetch_rows("SELECT record FROM bytemark_outbox ORDER BY seq LIMIT ?", (limit,))
        return [self._codec.from_document(loads_json(row[0])) for row in rows]

    async def mark_delivered(self, records: Sequence[OutboxRecord]) -> None:
        ids = [(record.record_id,) for record in records]
        await self._db.atomically(
            lambda conn: conn.executemany("DELETE FROM bytemark_outbox WHERE record_id = ?", ids)
        )

    async def pending_for_user(self, user_id: int) -> list[OutboxRecord]:
        rows = await self._db.fetch_rows(
            "SELECT record FROM bytemark_outbox WHERE user_id = ? AND target != ? ORDER BY seq",
            (user_id, Target.TOKEN.value),
        )
        return [self._codec.from_document(loads_json(row[0])) for row in rows]

    async def newest_token(self, user_id: int) -> RotatedToken | None:
        rows = await self._db.read_rows(_NEWEST_TOKEN, (user_id, Target.TOKEN.value))  # every refresh
        return self._codec.token(loads_json(rows[0][0])) if rows else None

    async def backlog(self) -> OutboxBacklog:
        rows = await self._db.fetch_rows(
            "SELECT target, COUNT(*), MIN(created_at) FROM bytemark_outbox GROUP BY target"
        )
        pending = {target: 0 for target in Target}
        oldest: int | None = None
        for target, count, first in rows:
            pending[Target(target)] = int(count)
            oldest = int(first) if oldest is None else min(oldest, int(first))
        return OutboxBacklog(pending, oldest)

    def _row(self, record: OutboxRecord) -> tuple[str, str, int, int, str]:
        document = self._codec.to_document(record)
        return (
            record.record_id,
            record.target.value,
            record.user_id,
            record.created_at,
            dumps_json(document),
        )
