"""SyncStateStore on MongoDB, in its own collection so the cache documents keep the shape the
Node service wrote. One document per rider (unique on user_id). A batch of statuses is written as
the server profile needs: profile `mongodb` sends one ordinary bulk write of upserts by user_id
(`UpsertsByUserId`, answered from the unique index); profile `ferretdb` replaces by `_id` in
small bulk writes (ferretdb/sync_state_writes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pymongo import ASCENDING, ReplaceOne
from pymongo.errors import BulkWriteError

from adapters.driven.storage.mongo.database import DUPLICATE_KEY, MongoDatabase
from application.errors import StoreUnavailable
from domain.sync_state import SyncError, SyncState, SyncStatus

DEFAULT_COLLECTION = "bytemarksyncstatuses"
_WITHOUT_ID = {"_id": 0}
_IN_CHUNK = 1000
_UPSERT_ATTEMPTS = 3


class SyncStateWrites(Protocol):
    async def write(self, collection: Any, documents: dict[int, dict[str, Any]]) -> None:
        """Store each rider's status document (by user_id), replacing the one stored."""


class UpsertsByUserId:
    """Profile `mongodb`: one ordinary bulk write of upserts by user_id (the driver splits it)."""

    async def write(self, collection: Any, documents: dict[int, dict[str, Any]]) -> None:
        writes = [ReplaceOne({"user_id": u}, document, upsert=True) for u, document in documents.items()]
        await collection.bulk_write(writes, ordered=False)


class MongoSyncStateStore:
    def __init__(
        self,
        db: MongoDatabase,
        collection: str = DEFAULT_COLLECTION,
        *,
        writes: SyncStateWrites | None = None,
    ) -> None:
        """`writes`: profile `mongodb`'s by default; the composition root injects FerretDB's."""
        self._db = db
        self._collection_name = collection
        self._writes: SyncStateWrites = writes or UpsertsByUserId()

    async def create_schema(self) -> None:
        with self._db.errors_as_unavailable():
            await self._collection().create_index([("user_id", ASCENDING)], unique=True)
            await self._collection().create_index([("state", ASCENDING), ("user_id", ASCENDING)])

    async def get(self, user_id: int) -> SyncStatus | None:
        with self._db.errors_as_unavailable():
            document = await self._collection().find_one({"user_id": user_id}, _WITHOUT_ID)
        return None if document is None else _status(document)

    async def get_many(self, user_ids: Sequence[int]) -> dict[int, SyncStatus]:
        wanted = sorted(set(user_ids))
        found: dict[int, SyncStatus] = {}
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            cursor = self._collection().find({"user_id": {"$in": chunk}}, _WITHOUT_ID)
            with self._db.errors_as_unavailable():
                documents = await cursor.to_list(None)
            found.update((status.user_id, status) for status in map(_status, documents))
        return found

    async def put_many(self, statuses: Sequence[SyncStatus]) -> None:
        """Each rider's latest status, written by the profile's strategy."""
        latest = {status.user_id: _document(status) for status in statuses}
        if not latest:
            return
        for attempt in range(_UPSERT_ATTEMPTS):
            try:
                with self._db.errors_as_unavailable():
                    await self._writes.write(self._collection(), latest)
                return
            except (StoreUnavailable, KeyError) as exc:
                # FerretDB v1: two processes writing one rider's status at once both insert; the
                # loser hits the unique user_id index, and FerretDB's reply to it lacks `nModified`
                # (PyMongo raises KeyError). Run again: the batch's read now finds the document.
                if attempt + 1 == _UPSERT_ATTEMPTS or not _lost_an_upsert_race(exc):
                    if isinstance(exc, KeyError):
                        raise StoreUnavailable("MongoDB", f"unexpected bulk write reply: {exc!r}") from exc
                    raise

    async def list_after(
        self, after_user_id: int, limit: int, state: SyncState | None = None
    ) -> list[SyncStatus]:
        query: dict[str, Any] = {"user_id": {"$gt": after_user_id}}
        if state is not None:
            query["state"] = state.value
        cursor = self._collection().find(query, _WITHOUT_ID).sort("user_id", ASCENDING).limit(limit)
        with self._db.errors_as_unavailable():
            documents = await cursor.to_list(None)
        return [_status(document) for document in documents]

    async def delete_many(self, user_ids: Sequence[int]) -> int:
        wanted, removed = sorted(set(user_ids)), 0
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start : start + _IN_CHUNK]
            with self._db.errors_as_unavailable():
                removed += (await self._collection().delete_many({"user_id": {"$in": chunk}})).deleted_count
        return removed

    async def count_by_state(self) -> dict[SyncState, int]:
        counts = {state: 0 for state in SyncState}
        for state in SyncState:  # three indexed counts: portable across servers, no aggregation
            with self._db.errors_as_unavailable():
                counts[state] = int(await self._collection().count_documents({"state": state.value}))
        return counts

    def _collection(self) -> Any:
        return self._db.collection(self._collection_name)


def _document(status: SyncStatus) -> dict[str, Any]:
    error = status.last_error
    return {
        "user_id": status.user_id,
        "state": status.state.value,
        "last_attempt_at": status.last_attempt_at,
        "last_success_at": status.last_success_at,
        "consecutive_failures": status.consecutive_failures,
        "last_error": {"code": error.code, "message": error.message} if error else None,
        "next_attempt_at": status.next_attempt_at,
        "cache_timestamp": status.cache_timestamp,
        "token_fingerprint": status.token_fingerprint,
    }


def _status(document: dict[str, Any]) -> SyncStatus:
    error = document.get("last_error")
    return SyncStatus(
        user_id=int(document["user_id"]),
        state=SyncState(document["state"]),
        last_attempt_at=int(document.get("last_attempt_at") or 0),
        last_success_at=_int_or_none(document.get("last_success_at")),
        consecutive_failures=int(document.get("consecutive_failures") or 0),
        last_error=SyncError(str(error.get("code", "")), str(error.get("message", ""))) if error else None,
        next_attempt_at=_int_or_none(document.get("next_attempt_at")),
        cache_timestamp=_int_or_none(document.get("cache_timestamp")),
        token_fingerprint=str(document.get("token_fingerprint") or ""),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _lost_an_upsert_race(exc: Exception) -> bool:
    cause = exc.__cause__ if isinstance(exc, StoreUnavailable) else exc
    if isinstance(cause, KeyError):
        return True
    return isinstance(cause, BulkWriteError) and all(
        error.get("code") == DUPLICATE_KEY for error in cause.details.get("writeErrors", [])
    )
