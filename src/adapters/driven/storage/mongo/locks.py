"""Per-user locks around a cache document's compare-and-set, as the server profile needs them.

Profile `mongodb`: none (`NoLocks`). MongoDB applies an update filtered on user_id and version
atomically to that one document, so the compare-and-set alone decides a race; no lock collection
is ever created. Profile `ferretdb`: document locks (ferretdb/write_lock.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class Locks(Protocol):
    def held(self, user_id: int, expected_version: int | None) -> AbstractAsyncContextManager[None]:
        """Hold the user's lock for the block; WriteConflict when it never frees."""

    def held_many(self, user_ids: Sequence[int]) -> AbstractAsyncContextManager[set[int]]:
        """Take the free locks of many users at once (no waiting): yields the users taken."""


class NoLocks:
    """Profile `mongodb`: the conditional update is atomic, so there is nothing to hold."""

    @asynccontextmanager
    async def held(self, user_id: int, expected_version: int | None) -> AsyncIterator[None]:
        yield

    @asynccontextmanager
    async def held_many(self, user_ids: Sequence[int]) -> AsyncIterator[set[int]]:
        yield set(user_ids)
