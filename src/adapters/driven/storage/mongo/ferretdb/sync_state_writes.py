"""Profile `ferretdb`: a batch of sync statuses replaced by `_id`, in bulk writes of a few.

FerretDB v1 on SQLite scans and decodes the whole collection for a filter other than `_id`
alone, so an upsert by user_id per rider made a bulk run quadratic (bench/RESULTS.md, round 4):
the `_id`s come from one `$in` read of the batch. It also keeps a pool connection per update by
`_id` until the command ends (100 in the pool): a command of 200 such updates never finished, so
each carries at most `writes_per_bulk`. A rider whose status appeared or vanished in between
(another process) is written again by an upsert on user_id."""

from __future__ import annotations

from typing import Any

from pymongo import InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError

from adapters.driven.storage.mongo.database import DUPLICATE_KEY

_IN_CHUNK = 1000


class ReplacesById:
    def __init__(self, writes_per_bulk: int) -> None:
        self._writes_per_bulk = writes_per_bulk

    async def write(self, collection: Any, documents: dict[int, dict[str, Any]]) -> None:
        ids = await self._document_ids(collection, sorted(documents))
        writes: list[Any] = [
            # copies: an insert adds `_id` to its document, which a retry must not carry
            ReplaceOne({"_id": ids[user_id]}, document) if user_id in ids else InsertOne(dict(document))
            for user_id, document in documents.items()
        ]
        riders = list(documents)
        again: list[int] = []
        replaced = 0
        for start in range(0, len(writes), self._writes_per_bulk):
            try:
                chunk = writes[start : start + self._writes_per_bulk]
                result = await collection.bulk_write(chunk, ordered=False)
                replaced += result.matched_count
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(error.get("code") != DUPLICATE_KEY for error in errors):
                    raise
                # inserted meanwhile elsewhere
                again += [riders[start + error["index"]] for error in errors]
                replaced += int(exc.details.get("nMatched", 0))
        if replaced < len(ids):  # a status removed meanwhile: write every replaced rider again
            again += [user_id for user_id in documents if user_id in ids]
        if again:
            await collection.bulk_write(
                [ReplaceOne({"user_id": u}, documents[u], upsert=True) for u in again], ordered=False
            )


    async def _document_ids(self, collection: Any, user_ids: list[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        for start in range(0, len(user_ids), _IN_CHUNK):
            chunk = user_ids[start : start + _IN_CHUNK]
            cursor = collection.find({"user_id": {"$in": chunk}}, {"_id": 1, "user_id": 1})
            found.update((int(doc["user_id"]), doc["_id"]) for doc in await cursor.to_list(None))
        return found
