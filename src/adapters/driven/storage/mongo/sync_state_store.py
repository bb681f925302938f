"""SyncStateStore on MongoDB, in its own collection so the cache documents keep the shape the
Node service wrote. One document per rider (unique on user_id); a batch of statuses is one read of
the riders' `_id`s and one `bulk_write` (see `put_many`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError

from adapters.driven.storage.mongo.database import DUPLICATE_KEY, MongoDatabase
from application.errors import StoreUnavailable
from domain.sync_state import SyncError, SyncState, SyncStatus

DEFAULT_COLLECTION = "bytemarksyncstatuses"
_WITHOUT_ID = {"_id": 0}
_IN_CHUNK = 1000
_UPSERT_ATTEMPTS = 3
# FerretDB v1 on SQLite keeps a pool connection per update by `_id` until the command ends (100 in
# the pool): an update command of 200 such updates never finished. A few per command stay far below.
_WRITES_PER_COMMAND = 16


class MongoSyncStateStore:
    def __init__(self, db: MongoDatabase, collection: str = DEFAULT_COLLECTION) -> None:
        self._db = db
        self._collection_name = collection

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
        """One bulk_write: riders with a status are replaced by `_id`, the others inserted.

        FerretDB v1 on SQLite scans and decodes the whole collection for a filter other than
        `_id` alone, so an upsert by user_id per rider made a bulk run quadratic (bench/RESULTS.md,
        round 4); the `_id`s come from one `$in` read of the batch. A rider whose status appeared
        or vanished in between (another process) is written again by an upsert on user_id."""
        latest = {status.user_id: status for status in statuses}
        if not latest:
            return
        for attempt in range(_UPSERT_ATTEMPTS):
            try:
                with self._db.errors_as_unavailable():
                    await self._write(latest)
                return
            except (StoreUnavailable, KeyError) as exc:
                # FerretDB v1: two processes writing one rider's status at once both insert; the
                # loser hits the unique user_id index, and FerretDB's reply to it lacks `nModified`
                # (PyMongo raises KeyError). Run again: the batch's read now finds the document.
                if attempt + 1 == _UPSERT_ATTEMPTS or not _lost_an_upsert_race(exc):
                    if isinstance(exc, KeyError):
                        raise StoreUnavailable("MongoDB", f"unexpected bulk write reply: {exc!r}") from exc
                    raise

    async def _write(self, latest: dict[int, SyncStatus]) -> None:
        """Riders with a status are replaced by `_id`, the others inserted, in one bulk_write; a
        rider whose status appeared or vanished since the read of the `_id`s (another process) is
        written again by an upsert on user_id."""
        collection = self._collection()
        ids = await self._document_ids(sorted(latest))
        writes: list[Any] = [
            ReplaceOne({"_id": ids[user_id]}, _document(status))
            if user_id in ids
            else InsertOne(_document(status))
            for user_id, status in latest.items()
        ]
        riders = list(latest)
        again: list[int] = []
        replaced = 0
        for start in range(0, len(writes), _WRITES_PER_COMMAND):
            try:
                result = await collection.bulk_write(
                    writes[start : start + _WRITES_PER_COMMAND], ordered=False
                )
                replaced += result.matched_count
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(error.get("code") != DUPLICATE_KEY for error in errors):
                    raise
                # inserted meanwhile elsewhere
                again += [riders[start + error["index"]] for error in errors]
                replaced += int(exc.details.get("nMatched", 0))
        if replaced < len(ids):  # a status removed meanwhile: write every replaced rider again
            again += [user_id for user_id in latest if user_id in ids]
        if again:
            await collection.bulk_write(
                [ReplaceOne({"user_id": u}, _document(latest[u]), upsert=True) for u in again], ordered=False
            )

    async def _document_ids(self, user_ids: list[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for start in range(0, len(user_ids), _IN_CHUNK):
            chunk = user_ids[start : start + _IN_CHUNK]
            cursor = self._collection().find({"user_id": {"$in": chunk}}, {"_id": 1, "user_id": 1})
            found.update(
                (int(document["user_id"]), document["_id"]) for document in await cursor.to_list(None)
            )
        return found

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
