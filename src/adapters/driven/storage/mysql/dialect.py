"""How MySQL/MariaDB spells what the shared SQL tables in `adapters.driven.storage.sql` leave open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class MysqlDialect:
    """pyformat placeholders; DATETIME as naive UTC datetimes."""

    def insert_first(self, into: str, key: str) -> str:
        """An INSERT that writes 1 row for the first writer of `key` and 0 for a later one. Not
        INSERT IGNORE: its "Duplicate entry" note is logged by asyncmy as a WARNING, though a
        turned-away duplicate is the design working (affected rows are 0, not 1, for a no-op
        update: the connection does not ask for CLIENT_FOUND_ROWS)."""
        return f"INSERT {into} ON DUPLICATE KEY UPDATE {key} = {key}"

    def sql(self, statement: str) -> str:
        # pyformat placeholders; a literal % (the shard modulo) is written %%
        return statement.replace("%", "%%").replace("?", "%s")

    def write_datetime(self, value: datetime | None) -> datetime | None:
        return _write_datetime(value)

    def read_datetime(self, value: Any) -> datetime | None:
        return _read_datetime(value)


def _write_datetime(value: datetime | None) -> datetime | None:
    """DATETIME has no zone: store naive UTC, to the second (MariaDB truncates fractions anyway)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _read_datetime(value: Any) -> datetime | None:
    """Aware UTC. The driver hands zero dates ('0000-00-00 00:00:00') back as text: no expiry."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC)
