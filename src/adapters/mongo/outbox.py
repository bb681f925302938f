"""Outbox on MongoDB. FerretDB has no multi-document transactions, so a cache write carries its
records inside the cache document (field `_outbox`, flagged by `_outbox_pending`; the Node
service's readers ignore both): one single-document write stores the cache and its records.
Once all are delivered both fields are removed, leaving the Node shape. Rotated tokens belong to
no cache write and go to their own collection (one insert each). A cache marked `_purge` (a
delete's tombstone, see cache_store.py) is deleted once its records are delivered."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING

from adapters.mongo.database import MongoDatabase
from adapters.mongo.write_lock import WriteLocks
from adapters.outbox_codec import OutboxCodec
from application.errors import WriteConflict
from application.outbox import OutboxBacklog, OutboxRecord, RotatedToken, Target

FIELD = "_outbox"
FLAG = "_outbox_pending"
PURGE = "_purge"
_MAX_REMEMBERED = 10_000


class MongoOutbox:
    def __init__(
        self,
        db: MongoDatabase,
        codec: OutboxCodec,
        cache_collection: str = "bytemarkticketscaches",
        token_collection: str = "bytemarkticketsoutbox",
    ) -> None:
        self._db = db
        self._codec = codec
        self._cache_collection = cache_collection
        self._token_collection = token_collection
        # the cache store's locks: FerretDB's conditional update is not atomic (see write_lock)
        self._locks = WriteLocks(db, f"{cache_collection}_locks")
        # user -> records this process's last cache write stored, when they are all the user's
        # pending ones: the relay's read right after the write then needs no query (a scan of
        # every cache on FerretDB v1)
        self._just_written: OrderedDict[int, list[OutboxRecord]] = OrderedDict()
        self._document_ids: OrderedDict[int, Any] = OrderedDict()  # user -> its cache's `_id`

    async def create_schema(self) -> None:
        with self._db.errors_as_unavailable():
            await self._tokens().create_index([("record_id", ASCENDING)], unique=True)
            await self._tokens().create_index([("user_id", ASCENDING)])
            await self._caches().create_index([(FLAG, ASCENDING)])

    def documents(self, records: Sequence[OutboxRecord]) -> list[dict[str, Any]]:
        """The `_outbox` entries of a cache write."""
        return [self._codec.to_document(record) for record in records]

    async def add(self, records: Sequence[OutboxRecord]) -> None:
        if records:
            with self._db.errors_as_unavailable():
                await self._tokens().insert_many(self.documents(records))

    async def pending(self, limit: int) -> list[OutboxRecord]:
        with self._db.errors_as_unavailable():
            tokens = await self._tokens().find({}, {"_id": 0}).sort("_id", ASCENDING).to_list(limit)
            caches = await self._caches().find({FLAG: True}, {"_id": 0, FIELD: 1}).to_list(limit)
        documents = tokens + [entry for cache in caches for entry in cache.get(FIELD) or ()]
        return [self._codec.from_document(document) for document in documents[:limit]]

    def written(self, user_id: int, records: Sequence[OutboxRecord] | None, document_id: Any = None) -> None:
        """What a cache write just stored for the user: its records when they are the only ones
        pending in the document, else None (unknown); and the document's `_id` when known."""
        self._just_written.pop(user_id, None)
        if records is not None:
            self._just_written[user_id] = list(records)
            if len(self._just_written) > _MAX_REMEMBERED:
                self._just_written.popitem(last=False)
        self._document_ids.pop(user_id, None)
        if document_id is not None:
            self._document_ids[user_id] = document_id
            if len(self._document_ids) > _MAX_REMEMBERED:
                self._document_ids.popitem(last=False)

    async def pending_for_user(self, user_id: int) -> list[OutboxRecord]:
        known = self._just_written.pop(user_id, None)
        if known is not None:
            return known
        with self._db.errors_as_unavailable():
            document = await self._caches().find_one({"user_id": user_id}, {"_id": 0, FIELD: 1})
        entries = (document or {}).get(FIELD) or ()
        return [self._codec.from_document(entry) for entry in entries]

    async def delete_purged(self, user_id: int) -> None:
        """Delete the user's tombstone now if no record is pending in it (else the relay will)."""
        with self._db.errors_as_unavailable():
            await self._drop_from_cache(user_id, set())

    async def mark_delivered(self, records: Sequence[OutboxRecord]) -> None:
        delivered = {record.record_id for record in records}
        by_user: dict[int, list[str]] = defaultdict(list)
        token_ids = []
        for record in records:
            if record.target is Target.TOKEN:
                token_ids.append(record.record_id)
            else:
                by_user[record.user_id].append(record.record_id)
        with self._db.errors_as_unavailable():
            if token_ids:
                await self._tokens().delete_many({"record_id": {"$in": token_ids}})
            for user_id in by_user:
                # Shielded: a caller out of time (the relay's inline budget) must not cancel this
                # between the lock's insert and its delete, which would leave the rider's lock
                # for every writer to wait out (10 s) before breaking it.
                mark = asyncio.ensure_future(self._drop_from_cache(user_id, delivered))
                mark.add_done_callback(_consume_exception)
                await asyncio.shield(mark)

    async def _drop_from_cache(self, user_id: int, delivered: set[str]) -> None:
        """Rewrite the user's `_outbox` without the delivered records (or delete a tombstone left
        with none), conditional on the cache version read (a cache write in between bumps it:
        read again)."""
        known = self._document_ids.get(user_id)
        if known is not None and await self._db.needs_write_locks():
            if await self._drop_by_id(user_id, known, delivered):
                return
            self._document_ids.pop(user_id, None)
        for _ in range(5):
            document = await self._caches().find_one(
                {"user_id": user_id}, {"_id": 0, FIELD: 1, "version": 1, PURGE: 1}
            )
            if document is None:
                return
            version = document.get("version")
            entries = document.get(FIELD) or []
            remaining = [entry for entry in entries if entry.get("record_id") not in delivered]
            purged = not remaining and document.get(PURGE) is not None and document.get(PURGE) == version
            if len(remaining) == len(entries) and not purged:
                return
            try:
                async with self._locks.held(user_id, version):
                    if purged:
                        result = await self._caches().delete_one({"user_id": user_id, "version": version})
                        done = result.deleted_count == 1
                    else:
                        update = (
                            {"$set": {FIELD: remaining}} if remaining else {"$unset": {FIELD: "", FLAG: ""}}
                        )
                        result = await self._caches().update_one(
                            {"user_id": user_id, "version": version}, update
                        )
                        done = result.matched_count == 1
            except WriteConflict:
                return  # a cache write holds the lock: the records stay pending a little longer
            if done:
                return
        # still racing cache writes: the records stay pending and are delivered (harmlessly) again

    async def _drop_by_id(self, user_id: int, document_id: Any, delivered: set[str]) -> bool:
        """The same on FerretDB, by `_id` under the user's lock (every writer of a cache document
        holds it there): FerretDB v1 answers a filter of `_id` alone from its primary key and scans
        every cache for any other. False when that `_id` is no longer the user's cache."""
        caches = self._caches()
        try:
            async with self._locks.held(user_id, None):
                document = await caches.find_one(
                    {"_id": document_id}, {"user_id": 1, "version": 1, FIELD: 1, PURGE: 1}
                )
                if document is None or document.get("user_id") != user_id:
                    return False
                entries = document.get(FIELD) or []
                remaining = [entry for entry in entries if entry.get("record_id") not in delivered]
                version = document.get("version")
                if not remaining and document.get(PURGE) is not None and document.get(PURGE) == version:
                    await caches.delete_one({"_id": document_id})
                elif len(remaining) != len(entries):
                    update = {"$set": {FIELD: remaining}} if remaining else {"$unset": {FIELD: "", FLAG: ""}}
                    await caches.update_one({"_id": document_id}, update)
        except WriteConflict:
            pass  # a cache write holds the lock: the records stay pending a little longer
        return True

    async def newest_token(self, user_id: int) -> RotatedToken | None:
        with self._db.errors_as_unavailable():
            found = (
                await self._tokens().find({"user_id": user_id}, {"_id": 0}).sort("_id", DESCENDING).to_list(1)
            )
        return self._codec.token(found[0]) if found else None

    async def backlog(self) -> OutboxBacklog:
        pending = {target: 0 for target in Target}
        oldest: int | None = None
        for record in await self.pending(10_000):
            pending[record.target] += 1
            oldest = record.created_at if oldest is None else min(oldest, record.created_at)
        return OutboxBacklog(pending, oldest)

    def _tokens(self) -> Any:
        return self._db.collection(self._token_collection)

    def _caches(self) -> Any:
        return self._db.collection(self._cache_collection)


def _consume_exception(task: asyncio.Future[None]) -> None:
    """A mark whose caller was cancelled reports its own failure nowhere: the records stay pending."""
    if not task.cancelled():
        task.exception()
