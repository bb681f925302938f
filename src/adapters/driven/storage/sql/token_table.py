"""The `bytemark_tokens` logic shared by the SQLite and MySQL token stores.

Statements are written once with `?` placeholders; each engine's store says how to spell
them and how its driver hands back DATETIME values."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any, Protocol

from adapters.driven.storage.crypto import TokenCipher
from adapters.driven.storage.sql.delivered_ids_table import claim
from adapters.driven.storage.sql.engine_hooks import EngineHooks
from application.outbox import RotatedToken
from application.ports import Shard, UserToken

HAS_TOKEN = "token IS NOT NULL AND token <> ''"


class SqlStatements(Protocol):
    async def fetchone(self, sql: str, params: Any = ...) -> Any: ...

    async def fetchall(self, sql: str, params: Any = ...) -> Any: ...

    async def execute(self, sql: str, params: Any = ..., *, idempotent: bool = False) -> int: ...


class SqlDatabase(SqlStatements, Protocol):
    def transaction(self) -> AbstractAsyncContextManager[SqlStatements]: ...


class TokenTable(EngineHooks):
    """TokenStore over one `bytemark_tokens` table. The newest row (highest id) with a non-empty
    token is a user's token; NULL or '' means none."""

    #: Rows per `IN (...)` list, below the engine's bound-parameter limit.
    in_chunk = 500

    def __init__(self, db: SqlDatabase, cipher: TokenCipher) -> None:
        self._db = db
        self._cipher = cipher

    # -- TokenStore --------------------------------------------------------------------------

    async def read_one(self, sql: str, params: tuple[Any, ...]) -> Any:
        """One row of a short indexed read, or None (an engine may serve it more cheaply)."""
        return await self._db.fetchone(sql, params)

    async def get_token(self, user_id: int) -> UserToken | None:
        row = await self.read_one(
            self.sql(
                "SELECT token, refresh_token, token_expires_at, updated_at FROM bytemark_tokens"
                f" WHERE user_id = ? AND {HAS_TOKEN} ORDER BY id DESC LIMIT 1"
            ),
            (user_id,),
        )
        if row is None:
            return None
        token, refresh_token, expires_at, updated_at = row
        return UserToken(
            user_id=user_id,
            access_token=self._cipher.decrypt(_text(token), user_id),
            refresh_token=self._cipher.decrypt_optional(_text(refresh_token), user_id),
            expires_at=self.read_datetime(expires_at),
            updated_at=self.read_datetime(updated_at),
        )

    async def save_tokens(
        self, user_id: int, access_token: str, refresh_token: str | None, expires_at: datetime | None
    ) -> None:
        await self._save(self._db, user_id, access_token, refresh_token, expires_at)

    async def deliver_tokens(self, record_id: str, user_id: int, token: RotatedToken) -> None:
        async with self._db.transaction() as tx:
            if await claim(tx, record_id, self):
                await self._save(tx, user_id, token.access_token, token.refresh_token, token.expires_at)

    async def _save(
        self,
        db: SqlStatements,
        user_id: int,
        access_token: str,
        refresh_token: str | None,
        expires_at: datetime | None,
    ) -> None:
        if not access_token:
            raise ValueError("access_token must not be empty")
        values = (
            self._cipher.encrypt(access_token, user_id),
            self._cipher.encrypt_optional(refresh_token, user_id),
            self.write_datetime(expires_at),
            self.write_datetime(datetime.now(UTC)),
        )
        row = await db.fetchone(
            self.sql(
                f"SELECT id FROM bytemark_tokens WHERE user_id = ? AND {HAS_TOKEN} ORDER BY id DESC LIMIT 1"
            ),
            (user_id,),
        )
        if row is not None:
            # setting the same values twice is harmless, so this may be retried after a lost connection
            await db.execute(
                self.sql(
                    "UPDATE bytemark_tokens SET token = ?, refresh_token = ?, token_expires_at = ?,"
                    " updated_at = ? WHERE id = ?"
                ),
                (*values, row[0]),
                idempotent=True,
            )
            return
        await db.execute(
            self.sql(
                "INSERT INTO bytemark_tokens (user_id, token, refresh_token, token_expires_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?)"
            ),
            (user_id, *values),
        )

    async def iter_user_ids_with_token(
        self, shard: Shard | None = None, batch_size: int = 1000
    ) -> AsyncGenerator[int, None]:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        shard_sql, shard_params = _shard_clause(shard)
        last: int | None = None
        while True:
            after_sql, after_params = ("AND user_id > ?", (last,)) if last is not None else ("", ())
            # keyset pagination on the user_id index: each batch is one short query, no open cursor
            rows = await self._db.fetchall(
                self.sql(
                    f"SELECT DISTINCT user_id FROM bytemark_tokens WHERE {HAS_TOKEN} {after_sql} {shard_sql}"
                    " ORDER BY user_id LIMIT ?"
                ),
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
            self.sql(f"SELECT COUNT(DISTINCT user_id) FROM bytemark_tokens WHERE {HAS_TOKEN} {shard_sql}"),
            shard_params,
        )
        return int(row[0]) if row is not None else 0

    async def count_tokens_expiring_before(self, moment: datetime) -> int:
        row = await self._db.fetchone(
            self.sql(
                f"SELECT COUNT(DISTINCT user_id) FROM bytemark_tokens WHERE {HAS_TOKEN}"
                # a legacy zero date means "no expiry", as when the row is read
                " AND token_expires_at > '1000-01-01' AND token_expires_at < ?"
            ),
            (self.write_datetime(moment),),
        )
        return int(row[0]) if row is not None else 0

    async def users_with_token(self, user_ids: Sequence[int]) -> set[int]:
        wanted = sorted(set(user_ids))
        found: set[int] = set()
        for chunk in _chunks(wanted, self.in_chunk):
            placeholders = ", ".join("?" * len(chunk))
            rows = await self._db.fetchall(
                self.sql(
                    f"SELECT DISTINCT user_id FROM bytemark_tokens WHERE user_id IN ({placeholders})"
                    f" AND {HAS_TOKEN}"
                ),
                chunk,
            )
            found.update(int(row[0]) for row in rows)
        return found


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


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
    return "AND user_id % ? = ?", (shard.count, shard.index)
