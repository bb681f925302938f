"""The change feed on the embedded SQLite file: table `bytemark_change_feed`, appended in the cache's
transaction. SQLite has one writer at a time, even across processes, and AUTOINCREMENT gives each
row a position above every committed one, so positions are in commit order with no gap a reader
could pass before it is filled."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from adapters.driven.storage.sqlite.database import SqliteDatabase
from application.change_feed import FeedEvent, FeedPage
from application.errors import CursorExpired
from domain.changes import ChangeKind, PassChange
from domain.model import PassList

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_change_feed (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL,
    list TEXT NOT NULL,
    pass_uuid TEXT NOT NULL,
    kind TEXT NOT NULL,
    free_ticket INTEGER NOT NULL,
    payload_hash TEXT NOT NULL,
    changed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bytemark_change_feed_swept (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through_position INTEGER NOT NULL
);
"""
_INSERT = (
    "INSERT INTO bytemark_change_feed (user_id, list, pass_uuid, kind, free_ticket, payload_hash, changed_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_COLUMNS = "position, user_id, list, pass_uuid, kind, free_ticket, payload_hash, changed_at"


class SqliteChangeFeed:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create_schema(self) -> None:
        await self._db.executescript(_SCHEMA)

    @staticmethod
    def insert(conn: sqlite3.Connection, changes: Sequence[PassChange]) -> None:
        """Inside the transaction of the cache write that made them."""
        if changes:
            conn.executemany(
                _INSERT,
                [
                    (
                        c.user_id,
                        c.list.value,
                        c.pass_uuid,
                        c.kind.value,
                        int(c.free_ticket),
                        c.payload_hash,
                        c.changed_at,
                    )
                    for c in changes
                ],
            )

    async def head(self) -> int:
        rows = await self._db.read_rows(
            "SELECT MAX(position) FROM bytemark_change_feed UNION ALL"
            " SELECT MAX(through_position) FROM bytemark_change_feed_swept"
        )
        return max((int(row[0]) for row in rows if row[0] is not None), default=0)

    async def read_after(self, position: int, limit: int, user_ids: frozenset[int]) -> FeedPage:
        # the read-only connection: committed rows only, and never queued behind the cache writes
        rows = await self._db.read_rows(
            f"SELECT {_COLUMNS} FROM bytemark_change_feed WHERE position > ? ORDER BY position LIMIT ?",
            (position, limit),
        )
        # checked after the read: a sweep between the two makes this refuse, never skip
        swept = await self._db.read_rows("SELECT through_position FROM bytemark_change_feed_swept")
        if swept and position < int(swept[0][0]):
            raise CursorExpired()
        if not rows:
            return FeedPage((), position)
        events = tuple(_event(row) for row in rows if not user_ids or row[1] in user_ids)
        return FeedPage(events, int(rows[-1][0]))

    async def sweep(self, older_than: int) -> int:
        def work(conn: sqlite3.Connection) -> int:
            (through,) = conn.execute(
                "SELECT MAX(position) FROM bytemark_change_feed WHERE changed_at < ?", (older_than,)
            ).fetchone()
            if through is None:
                return 0
            removed = conn.execute(
                "DELETE FROM bytemark_change_feed WHERE position <= ?", (through,)
            ).rowcount
            conn.execute(
                "INSERT INTO bytemark_change_feed_swept (id, through_position) VALUES (1, ?)"
                " ON CONFLICT(id) DO UPDATE"
                " SET through_position = MAX(through_position, excluded.through_position)",
                (through,),
            )
            return int(removed)

        return await self._db.atomically(work)


def _event(row: Sequence[Any]) -> FeedEvent:
    position, user_id, pass_list, uuid, kind, free_ticket, payload_hash, changed_at = row
    change = PassChange(
        int(user_id),
        PassList(pass_list),
        str(uuid),
        ChangeKind(kind),
        bool(free_ticket),
        str(payload_hash),
        int(changed_at),
    )
    return FeedEvent(int(position), change)
