"""Profile `ferretdb`: the change feed read by point lookups on `_id`, concurrently.

FerretDB v1's SQLite backend pushes only equality on a string (or ObjectId) `_id` down to SQL
and scans the whole collection for any other filter or sort, a range on `_id` included. One
lookup while tailing; 16 at once once there is a backlog."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.driven.storage.mongo.feed_reads import batch_key

_WINDOW = 16


class PointFeedReads:
    def window(self, first_read: bool, limit: int) -> int:
        return 1 if first_read else _WINDOW

    async def batches(self, feed: Any, first: int, count: int) -> list[dict[str, Any] | None]:
        keys = [batch_key(batch) for batch in range(first, first + count)]
        found = await asyncio.gather(*(feed.find_one({"_id": key}) for key in keys))
        consecutive: list[dict[str, Any] | None] = []
        for document in found:
            consecutive.append(document)
            if document is None:
                break
        return consecutive
