"""How MySQL/MariaDB spells what the shared SQL tables in `adapters.driven.storage.sql` leave open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class MysqlDialect:
    """pyformat placeholders; DATETIME as naive UTC datetimes."""

    insert_ignore = "INSERT IGNORE"

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
