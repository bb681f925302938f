"""`bytemark_outbox_delivered`: the record ids a SQL store has taken from the outbox.

A delivery inserts its record id in the same transaction as its row; a second delivery of the
same record finds the id and writes nothing, so each row lands exactly once. The ids are kept
until `application.delivered_sweep` says no relay can deliver their records again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

# delivered_at is stamped by the delivering process in UTC (the sweep's horizon is in its clock
# too); the column default only covers rows written before the stamp was.
MYSQL_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS bytemark_outbox_delivered ("
    " record_id CHAR(24) NOT NULL PRIMARY KEY,"
    " delivered_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    " KEY idx_bytemark_outbox_delivered_at (delivered_at))"
)
# A table created before the sweep existed has no index on delivered_at: the sweep would scan it.
MYSQL_INDEX = (
    "CREATE INDEX IF NOT EXISTS idx_bytemark_outbox_delivered_at ON bytemark_outbox_delivered (delivered_at)"
)
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_outbox_delivered (
    record_id CHAR(24) NOT NULL PRIMARY KEY,
    delivered_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_bytemark_outbox_delivered_at ON bytemark_outbox_delivered (delivered_at);
"""
#: Rows per DELETE: a sweep of a large backlog never holds the table's locks for long.
SWEEP_BATCH = 5_000


class Statements(Protocol):
    async def execute(self, sql: str, params: Any = ..., *, idempotent: bool = False) -> int: ...


class Dialect(Protocol):
    def sql(self, statement: str) -> str: ...

    def insert_first(self, into: str, key: str) -> str: ...

    def write_datetime(self, value: datetime | None) -> Any: ...


async def claim(tx: Statements, record_id: str, dialect: Dialect) -> bool:
    """True when this transaction is the first to deliver `record_id`."""
    statement = dialect.insert_first(
        "INTO bytemark_outbox_delivered (record_id, delivered_at) VALUES (?, ?)", "record_id"
    )
    return (
        await tx.execute(dialect.sql(statement), (record_id, dialect.write_datetime(datetime.now(UTC)))) == 1
    )


class DeliveredIdTable:
    """The sweep side of the table (application.delivered_sweep.DeliveredIds). Each engine's
    class mixes in its dialect and says how to spell a bounded DELETE."""

    #: A DELETE of at most `?` rows claimed before `?`.
    bounded_delete = ""

    def __init__(self, db: Statements) -> None:
        self._db = db

    def sql(self, statement: str) -> str:
        return statement

    def insert_first(self, into: str, key: str) -> str:
        raise NotImplementedError  # the engine's dialect, mixed in before this class

    def write_datetime(self, value: datetime | None) -> Any:
        raise NotImplementedError

    async def claim_once(self, record_id: str) -> bool:
        """application.ports.NoticeClaims: a notice is claimed here before it is posted."""
        return await claim(self._db, record_id, self)

    async def release(self, record_id: str) -> None:
        statement = "DELETE FROM bytemark_outbox_delivered WHERE record_id = ?"
        await self._db.execute(self.sql(statement), (record_id,), idempotent=True)

    async def sweep_delivered(self, delivered_before: datetime) -> int:
        params = (self.write_datetime(delivered_before), SWEEP_BATCH)
        removed = 0
        while True:
            # deleting ids older than a fixed moment twice is harmless: retried after a lost connection
            batch = await self._db.execute(self.sql(self.bounded_delete), params, idempotent=True)
            removed += batch
            if batch < SWEEP_BATCH:
                return removed
