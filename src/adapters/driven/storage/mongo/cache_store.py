"""CacheStore on MongoDB: one document per user in the shape the Node service wrote
(`{user_id, timestamp, passes, passes4}`) plus `version` for compare-and-set.

The write is a single-document compare-and-set (filter on user_id and version): MongoDB applies
it atomically to that one document, so the design needs no session or multi-document transaction
(MongoDB has them on replica sets; FerretDB v1 has none, and the same code serves both). The
feed's changes of a write ride in the same write, as one outbox record the relay appends to the
feed (change_feed.py). What the server profile needs is injected: locks around the
compare-and-set (none on MongoDB), how new caches are inserted, and how a read finds a document.

A delete must emit a REMOVED change for every pass, never losing or inventing one, and a
document cannot carry an outbox once it is gone. So a delete is a tombstone first: one
compare-and-set empties both lists, pushes the REMOVED changes (computed from the very version
it replaces, so a write racing the delete cannot make them stale) and marks the document
`_purge: <that new version>`; the relay deletes the document once its outbox is delivered,
still conditional on that version. Readers see no cache from the tombstone on; a rebuild
meanwhile replaces the tombstone (compare-and-set on its version, so its ADDED changes follow
the REMOVED ones in the same outbox) and the relay then leaves the document alone.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Any

import bson
from bson import ObjectId
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError, OperationFailure

from adapters.common.bounded_lru import BoundedLru
from adapters.driven.storage.mongo import outbox as outbox_fields
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.inserts import DirectInserts, Inserts
from adapters.driven.storage.mongo.locks import Locks, NoLocks
from adapters.driven.storage.mongo.outbox import MongoOutbox
from adapters.driven.storage.mongo.refusals import encoded_within_limit, refusals_as_errors
from adapters.driven.storage.mongo.storable_bson import bson_safe
from application.errors import StoreUnavailable, WriteConflict
from application.outbox import OutboxRecord, change_feed_record
from application.ports import CacheFreshness
from domain.changes import PassChange, cache_changes
from domain.model import TicketCache

# `_id` is read: the user's next read looks the document up by it (see `_ReadMemo`)
_CACHE_FIELDS = {outbox_fields.FIELD: 0}
_DELETE_ATTEMPTS = 3
_LIVE = {outbox_fields.PURGE: {"$exists": False}}  # a tombstone is a deleted cache to readers
_USER_ID_ONLY = {"_id": 0, "user_id": 1}
_TIMESTAMP_ONLY = {"_id": 0, "timestamp": 1}
# a number: a missing or null timestamp would sort first and is no age (the index bounds it too)
_DATED_LIVE = {"timestamp": {"$type": "number"}, **_LIVE}
#: freshness() reads it: the oldest cache is its first entry, the stale ones a range of it.
TIMESTAMP_INDEX = [("timestamp", ASCENDING)]
#: Default bound on the BSON bytes held by the read memo (parsed objects take a few times it).
DEFAULT_READ_MEMO_BYTES = 4 * 1024 * 1024
#: Users whose document `_id` is remembered (about 150 bytes each).
_MAX_REMEMBERED_IDS = 50_000


class _ReadMemo:
    """What the last reads of a user's document showed: its `_id`, and its exact BSON bytes with
    the cache parsed from them.

    Profile `ferretdb` (`by_id_first`): FerretDB v1 on SQLite answers a filter of `_id` alone
    from its primary key and scans and decodes every document for any other filter, `user_id`
    too (about 0.5 ms per cache). So a read first asks for the remembered `_id` and takes the
    answer only if it still holds the user's `user_id` (ObjectIds are never reused; the unique
    index on user_id makes it that user's one cache), else asks by user_id. Profile `mongodb`
    asks by user_id at once: its unique index answers in one lookup, never two. Either way,
    equal bytes give the same immutable TicketCache, so an unchanged cache is not parsed again.
    """

    def __init__(self, max_bytes: int) -> None:
        self.ids: BoundedLru[int, Any] = BoundedLru(_MAX_REMEMBERED_IDS)
        self.parsed: BoundedLru[int, tuple[bytes, TicketCache]] = BoundedLru(max_bytes, _bson_bytes)

    def document_id(self, user_id: int) -> Any:
        return self.ids.get(user_id)

    def remember_id(self, user_id: int, document_id: Any) -> None:
        self.ids.put(user_id, document_id)

    def cache(self, user_id: int, raw: RawBSONDocument, codec_options: CodecOptions[Any]) -> TicketCache:
        self.remember_id(user_id, raw["_id"])
        data = raw.raw if isinstance(raw.raw, bytes) else bytes(raw.raw)
        remembered = self.parsed.get(user_id)
        if remembered is not None and remembered[0] == data:
            self.parsed.touch(user_id)
            return remembered[1]
        cache = TicketCache.from_document(bson.decode(data, codec_options=codec_options))
        self.parsed.put(user_id, (data, cache))
        return cache

    def forget(self, user_id: int) -> None:
        self.ids.pop(user_id)
        self.parsed.pop(user_id)


def _bson_bytes(user_id: int, parsed: tuple[bytes, TicketCache]) -> int:
    return len(parsed[0])


class MongoCacheStore:
    def __init__(
        self,
        db: MongoDatabase,
        collection: str = "bytemarkticketscaches",
        outbox: MongoOutbox | None = None,
        read_memo_bytes: int = DEFAULT_READ_MEMO_BYTES,
        on_refused: Callable[[str], None] = lambda reason: None,
        *,
        locks: Locks | None = None,
        inserts: Inserts | None = None,
        reads_by_id_first: bool = False,
        checks_unique_index: bool = False,
    ) -> None:
        """Defaults are profile `mongodb`'s strategies; the composition root injects FerretDB's
        (`locks`, `inserts`, `reads_by_id_first`, `checks_unique_index`) under profile `ferretdb`."""
        self._db = db
        self._on_refused = on_refused  # told 'too_large' or 'not_storable' when a write is refused
        self._collection_name = collection
        self._reads = _ReadMemo(read_memo_bytes)
        self._raw: tuple[Any, Any] | None = None  # (collection, its raw-BSON twin)
        self._locks: Locks = locks or NoLocks()
        self._inserts: Inserts = inserts or DirectInserts()
        self._reads_by_id_first = reads_by_id_first
        self._checks_unique_index = checks_unique_index
        self._outbox = outbox
        # user -> the version last read with no outbox record pending (bounded like the memo's ids)
        self._clean_versions: BoundedLru[int, int] = BoundedLru(_MAX_REMEMBERED_IDS)

    async def create_schema(self) -> None:
        """Unique index on user_id; idempotent. Says what to fix when the old service left duplicate
        caches or another index on user_id (e.g. a non-unique `user_id_1`) behind. Profile `ferretdb`
        checks after the fact too: FerretDB v1 answers "ok" and keeps a non-unique index of the same key."""
        collection = self._collection()
        with self._db.errors_as_unavailable():
            try:
                await collection.create_index([("user_id", ASCENDING)], unique=True)
            except OperationFailure as exc:  # DuplicateKeyError on MongoDB, InternalError on FerretDB
                if await self._has_duplicate_user_ids():
                    raise self._duplicates_error() from exc
                raise self._conflicting_index_error(self._db.redact(str(exc))) from exc
            if self._checks_unique_index and not _has_unique_user_id_index(
                await collection.index_information()
            ):
                raise self._conflicting_index_error("a non-unique index on user_id exists")
            await collection.create_index(TIMESTAMP_INDEX)

    async def _has_duplicate_user_ids(self) -> bool:
        pipeline = [
            {"$group": {"_id": "$user_id", "n": {"$sum": 1}}},
            {"$match": {"n": {"$gt": 1}}},
            {"$limit": 1},
        ]
        cursor = await _awaited(self._collection().aggregate(pipeline))
        return bool(await cursor.to_list(1))

    def _duplicates_error(self) -> StoreUnavailable:
        return StoreUnavailable(
            "MongoDB",
            f"{self._collection_name} holds several caches for one user_id;"
            " remove the duplicates, then create the unique index",
        )

    def _conflicting_index_error(self, reason: str) -> StoreUnavailable:
        return StoreUnavailable(
            "MongoDB",
            f"cannot create the unique index on {self._collection_name}.user_id ({reason});"
            " drop the conflicting index first",
        )

    async def get(self, user_id: int) -> TicketCache | None:
        collection = self._collection()
        raw = self._raw_twin(collection)
        with self._db.errors_as_unavailable():
            document: RawBSONDocument | None = None
            known = self._reads.document_id(user_id) if self._reads_by_id_first else None
            if known is not None:
                document = await raw.find_one({"_id": known}, _CACHE_FIELDS)
                if document is not None and document.get("user_id") != user_id:
                    document = None
            if document is None:
                document = await raw.find_one({"user_id": user_id}, _CACHE_FIELDS)
        if document is not None and outbox_fields.PURGE in document:
            document = None  # a delete's tombstone: no cache to readers
        if document is None:
            self._reads.forget(user_id)
            return None
        cache = self._reads.cache(user_id, document, collection.codec_options)
        if outbox_fields.FLAG in document:
            self._clean_versions.pop(user_id)
        else:
            self._clean_versions.put(user_id, cache.version)
        return cache

    def _raw_twin(self, collection: Any) -> Any:
        """The collection returning undecoded documents (RawBSONDocument), made once per collection."""
        if self._raw is None or self._raw[0] is not collection:
            options = collection.codec_options.with_options(document_class=RawBSONDocument)
            self._raw = (collection, collection.with_options(codec_options=options))
        return self._raw[1]

    async def save(
        self,
        cache: TicketCache,
        expected_version: int | None,
        records: Sequence[OutboxRecord] = (),
        changes: Sequence[PassChange] = (),
    ) -> TicketCache:
        """One single-document write: the cache fields, and its outbox records appended to
        `_outbox` (the relay removes them once delivered; other fields are left as they are),
        the feed's `changes` among them as one record."""
        return await self._write(cache, expected_version, records, changes)

    async def _write(
        self,
        cache: TicketCache,
        expected_version: int | None,
        records: Sequence[OutboxRecord],
        changes: Sequence[PassChange],
        purge: bool = False,
    ) -> TicketCache:
        stored = replace(cache, version=(expected_version or 0) + 1)
        to_relay = list(records)
        if changes and self._outbox is not None:
            to_relay.append(change_feed_record(cache.user_id, changes, changes[0].changed_at))
        collection = self._collection()
        document: Any = None
        with self._db.errors_as_unavailable(), refusals_as_errors(
            cache.user_id, lambda: len(document.raw), self._on_refused
        ):
            fields = bson_safe(stored.to_document())
            pending = bson_safe(self._outbox.documents(to_relay)) if to_relay and self._outbox else []
            if pending:
                fields[outbox_fields.FLAG] = True
            if purge:
                fields[outbox_fields.PURGE] = stored.version
            if expected_version is None:
                if pending:
                    fields[outbox_fields.FIELD] = pending
                document_id: Any = ObjectId()  # chosen here, so the relay can find it by `_id`
                fields = {"_id": document_id, **fields}
                document = encoded_within_limit(cache.user_id, fields)
                try:
                    await self._inserts.insert(collection, document)
                except DuplicateKeyError as exc:
                    tombstone = await self._tombstone_version(cache.user_id)
                    if tombstone is None:
                        raise WriteConflict(cache.user_id, expected_version) from exc
                    # a rebuild over a deleted cache: replace the tombstone, after its changes
                    return await self._write(cache, tombstone, records, changes)
                alone = True  # a new document holds no earlier records
                self._reads.remember_id(cache.user_id, document_id)
            else:
                document = encoded_within_limit(cache.user_id, fields)
                update: dict[str, Any] = {"$set": document}
                if not purge:
                    update["$unset"] = {outbox_fields.PURGE: ""}  # a write after a tombstone keeps the cache
                if pending:
                    update["$push"] = {outbox_fields.FIELD: {"$each": pending}}
                async with self._locks.held(cache.user_id, expected_version):
                    result = await collection.update_one(_cas_filter(cache.user_id, expected_version), update)
                if result.matched_count != 1:
                    raise WriteConflict(cache.user_id, expected_version)
                # records are only ever removed without a version change: none pending when read,
                # none pending beside ours now
                alone = self._clean_versions.get(cache.user_id) == expected_version
            self._clean_versions.pop(cache.user_id)
            if self._outbox is not None:  # no await from here to the relay's read of them
                self._outbox.written(
                    cache.user_id, to_relay if alone else None, self._reads.document_id(cache.user_id)
                )
        return stored

    async def is_empty(self) -> bool:
        with self._db.errors_as_unavailable():
            return await self._collection().find_one(_LIVE, {"_id": 1}) is None

    async def freshness(self, moment: int) -> CacheFreshness:
        """Tombstones are deleted caches: they walk the index but are not counted."""
        collection = self._collection()
        with self._db.errors_as_unavailable():
            oldest = await collection.find_one(self.oldest_filter(), _TIMESTAMP_ONLY, sort=TIMESTAMP_INDEX)
            stale = await collection.count_documents(self.stale_filter(moment))
        return CacheFreshness(None if oldest is None else int(oldest["timestamp"]), int(stale))

    @staticmethod
    def oldest_filter() -> dict[str, Any]:
        return dict(_DATED_LIVE)

    @staticmethod
    def stale_filter(moment: int) -> dict[str, Any]:
        return {"timestamp": {"$lt": moment}, **_LIVE}

    async def iter_user_ids(self, batch_size: int = 1000) -> AsyncIterator[int]:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        collection = self._collection()
        query: dict[str, Any] = dict(_LIVE)
        while True:
            # Keyset pagination: each batch starts after the last id seen, so memory stays flat.
            cursor = collection.find(query, _USER_ID_ONLY).sort("user_id", ASCENDING).limit(batch_size)
            with self._db.errors_as_unavailable():
                documents = await cursor.to_list(batch_size)
            for document in documents:
                yield int(document["user_id"])
            if len(documents) < batch_size:
                return
            query = {"user_id": {"$gt": documents[-1]["user_id"]}, **_LIVE}

    async def delete(self, user_id: int, changes: Sequence[PassChange] = ()) -> bool:
        """The tombstone write (see the module docstring); the relay deletes the document. The
        REMOVED changes are recomputed from the version replaced (`changes` gives their time).
        Without an outbox: a plain delete, never of a cache whose records are still pending."""
        self._reads.forget(user_id)
        if self._outbox is None:
            with self._db.errors_as_unavailable():
                result = await self._collection().delete_one(
                    {"user_id": user_id, outbox_fields.FLAG: {"$ne": True}}
                )
            return bool(result.deleted_count)
        now = changes[0].changed_at if changes else int(time.time())
        for attempt in range(_DELETE_ATTEMPTS):
            current = await self.get(user_id)
            if current is None:
                return False
            removed = cache_changes(user_id, current, None, now)
            emptied = replace(current, passes=(), passes4=())
            try:
                await self._write(emptied, current.version, (), removed, purge=True)
            except WriteConflict:
                if attempt + 1 == _DELETE_ATTEMPTS:
                    raise
                continue
            if not removed:  # nothing for the feed: no record made the relay come by
                await self._outbox.delete_purged(user_id)
            return True
        raise AssertionError("unreachable")  # pragma: no cover

    async def _tombstone_version(self, user_id: int) -> int | None:
        document = await self._collection().find_one(
            {"user_id": user_id, outbox_fields.PURGE: {"$exists": True}}, {"_id": 0, "version": 1}
        )
        return None if document is None else int(document.get("version") or 0)

    def _collection(self) -> Any:
        return self._db.collection(self._collection_name)


def _has_unique_user_id_index(indexes: dict[str, Any]) -> bool:
    return any(list(index["key"]) == [("user_id", 1)] and index.get("unique") for index in indexes.values())


async def _awaited(value: Any) -> Any:
    """motor's aggregate() returns a cursor, PyMongo async's a coroutine of one."""
    return await value if inspect.isawaitable(value) else value


def _cas_filter(user_id: int, expected_version: int) -> dict[str, Any]:
    if expected_version == 0:
        # Documents written by the Node service have no version (or a null one): they are version 0.
        return {
            "user_id": user_id,
            "$or": [{"version": 0}, {"version": None}, {"version": {"$exists": False}}],
        }
    return {"user_id": user_id, "version": expected_version}
