"""How the change feed reads consecutive batches, as the server profile needs it.

A batch's `_id` is its position as a zero-padded decimal string, so string order is position
order. Profile `mongodb`: one range query on `_id` (`RangeReads`), answered from the `_id`
index. Profile `ferretdb`: point lookups by `_id` (ferretdb/point_feed_reads.py)."""

from __future__ import annotations

from typing import Any, Protocol

from pymongo import ASCENDING

_KEY_DIGITS = 16
_RANGE_WINDOW = 256  # batches one range query reads at most


def batch_key(batch: int) -> str:
    """The `_id` of a batch: fixed width, so string order is position order."""
    return f"{batch:0{_KEY_DIGITS}d}"


class FeedReads(Protocol):
    def window(self, first_read: bool, limit: int) -> int:
        """How many batches one read asks for (the first read of a page, then the next ones)."""

    async def batches(self, feed: Any, first: int, count: int) -> list[dict[str, Any] | None]:
        """Batches `first`, `first + 1`, ... up to `count` of them, in order; the list ends with
        None at the first one missing."""


class RangeReads:
    """Profile `mongodb`: one `_id` range query per read."""

    def window(self, first_read: bool, limit: int) -> int:
        return max(1, min(limit, _RANGE_WINDOW))

    async def batches(self, feed: Any, first: int, count: int) -> list[dict[str, Any] | None]:
        query = {"_id": {"$gte": batch_key(first), "$lt": batch_key(first + count)}}
        documents = await feed.find(query).sort("_id", ASCENDING).to_list(count)
        found: list[dict[str, Any] | None] = []
        for document in documents:
            if int(document["_id"]) != first + len(found):
                break  # a gap: the batches after it are not read yet
            found.append(document)
        if len(found) < count:
            found.append(None)
        return found
