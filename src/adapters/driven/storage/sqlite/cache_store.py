"""CacheStore on the embedded SQLite file: one row per user, entry lists as JSON text.

Reads use a read-only connection on the loop's thread (WAL mode) and a parsed-row memo that hits
only on identical row text; while nothing at all was committed to the file since that text was read
(PRAGMA data_version), the row is not fetched again. Why, and why it changes no result:
bench/RESULTS.md, "Design notes".
Compare-and-set is one savepoint of a group-committed transaction on aiosqlite's worker thread
(`SqliteDatabase.atomically`; none is held across an await): the insert does nothing on an existing
user_id, the update matches only the expected version; the outbox records and feed changes commit
with it or not at all.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from typing import Any

from adapters.common.bounded_lru import BoundedLru
from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.outbox_codec import OutboxCodec
from adapters.driven.storage.sqlite.change_feed import SqliteChangeFeed
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.identifiers import quoted_identifier
from adapters.driven.storage.sqlite.json_codec import dumps_json, loads_json
from adapters.driven.storage.sqlite.outbox import SqliteOutbox
from application.errors import WriteConflict
from application.outbox import OutboxRecord
from application.ports import CacheFreshness
from domain.changes import PassChange, cache_changes
from domain.model import CachedPass, TicketCache

#: Default bound on the JSON text held by the parsed-row memo (parsed objects take a few times it).
DEFAULT_ROW_MEMO_BYTES = 4 * 1024 * 1024
#: What an entry costs besides its text (key, row list, parsed cache, ints, read version, LRU node):
#: about 450 bytes measured with tracemalloc; uncounted, empty caches ('[]') filled the memo without bound.
_ENTRY_OVERHEAD_BYTES = 512
#: SqliteDatabase.read_version(): equal while nothing was committed to the file.
ReadVersion = tuple[int, int] | None


class _RowMemo:
    """user_id -> (timestamp, version, passes text, passes4 text, parsed cache, read version at
    which that text was last seen), LRU by text bytes plus each entry's bookkeeping."""

    def __init__(self, max_bytes: int) -> None:
        self.rows: BoundedLru[int, list[Any]] = BoundedLru(max_bytes, _entry_bytes)

    @property
    def size(self) -> int:
        return self.rows.size

    def unchanged(self, user_id: int, read_version: ReadVersion) -> TicketCache | None:
        """The parsed cache when nothing was committed to the file since its text was last seen."""
        row = self.rows.get(user_id)
        if row is None or read_version is None or row[5] != read_version:
            return None
        self.rows.touch(user_id)
        return row[4]  # type: ignore[no-any-return]

    def get(self, user_id: int, row: Sequence[Any], read_version: ReadVersion) -> TicketCache | None:
        """The parsed cache when `row` (timestamp, version, passes, passes4) is what was parsed."""
        remembered = self.rows.get(user_id)
        if remembered is None:
            return None
        # Equal text (a memcmp; the same object compares at once): exactly what parsing saw.
        if remembered[:4] == list(row):
            self.rows.touch(user_id)
            remembered[5] = read_version
            return remembered[4]  # type: ignore[no-any-return]
        self.rows.pop(user_id)
        return None

    def put(self, user_id: int, row: Sequence[Any], cache: TicketCache, read_version: ReadVersion) -> None:
        timestamp, version, passes, passes4 = row
        self.rows.put(user_id, [timestamp, version, passes, passes4, cache, read_version])

    def discard(self, user_id: int) -> None:
        self.rows.pop(user_id)


def _entry_bytes(user_id: int, row: list[Any]) -> int:
    return len(row[2]) + len(row[3]) + _ENTRY_OVERHEAD_BYTES


