"""Profile `ferretdb`: the relay's marks of many riders grouped into a few commands by `_id`.

FerretDB v1 on SQLite answers a filter of `_id` alone from its primary key and scans every cache
for any other, and its conditional update is not atomic (so each rewrite holds the rider's
document lock). A rider whose cache `_id` a write of this process just learnt is marked with the
others queued meanwhile: their locks taken by one insert, their caches read by `_id`
(concurrently), rewritten by bulk writes of at most `writes_per_bulk` (FerretDB holds a pool
connection per write of a bulk until it ends, 100 in all) and the locks freed by one delete. A
rider whose lock is busy, or whose cache `_id` changed, is marked alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import DeleteOne, UpdateOne

from adapters.common.bounded_lru import BoundedLru
from adapters.driven.storage.group_commit import GroupCommit, IfCallerCancelled
from adapters.driven.storage.mongo.database import MongoDatabase
from adapters.driven.storage.mongo.locks import Locks
from adapters.driven.storage.mongo.marks import MarkByUserId
from adapters.driven.storage.mongo.outbox import FIELD, PURGE, after_delivery
from application.errors import WriteConflict

_MAX_REMEMBERED = 10_000
_MARK_GROUP = 32  # riders marked together at most (their caches are read concurrently)
_MARK_FIELDS = {"user_id": 1, "version": 1, FIELD: 1, PURGE: 1}


@dataclass(frozen=True, slots=True)
class _Mark:
    user_id: int
    document_id: Any
    delivered: frozenset[str]
    by_user_id: MarkByUserId


class GroupedMarks:
    def __init__(
        self, db: MongoDatabase, cache_collection: str, locks: Locks, writes_per_bulk: int
    ) -> None:
        self._db = db
        self._cache_collection = cache_collection
        self._locks = locks
        self._writes_per_bulk = writes_per_bulk
        self._document_ids: BoundedLru[int, Any] = BoundedLru(_MAX_REMEMBERED)  # user -> its cache's `_id`
        self._marks = GroupCommit(self._mark_group, _MARK_GROUP, IfCallerCancelled.SEND_ANYWAY)

    def remember(self, user_id: int, document_id: Any) -> None:
        if document_id is not None:
            self._document_ids.put(user_id, document_id)
        else:
            self._document_ids.pop(user_id)

    async def mark(
        self, user_ids: Sequence[int], delivered: frozenset[str], by_user_id: MarkByUserId
    ) -> None:
        marks: list[Awaitable[None]] = []
        for user_id in user_ids:
            document_id = self._document_ids.get(user_id)
            if document_id is not None:  # with other riders' marks: a few commands for all
                marks.append(self._marks.submit(_Mark(user_id, document_id, delivered, by_user_id)))
            else:
                marks.append(by_user_id(user_id, delivered))
        await asyncio.gather(*marks)

    async def drop_known(self, user_id: int, delivered: frozenset[str]) -> bool:
        known = self._document_ids.get(user_id)
        if known is None:
            return False
        if await self._drop_by_id(user_id, known, delivered):
            return True
        self._document_ids.pop(user_id)
        return False

    async def _mark_group(self, marks: Sequence[_Mark]) -> list[BaseException | None]:
        caches = self._db.collection(self._cache_collection)
        first: dict[int, _Mark] = {}
        alone: list[_Mark] = []
        for mark in marks:  # a rider marked twice in one group: the second goes alone
            if mark.user_id in first:
                alone.append(mark)
            else:
                first[mark.user_id] = mark
        with self._db.errors_as_unavailable():
            async with self._locks.held_many(list(first)) as taken:
                alone.extend(mark for user_id, mark in first.items() if user_id not in taken)
                held = [first[user_id] for user_id in first if user_id in taken]
                documents = await asyncio.gather(
                    *(caches.find_one({"_id": mark.document_id}, _MARK_FIELDS) for mark in held)
                )
                writes: list[Any] = []
                for mark, document in zip(held, documents, strict=True):
                    if document is None or document.get("user_id") != mark.user_id:
                        self._document_ids.pop(mark.user_id)
                        alone.append(mark)
                        continue
                    write = _mark_write(document, mark.delivered)
                    if write is not None:
                        writes.append(write)
                for start in range(0, len(writes), self._writes_per_bulk):
                    await caches.bulk_write(writes[start : start + self._writes_per_bulk], ordered=False)
        outcomes = await asyncio.gather(
            *(mark.by_user_id(mark.user_id, mark.delivered) for mark in alone), return_exceptions=True
        )
        failures = {id(mark): outcome for mark, outcome in zip(alone, outcomes, strict=True)}
        return [failures.get(id(mark)) for mark in marks]

    async def _drop_by_id(self, user_id: int, document_id: Any, delivered: frozenset[str]) -> bool:
        """The outbox's mark by `_id` under the user's lock (every writer of a cache document holds
        it here). False when that `_id` is no longer the user's cache."""
        caches = self._db.collection(self._cache_collection)
        try:
            async with self._locks.held(user_id, None):
                document = await caches.find_one({"_id": document_id}, _MARK_FIELDS)
                if document is None or document.get("user_id") != user_id:
                    return False
                removal = after_delivery(document, delivered)
                if removal is not None and removal.delete:
                    await caches.delete_one({"_id": document_id})
                elif removal is not None:
                    await caches.update_one({"_id": document_id}, removal.update)
        except WriteConflict:
            pass  # a cache write holds the lock: the records stay pending a little longer
        return True


def _mark_write(document: dict[str, Any], delivered: frozenset[str]) -> Any:
    """The write removing the delivered records from a cache read under its lock, if any (by `_id`)."""
    removal = after_delivery(document, delivered)
    if removal is None:
        return None
    if removal.delete:
        return DeleteOne({"_id": document["_id"]})
    return UpdateOne({"_id": document["_id"]}, removal.update)
