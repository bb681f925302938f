"""What the shared SQL tables leave to each engine, with the defaults that engines override in their
dialect mixin (`SqliteDialect`, `MysqlDialect`, listed first in a store's bases)."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class EngineHooks:
    def sql(self, statement: str) -> str:
        """The statement in the driver's placeholder style."""
        return statement

    def insert_first(self, into: str, key: str) -> str:
        """How the engine spells "insert unless `key` exists" (1 row written, or 0)."""
        return f"INSERT OR IGNORE {into}"

    def write_datetime(self, value: datetime | None) -> Any:
        raise NotImplementedError

    def read_datetime(self, value: Any) -> datetime | None:
        raise NotImplementedError
