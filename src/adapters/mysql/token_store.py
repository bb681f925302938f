"""TokenStore on MySQL/MariaDB: table `bytemark_tokens` (the production table the old service used)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from adapters.crypto import TokenCipher
from adapters.mysql.database import MysqlDatabase
from application.ports import Shard, UserToken

# TEXT, not VARCHAR(255): an encrypted JWT is a few hundred bytes longer than the token.
# The index is declared inline because MySQL (unlike MariaDB) has no CREATE INDEX IF NOT EXISTS.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS bytemark_tokens (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id BIGINT NOT NULL,
    token TEXT NULL,
    refresh_token TEXT NULL,
    token_expires_at DATETIME NULL,
    status INT NOT NULL DEFAULT 1,
    updated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    KEY idx_bytemark_tokens_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

_HAS_TOKEN = "token IS NOT NULL AND token <> ''"
_SHARD_FILTER = "user_id %% %s = %s"  # %% is a literal % under the driver's pyformat params
_IN_CHUNK = 1000


class MysqlTokenStore:
    def __init__(self, db: MysqlDatabase, cipher: TokenCipher) -> None:
        self._db = db
        self._cipher = cipher

    async def create_schema(self) -> None:
        await self._db.execute(_SCHEMA, idempotent=True)

    async def get_token(self, user_id: int) -> UserToken | None:
        row = await self._db.fetchone(
            "SELECT token, refresh_token, token_expires_at FROM bytemark_tokens"
            f" WHERE user_id = %s AND {_HAS_TOKEN} ORDER BY id DESC LIMIT 1",
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
            f"SELECT id FROM bytemark_tokens WHERE user_id = %s AND {_HAS_TOKEN} ORDER BY id DESC LIMIT 1",
            (user_id,),
        )
        if row is not None:
            # setting the same values twice is harmless, so this may be retried after a lost connection
            await self._db.execute(
                "UPDATE bytemark_tokens SET token = %s, refresh_token = %s, token_expires_at = %s,"
                " updated_at = %s WHERE id = %s",
                (*values, row[0]),
                idempotent=True,
            )
            return
        await self._db.execute(
            "INSERT INTO bytemark_tokens (user_id, token, refresh_token, token_expires_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s)",
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
            after_sql, after_params = ("AND user_id > %s", (last,)) if last is not None else ("", ())
            # keyset pagination on the user_id index: each batch is one short query, no open cursor
            rows = await self._db.fetchall(
                f"SELECT DISTINCT user_id FROM bytemark_tokens WHERE {_HAS_TOKEN} {after_sql} {shard_sql}"
                " ORDER BY user_id LIMIT %s",
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
            placeholders = ", ".join(["%s"] * len(chunk))
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
