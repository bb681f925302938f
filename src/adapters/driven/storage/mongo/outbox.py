"""Outbox on MongoDB. A cache write carries its records inside the cache document (field
`_outbox`, flagged by `_outbox_pending`; the Node service's readers ignore both): one
single-document write, atomic on its own, stores the cache and its records, so no
multi-document transaction is needed (MongoDB has them on replica sets, FerretDB v1 has none).
Once all are delivered both fields are removed, leaving the Node shape. Rotated tokens belong to
no cache write and go to their own collection (one insert each). A cache marked `_purge` (a
delete's tombstone, see cache_store.py) is deleted once its records are delivered."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING

from adapters.common.bounded_lru import BoundedLru
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.locks import Locks, NoLocks
from adapters.driven.storage.mongo.marks import Marks, RiderByRiderMarks
from adapters.driven.storage.outbox_codec import OutboxCodec
from adapters.driven.storage.unawaited_work import consume_exception
from application.errors import WriteConflict
from application.outbox import OutboxBacklog, OutboxRecord, RotatedToken, Target

FIELD = "_outbox"
FLAG = "_outbox_pending"
PURGE = "_purge"
_MAX_REMEMBERED = 10_000
_BACKLOG_FIELDS = {"_id": 0, "target": 1, "created_at": 1}
_CACHE_BACKLOG_FIELDS = {"_id": 0, f"{FIELD}.target": 1, f"{FIELD}.created_at": 1}


class MongoOutbox:
    def __init__(
        self,
        db: MongoDatabase,
        codec: OutboxCodec,
        cache_collection: str = "bytemarkticketscaches",
        token_collection: str = "bytemarkticketsoutbox",
        *,
        locks: Locks | None = None,
        marks: Marks | None = None,
    ) -> None:
        """Defaults are profile `mongodb`'s (no locks, rider-by-rider marks); under profile
        `ferretdb` the composition root injects the cache store's document locks and grouped marks."""
        self._db = db
        self._codec = codec
        self._cache_collection = cache_collection
        self._token_collection = token_collection
        self._locks: Locks = locks or NoLocks()
        self._marks: Marks = marks or RiderByRiderMarks()
        # user -> records this process's last cache write stored, when they are all the user's
        # pending ones: the relay's read right after the write then needs no query (a scan of
        # every cache on FerretDB v1)
        self._just_written: BoundedLru[int, list[OutboxRecord]] = BoundedLru(_MAX_REMEMBERED)

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
        if records is not None:
            self._just_written.put(user_id, list(records))
        else:
            self._just_written.pop(user_id)
        self._marks.remember(user_id, document_id)

    async def pending_for_user(self, user_id: int) -> list[OutboxRecord]:
        known = self._just_written.pop(user_id)
        if known is not None:
            return known
        with self._db.errors_as_unavailable():
            document = await self._caches().find_one({"user_id": user_id}, {"_id": 0, FIELD: 1})
        entries = (document or {}).get(FIELD) or ()
        return [self._codec.from_document(entry) for entry in entries]

    async def delete_purged(self, user_id: int) -> None:
        """Delete the user's tombstone now if no record is pending in it (else the relay will)."""
        with self._db.errors_as_unavailable():
            await self._drop_from_cache(user_id, frozenset())

    async def mark_delivered(self, records: Sequence[OutboxRecord]) -> None:
        delivered = frozenset(record.record_id for record in records)
        by_user: dict[int, list[str]] = defaultdict(list)
        token_ids = []
        for record in records:
            if record.stands_alone:  # a rotated token or a bulk run's notice: its own document
                token_ids.append(record.record_id)
            else:
                by_user[record.user_id].append(record.record_id)
        if token_ids:
            with self._db.errors_as_unavailable():
                await self._tokens().delete_many({"record_id": {"$in": token_ids}})
        await self._marks.mark(list(by_user), delivered, self._mark_alone)

    async def _mark_alone(self, user_id: int, delivered: frozenset[str]) -> None:
        # Shielded: a caller out of time (the relay's inline budget) must not cancel this between
        # the lock's insert and its delete, which would leave the rider's lock for every writer to
        # wait out (10 s) before breaking it.
        mark = asyncio.ensure_future(self._drop_from_cache(user_id, delivered))
        mark.add_done_callback(consume_exception)
        with self._db.errors_as_unavailable():
            await asyncio.shield(mark)

    async def _drop_from_cache(self, user_id: int, delivered: frozenset[str]) -> None:
        """Rewrite the user's `_outbox` without the delivered records (or delete a tombstone left
        with none), conditional on the cache version read (a cache write in between bumps it:
        read again)."""
        if await self._marks.drop_known(user_id, delivered):
            return
        for _ in range(5):
            document = await self._caches().find_one(
                {"user_id": user_id}, {"_id": 0, FIELD: 1, "version": 1, PURGE: 1}
            )
            if document is None:
                return
            version = document.get("version")
            removal = after_delivery(document, delivered)
            if removal is None:
                return
            at_version = {"user_id": user_id, "version": version}
            try:
                async with self._locks.held(user_id, version):
                    caches = self._caches()
                    if removal.delete:
                        done = (await caches.delete_one(at_version)).deleted_count == 1
                    else:
                        done = (await caches.update_one(at_version, removal.update)).matched_count == 1
            except WriteConflict:
                return  # a cache write holds the lock: the records stay pending a little longer
            if done:
                return
        # still racing cache writes: the records stay pending and are delivered (harmlessly) again

    async def newest_token(self, user_id: int) -> RotatedToken | None:
        with self._db.errors_as_unavailable():
            found = (
                await self._tokens().find({"user_id": user_id}, {"_id": 0}).sort("_id", DESCENDING).to_list(1)
            )
        return self._codec.token(found[0]) if found else None

    async def backlog(self) -> OutboxBacklog:
        """Exact counts and oldest: every pending record's target and time, none of its body.
        On FerretDB v1 the cache filter is a scan of every cache (as `pending` is; its aggregation
        has no $min), sending back only the pending records' two fields; tokens are a collection
        of pending ones alone."""
        pending = {target: 0 for target in Target}
        oldest: int | None = None

        def count(entry: dict[str, Any]) -> None:
            nonlocal oldest
            pending[Target(entry["target"])] += 1
            created_at = int(entry["created_at"])
            oldest = created_at if oldest is None else min(oldest, created_at)

        with self._db.errors_as_unavailable():
            async for token in self._tokens().find({}, _BACKLOG_FIELDS):
                count(token)
            async for cache in self._caches().find({FLAG: True}, _CACHE_BACKLOG_FIELDS):
                for entry in cache.get(FIELD) or ():
                    count(entry)
        return OutboxBacklog(pending, oldest)

    def _tokens(self) -> Any:
        return self._db.collection(self._token_collection)

    def _caches(self) -> Any:
        return self._db.collection(self._cache_collection)


@dataclass(frozen=True, slots=True)
class Removal:
    """What marking records delivered does to the cache document holding them."""

    delete: bool  # a delete's tombstone with nothing left pending: the document goes
    update: dict[str, Any]  # else `_outbox` rewritten without them (both fields gone once empty)


def after_delivery(document: dict[str, Any], delivered: AbstractSet[str]) -> Removal | None:
    """The removal of the `delivered` records from a cache document read, None when it holds none
    of them (and is no tombstone left empty)."""
    entries = document.get(FIELD) or []
    remaining = [entry for entry in entries if entry.get("record_id") not in delivered]
    purge = document.get(PURGE)
    if not remaining and purge is not None and purge == document.get("version"):
        return Removal(delete=True, update={})
    if len(remaining) == len(entries):
        return None
    update = {"$set": {FIELD: remaining}} if remaining else {"$unset": {FIELD: "", FLAG: ""}}
    return Removal(delete=False, update=update)
