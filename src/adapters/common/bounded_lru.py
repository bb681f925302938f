"""The one least-recently-used memo: bounded by what its entries cost (their bytes, or one each
for a count), so a server running for weeks over millions of riders stays flat."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def one_each(key: object, value: object) -> int:
    """The cost of an entry when the limit is a count."""
    return 1


class BoundedLru(Generic[K, V]):
    """Entries oldest first; `put` makes one the newest and drops the oldest while their cost is
    over `limit` (or their count over `max_entries`). An entry costing more than `limit` is not
    kept. `cost(key, value)` must not change while it is held.

    Hot paths may read `entries` directly (`entries.get`, `entries.move_to_end`) to save a call."""

    def __init__(
        self,
        limit: int,
        cost: Callable[[K, V], int] = one_each,
        *,
        max_entries: int | None = None,
        on_remove: Callable[[K, V], None] | None = None,
    ) -> None:
        self.limit = limit
        self.size = 0
        self.entries: OrderedDict[K, V] = OrderedDict()
        self._cost = cost
        self._max_entries = max_entries
        self._on_remove = on_remove  # told of every entry that leaves: evicted, replaced or popped

    def get(self, key: K) -> V | None:
        """The value, leaving the order as it is."""
        return self.entries.get(key)

    def touch(self, key: K) -> V | None:
        """The value, now the most recently used."""
        if key not in self.entries:
            return None
        self.entries.move_to_end(key)
        return self.entries[key]

    def put(self, key: K, value: V) -> bool:
        """Keep `value` as the newest entry; False when it costs more than the whole limit."""
        entries = self.entries
        if key in entries:
            self._removed(key, entries.pop(key))
        cost = self._cost(key, value)
        if cost > self.limit:
            return False
        entries[key] = value
        self.size += cost
        while self.size > self.limit or (self._max_entries is not None and len(entries) > self._max_entries):
            self._removed(*entries.popitem(last=False))
        return True

    def pop(self, key: K) -> V | None:
        """Forget `key`; its value, or None when it was not held."""
        if key not in self.entries:
            return None
        value = self.entries.pop(key)
        self._removed(key, value)
        return value

    def _removed(self, key: K, value: V) -> None:
        self.size -= self._cost(key, value)
        if self._on_remove is not None:
            self._on_remove(key, value)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __len__(self) -> int:
        return len(self.entries)
