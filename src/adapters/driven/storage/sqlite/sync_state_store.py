"""SyncStateStore on the embedded SQLite file: table `bytemark_sync_status`, one row per rider,
times as epoch seconds like the cache table. A batch of statuses is one multi-row upsert (one
statement, one commit), so a bulk run's state writes cost a fraction of its cache writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.driven.storage.sqlite.database import SqliteDatabase
from domain.sync_state import SyncError, SyncState, SyncStatus

TABLE = "bytemark_sync_status"
_COLUMNS = (
    "user_id, state, last_attempt_at, last_success_at, consecutive_failures,"
    " last_error_code, last_error_message, next_attempt_at, cache_timestamp, token_fingerprint"
)
_ROW_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROWS_PER_STATEMENT = 90  # 10 columns each: below the 999 bound variables of old SQLite builds
_IN_CHUNK = 500

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    user_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    last_attempt_at INTEGER NOT NULL,
    last_success_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error_message TEXT,
    next_attempt_at INTEGER,
    cache_timestamp INTEGER,
    token_fingerprint TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS idx_{TABLE}_state ON {TABLE} (state, user_id);
"""


class SqliteSyncStateStore:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def create_schema(self) -> None:
        await self._db.executescript(_SCHEMA)

    async def get(self, user_id: int) -> SyncStatus | None:
        rows = await self._db.fetch_rows(f"SELECT {_COLUMNS} FROM {TABLE} WHERE user_id = ?", (user_id,))
        return _status(rows[0]) if rows else None

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, SyncStatus]:
        wanted = sorted(set(user_ids))
        found: dict[int, SyncStatus] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = await self._db.fetch_rows(
                f"SELECT {_COLUMNS} FROM {TABLE} WHERE user_id IN ({marks})", chunk
            )
            found.update((status.user_id, status) for status in map(_status, rows))
        return found

    async def put_many(self, statuses: Sequence[SyncStatus]) -> None:
        latest = list({status.user_id: status for status in statuses}.values())
        for start in range(0, len(latest), _ROWS_PER_STATEMENT):
            chunk = latest[start : start + _ROWS_PER_STATEMENT]
            values = ", ".join([_ROW_PLACEHOLDERS] * len(chunk))
            params = [value for status in chunk for value in _row(status)]
            await self._db.execute(
                f"INSERT OR REPLACE INTO {TABLE} ({_COLUMNS}) VALUES {values}", params, idempotent=True
            )

    async def list_after(
        self, after_user_id: int, limit: int, state: SyncState | None = None
    ) -> list[SyncStatus]:
        if state is None:
            rows = await self._db.fetch_rows(
                f"SELECT {_COLUMNS} FROM {TABLE} WHERE user_id > ? ORDER BY user_id LIMIT ?",
                (after_user_id, limit),
            )
        else:
            rows = await self._db.fetch_rows(
                f"SELECT {_COLUMNS} FROM {TABLE} WHERE state = ? AND user_id > ? ORDER BY user_id LIMIT ?",
                (state.value, after_user_id, limit),
            )
        return [_status(row) for row in rows]

    async def delete_many(self, user_ids: Sequence[int]) -> int:
        wanted, removed = sorted(set(user_ids)), 0
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            removed += await self._db.execute(f"DELETE FROM {TABLE} WHERE user_id IN ({marks})", chunk)
        return removed

    async def count_by_state(self) -> dict[SyncState, int]:
        rows = await self._db.fetch_rows(f"SELECT state, COUNT(*) FROM {TABLE} GROUP BY state")
        counts = {state: 0 for state in SyncState}
        for state, count in rows:
            if state in SyncState.__members__:
                counts[SyncState(state)] = int(count)
        return counts


def _row(status: SyncStatus) -> tuple[Any, ...]:
    error = status.last_error
    return (
        status.user_id,
        status.state.value,
        status.last_attempt_at,
        status.last_success_at,
        status.consecutive_failures,
        error.code if error else None,
        error.message if error else None,
        status.next_attempt_at,
        status.cache_timestamp,
        status.token_fingerprint,
    )


def _status(row: Any) -> SyncStatus:
    (user_id, state, attempt, success, failures, code, message, next_at, cache_ts, fingerprint) = row
    return SyncStatus(
        user_id=int(user_id),
        state=SyncState(state),
        last_attempt_at=int(attempt),
        last_success_at=_int_or_none(success),
        consecutive_failures=int(failures or 0),
        last_error=SyncError(str(code), str(message or "")) if code else None,
        next_attempt_at=_int_or_none(next_at),
        cache_timestamp=_int_or_none(cache_ts),
        token_fingerprint=str(fingerprint or ""),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
