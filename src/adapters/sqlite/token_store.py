"""TokenStore on the embedded SQLite file: table `bytemark_tokens`, same columns as MySQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.crypto import TokenCipher
from adapters.sqlite.database import SqliteDatabase
from application.ports import Shard, UserToken

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    token TEXT,
    refresh_token TEXT,
    token_expires_at DATETIME,
    status INTEGER NOT NULL DEFAULT 1,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX IF NOT EXISTS idx_bytemark_tokens_user_id ON bytemark_tokens (user_id);
"""

_HAS_TOKEN = "token IS NOT NULL AND token <> ''"
_SHARD_FILTER = "user_id % ? = ?"
# Well below SQLite's bound-variable limit (999 on old builds).
_IN_CHUNK = 500


class SqliteTokenStore:
    def __init__(self, db: SqliteDatabase, cipher: TokenCipher) -> None:
        self._db = db
        self._cipher = cipher

    async def create_schema(self) -> None:
        await self._db.executescript(_SCHEMA)

    async def get_token(self, user_id: int) -> UserToken | None:
        row = await self._db.fetchone(
            "SELECT token, refresh_token, token_expires_at FROM bytemark_tokens"
            f" WHERE user_id = ? AND {_HAS_TOKEN} ORDER BY id DESC LIMIT 1",
            (user_id,),
        )
        if row is None:
            return None
        token, refresh_token, expires_at = row
        return UserToken(
            user_id=user_id,
            access_token=self._cipher.decrypt(_text(token), user_id),
            refresh_token=self._cipher.decrypt_optional(_text(refresh_token), user_id),
            expires_at=_read_datetime(expires_at),
        )

    async def save_tokens(
        self, user_id: int, access_token: str, refresh_token: str | None, expires_at: datetime | None
    ) -> None:
        if not access_token:
            raise ValueError("access_token must not be empty")
        values = (
            self._cipher.encrypt(access_token, user_id),
            self._cipher.encrypt_optional(refresh_token, user_id),
            _write_datetime(expires_at),
            _write_datetime(datetime.now(UTC)),
        )
        row = await self._db.fetchone(
            f"SELECT id FROM bytemark_tokens WHERE user_id = ? AND {_HAS_TOKEN} ORDER BY id DESC LIMIT 1",
            (user_id,),
        )
        if row is not None:
            await self._db.execute(
                "UPDATE bytemark_tokens SET token = ?, refresh_token = ?, token_expires_at = ?,"
                " updated_at = ? WHERE id = ?",
                (*values, row[0]),
            )
            return
        await self._db.execute(
            "INSERT INTO bytemark_tokens (user_id, token, refresh_token, token_expires_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (user_id, *values),
        )

    async def iter_user_ids_with_token(
        self, shard: Shard | None = None, batch_size: int = 1000
    ) -> AsyncIterator[int]:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        shard_sql, shard_params = _shard_clause(shard)
        last: int | None = None
        while True:
            after_sql, after_params = ("AND user_id > ?", (last,)) if last is not None else ("", ())
            rows = await self._db.fetchall(
                f"SELECT DISTINCT user_id FROM bytemark_tokens WHERE {_HAS_TOKEN} {after_sql} {shard_sql}"
                " ORDER BY user_id LIMIT ?",
                (*after_params, *shard_params, batch_size),
            )
            for row in rows:
                yield int(row[0])
            if len(rows) < batch_size:
                return
            last = int(rows[-1][0])

    async def count_users_with_token(self, shard: Shard | None = None) -> int:
        shard_sql, shard_params = _shard_clause(shard)
        row = await self._db.fetchone(
            f"SELECT COUNT(DISTINCT user_id) FROM bytemark_tokens WHERE {_HAS_TOKEN} {shard_sql}",
            shard_params,
        )
        return int(row[0]) if row is not None else 0

    async def users_with_token(self, user_ids: Sequence[int]) -> set[int]:
        wanted = sorted(set(user_ids))
        found: set[int] = set()
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            placeholders = ", ".join("?" * len(chunk))
            rows = await self._db.fetchall(
                f"SELECT DISTINCT user_id FROM bytemark_tokens WHERE user_id IN ({placeholders})"
                f" AND {_HAS_TOKEN}",
                chunk,
            )
            found.update(int(row[0]) for row in rows)
        return found


def _text(value: Any) -> str:
    """Legacy tables may declare the token columns binary; the values are ASCII either way."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _shard_clause(shard: Shard | None) -> tuple[str, tuple[int, ...]]:
    if shard is None:
        return "", ()
    return f"AND {_SHARD_FILTER}", (shard.count, shard.index)


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
