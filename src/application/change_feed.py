"""WatchChanges: every pass added to, changed in or removed from a cache, in commit order, read from
the store (any replica serves it) and resumable from an opaque cursor."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Protocol

from application.errors import CursorForeign
from application.periodic import repeat_every
from application.ports import Clock
from application.validation import validate_user_ids
from domain.changes import PassChange

log = logging.getLogger(__name__)

_CURSOR_PREFIX = "v1."
# ASCII digits only: str.isdigit() and int() also take '²', '٥' and '５', which no cursor ever held.
_CURSOR = re.compile(r"v1\.([0-9]{1,18})")
_BATCH = 500
_POLL_SECONDS = 0.1  # how often a live subscriber looks for new changes
_SWEEP_EVERY_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class FeedEvent:
    position: int
    change: PassChange


@dataclass(frozen=True, slots=True)
class FeedPage:
    """Events after a position, and the position the next read starts after (past filtered-out
    events too); `position` stays where it was when nothing new is committed."""

    events: tuple[FeedEvent, ...]
    position: int


class ChangeFeedStore(Protocol):
    async def head(self) -> int:
        """The position up to which every change is committed and readable (0: none yet)."""

    async def read_after(self, position: int, limit: int, user_ids: frozenset[int]) -> FeedPage:
        """Up to `limit` changes after `position`, in order, only `user_ids`' when given.
        Raises CursorExpired when the retention sweep has removed changes after `position`."""

    async def sweep(self, older_than: int) -> int:
        """Remove changes made before `older_than` (epoch s); returns how many."""


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    events: tuple[FeedEvent, ...]
    cursor: str


def encode_cursor(position: int) -> str:
    return f"{_CURSOR_PREFIX}{position}"


def decode_cursor(cursor: str) -> int:
    issued = _CURSOR.fullmatch(cursor)
    if issued is None:
        raise CursorForeign(cursor, f"not a cursor this service issued: {cursor[:40]!r}")
    return int(issued.group(1))


class ChangeFeed:
    def __init__(self, store: ChangeFeedStore, clock: Clock, retention_days: int) -> None:
        self._store = store
        self._clock = clock
        self.retention_seconds = retention_days * 86400

    async def watch(self, start_cursor: str, user_ids: Sequence[int]) -> AsyncGenerator[ChangeBatch, None]:
        """From the cursor (or from now without one): the backlog, then live changes, forever.
        The first batch comes at once, even empty, so a caller always holds a cursor."""
        wanted = frozenset(validate_user_ids(user_ids))
        head = await self._store.head()
        if start_cursor:
            position = decode_cursor(start_cursor)
            if position > head:
                raise CursorForeign(start_cursor, "points past the newest change of this store")
        else:
            position = head
        first = True
        while True:
            page = await self._store.read_after(position, _BATCH, wanted)
            moved = page.position != position
            position = page.position
            if page.events or first:
                first = False
                yield ChangeBatch(page.events, encode_cursor(position))
            if not moved:
                await asyncio.sleep(_POLL_SECONDS)

    async def sweep_forever(self) -> None:
        """The retention sweep (an application sweep: FerretDB has no TTL indexes)."""
        await repeat_every(_SWEEP_EVERY_SECONDS, self.sweep_once, "change feed sweep")

    async def sweep_once(self) -> int:
        removed = await self._store.sweep(self._clock.now() - self.retention_seconds)
        if removed:
            log.info("change feed swept", extra={"removed": removed})
        return removed
