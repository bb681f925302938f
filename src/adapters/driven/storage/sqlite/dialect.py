"""How SQLite spells what the shared SQL tables in `adapters.driven.storage.sql` leave open."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class SqliteDialect:
    """`?` placeholders as written; DATETIME as naive UTC text."""

    def insert_first(self, into: str, key: str) -> str:
        """An INSERT that writes 1 row for the first writer of `key` and 0 for a later one."""
        return f"INSERT OR IGNORE {into}"

    def sql(self, statement: str) -> str:
        return statement  # `?` is SQLite's own placeholder

    def write_datetime(self, value: datetime | None) -> str | None:
        return _write_datetime(value)

    def read_datetime(self, value: Any) -> datetime | None:
        return _read_datetime(value)


def _write_datetime(value: datetime | None) -> str | None:
    """Naive UTC text to the second, the form MySQL DATETIME holds and operators write by hand."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _read_datetime(value: Any) -> datetime | None:
    """Aware UTC. Hand-seeded rows may hold any ISO form, a zero date or junk: unreadable means no expiry."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        parsed = datetime.fromisoformat(str(value))
    except (ValueError, OverflowError, OSError):
        return None  # includes '0000-00-00 00:00:00'
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
