"""What a Mongo adapter remembers between calls (a document's `_id`, the records just written):
bounded, so a server running for weeks over millions of riders stays flat."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memory: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Keep `key` as the newest entry; beyond `limit` the least recently remembered goes."""
    memory.pop(key, None)
    memory[key] = value
    if len(memory) > limit:
        memory.popitem(last=False)