class SqliteCacheStore:
    def __init__(
        self,
        db: SqliteDatabase,
        table: str = "bytemark_tickets_cache",
        row_memo_bytes: int = DEFAULT_ROW_MEMO_BYTES,
        outbox: SqliteOutbox | None = None,
    ) -> None:
        self._db = db
        # its records commit in this store's transactions (a codec without a key: tokens never do)
        self._outbox = outbox or SqliteOutbox(db, OutboxCodec(TokenCipher.from_base64(None)))
        self._memo = _RowMemo(row_memo_bytes)
        self._table = quoted_identifier(table)
        self._timestamp_index = quoted_identifier(f"idx_{table}_timestamp")
        self._get_sql = f"SELECT timestamp, version, passes, passes4 FROM {self._table} WHERE user_id = ?"

    async def create_schema(self) -> None:
        await self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            " user_id INTEGER PRIMARY KEY,"
            " timestamp INTEGER NOT NULL,"
            " version INTEGER NOT NULL DEFAULT 0,"
            " passes TEXT NOT NULL,"
            " passes4 TEXT NOT NULL)"
        )
        # freshness(): MIN and the stale count read this index, not the ~100 KB rows
        await self._db.execute(
            f"CREATE INDEX IF NOT EXISTS {self._timestamp_index} ON {self._table} (timestamp)"
        )
        await self._outbox.create_schema()  # written in the same transactions as the caches
        await SqliteChangeFeed(self._db).create_schema()

    async def get(self, user_id: int) -> TicketCache | None:
        # Nothing committed since the remembered text was read: skip reading ~100 KB of it again.
        read_version = self._db.read_version()
        unchanged = self._memo.unchanged(user_id, read_version)
        if unchanged is not None:
            return unchanged
        rows = await self._db.read_rows(self._get_sql, (user_id,))
        if not rows:
            return None
        remembered = self._memo.get(user_id, rows[0], read_version)
        if remembered is not None:
            return remembered
        cache = _parsed_row(user_id, *rows[0])
        self._memo.put(user_id, rows[0], cache, read_version)
        return cache

    async def save(
        self,
        cache: TicketCache,
        expected_version: int | None,
        records: Sequence[OutboxRecord] = (),
        changes: Sequence[PassChange] = (),
    ) -> TicketCache:
        new_version = (expected_version or 0) + 1
        passes = dumps_json([p.to_document() for p in cache.passes])
        passes4 = dumps_json([p.to_document() for p in cache.passes4])
        if expected_version is None:
            sql = (
                f"INSERT INTO {self._table} (user_id, timestamp, version, passes, passes4)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(user_id) DO NOTHING"
            )
            params: tuple[Any, ...] = (cache.user_id, cache.timestamp, new_version, passes, passes4)
        else:
            sql = (
                f"UPDATE {self._table} SET timestamp = ?, version = ?, passes = ?, passes4 = ?"
                " WHERE user_id = ? AND version = ?"
            )
            params = (cache.timestamp, new_version, passes, passes4, cache.user_id, expected_version)

        def write(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, params).rowcount != 1:
                raise WriteConflict(cache.user_id, expected_version)  # rolls the transaction back
            self._outbox.insert(conn, records)
            SqliteChangeFeed.insert(conn, changes)

        await self._db.atomically(write)
        return replace(cache, version=new_version)

    async def is_empty(self) -> bool:
        return not await self._db.fetch_rows(f"SELECT 1 FROM {self._table} LIMIT 1")

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

    async def freshness(self, moment: int) -> CacheFreshness:
        rows = await self._db.fetch_rows(self.freshness_sql, (moment,))
        oldest, written_before = rows[0]
        return CacheFreshness(None if oldest is None else int(oldest), int(written_before))

    @property
    def freshness_sql(self) -> str:
        """Both answers from the timestamp index: MIN() reads its first entry, the count a range of it."""
        return (
            f"SELECT (SELECT MIN(timestamp) FROM {self._table}),"
            f" (SELECT COUNT(*) FROM {self._table} WHERE timestamp < ?)"
        )

    async def delete(self, user_id: int, changes: Sequence[PassChange] = ()) -> bool:
        self._memo.discard(user_id)

        now = changes[0].changed_at if changes else int(time.time())

        def remove(conn: sqlite3.Connection) -> bool:
            # REMOVED changes from the row this transaction deletes: ones computed before it
            # could describe an older version that a racing refresh has since replaced
            row = conn.execute(self._get_sql, (user_id,)).fetchone()
            if row is None:
                return False
            conn.execute(f"DELETE FROM {self._table} WHERE user_id = ?", (user_id,))
            SqliteChangeFeed.insert(conn, cache_changes(user_id, _parsed_row(user_id, *row), None, now))
            return True

        return await self._db.atomically(remove)


def _parsed_row(user_id: int, timestamp: Any, version: Any, passes: Any, passes4: Any) -> TicketCache:
    return TicketCache(
        user_id=user_id,
        timestamp=int(timestamp),
        passes=tuple(map(CachedPass.from_document, loads_json(passes))),
        passes4=tuple(map(CachedPass.from_document, loads_json(passes4))),
        version=int(version or 0),
    )
