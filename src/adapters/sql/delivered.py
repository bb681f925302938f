"""`bytemark_outbox_delivered`: the record ids a SQL store has taken from the outbox.

A delivery inserts its record id in the same transaction as its row; a second delivery of the
same record finds the id and writes nothing, so each row lands exactly once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bytemark_outbox_delivered ("
    " record_id CHAR(24) NOT NULL PRIMARY KEY,"
    " delivered_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)


class Statements(Protocol):
    async def execute(self, sql: str, params: Any = ..., *, idempotent: bool = False) -> int: ...


async def claim(tx: Statements, record_id: str, insert_ignore: str, sql: Callable[[str], str]) -> bool:
    """True when this transaction is the first to deliver `record_id`. `insert_ignore` and `sql`
    are the engine's spelling ('INSERT OR IGNORE' / 'INSERT IGNORE', and its placeholders)."""
    statement = f"{insert_ignore} INTO bytemark_outbox_delivered (record_id) VALUES (?)"
    return await tx.execute(sql(statement), (record_id,)) == 1
