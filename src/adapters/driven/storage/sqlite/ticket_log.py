"""TicketLog on the embedded SQLite file: one row per new or changed pass entry, payload as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapters.driven.storage.sql import delivered_ids_table
from adapters.driven.storage.sqlite.database import SqliteDatabase
from adapters.driven.storage.sqlite.dialect import SqliteDialect
from adapters.driven.storage.sqlite.identifiers import quoted_identifier
from adapters.driven.storage.sqlite.json_codec import dumps_json, loads_json
from domain.model import TicketLogEntry

_COLUMNS = "user_id, pass_uuid, list, change, status, payload, payload_hash, timestamp"
_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?, ?)"
# 8 columns x 100 rows stays under SQLite's bound-variable limit (999 on old builds).
_ROWS_PER_STATEMENT = 100
_DIALECT = SqliteDialect()


class SqliteTicketLog:
    def __init__(self, db: SqliteDatabase, table: str = "bytemark_tickets_log") -> None:
        self._db = db
        self._table = quoted_identifier(table)
        self._user_index = quoted_identifier(f"idx_{table}_user_id")

    async def create_schema(self) -> None:
        # `status` has no declared type so a string, number or NULL is stored as it came.
        await self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table} ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " user_id INTEGER NOT NULL,"
            " pass_uuid TEXT NOT NULL,"
            " list TEXT NOT NULL,"
            " change TEXT NOT NULL,"
            " status,"
            " payload TEXT NOT NULL,"
            " payload_hash TEXT NOT NULL,"
            " timestamp INTEGER NOT NULL)"
        )
        await self._db.execute(f"CREATE INDEX IF NOT EXISTS {self._user_index} ON {self._table} (user_id)")
        await self._db.executescript(delivered_ids_table.SQLITE_SCHEMA)

    async def deliver(self, record_id: str, entry: TicketLogEntry) -> None:
        async with self._db.transaction() as tx:
            if await delivered_ids_table.claim(tx, record_id, _DIALECT):
                await tx.execute(
                    f"INSERT INTO {self._table} ({_COLUMNS}) VALUES {_PLACEHOLDERS}", _row(entry)
                )

    async def append(self, entries: Sequence[TicketLogEntry]) -> None:
        # One multi-row INSERT per chunk: a single statement is atomic in autocommit mode, which
        # executemany (one implicit transaction per row) is not.
        for start in range(0, len(entries), _ROWS_PER_STATEMENT):
            chunk = entries[start : start + _ROWS_PER_STATEMENT]
            params: list[Any] = []
            for entry in chunk:
                params += _row(entry)
            values = ", ".join([_PLACEHOLDERS] * len(chunk))
            await self._db.execute(f"INSERT INTO {self._table} ({_COLUMNS}) VALUES {values}", params)

    async def entries_for_user(self, user_id: int) -> list[dict[str, Any]]:
        """The user's log rows as documents (TicketLogEntry.to_document shape), oldest first."""
        rows = await self._db.fetch_rows(
            f"SELECT {_COLUMNS} FROM {self._table} WHERE user_id = ? ORDER BY id", (user_id,)
        )
        return [
            {
                "user_id": row[0],
                "pass_uuid": row[1],
                "list": row[2],
                "change": row[3],
                "status": row[4],
                "payload": loads_json(row[5]),
                "payload_hash": row[6],
                "timestamp": row[7],
            }
            for row in rows
        ]


def _row(entry: TicketLogEntry) -> tuple[Any, ...]:
    return (
        entry.user_id,
        entry.pass_uuid,
        entry.list.value,
        entry.change.value,
        _status_column(entry.status),
        dumps_json(entry.payload),
        entry.payload_hash,
        entry.timestamp,
    )


def _status_column(status: Any) -> Any:
    """Scalars as they are; anything else (an object, a list, a bool) as its JSON text."""
    if status is None or (isinstance(status, (str, int, float)) and not isinstance(status, bool)):
        return status
    return dumps_json(status)
