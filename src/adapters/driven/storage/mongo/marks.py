"""How the relay marks riders' outbox records delivered, as the server profile needs it.

Profile `mongodb`: rider by rider (`RiderByRiderMarks`), each a compare-and-set on user_id and
version that MongoDB answers from the unique index. Profile `ferretdb`: many riders' marks
grouped into a few commands by `_id` under document locks (ferretdb/grouped_marks.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

#: Marks one rider's delivered records by user_id (the outbox's compare-and-set loop).
MarkByUserId = Callable[[int, frozenset[str]], Awaitable[None]]


class Marks(Protocol):
    def remember(self, user_id: int, document_id: Any) -> None:
        """The `_id` of the user's cache document as a write just learnt it (None: unknown)."""

    async def mark(
        self, user_ids: Sequence[int], delivered: frozenset[str], by_user_id: MarkByUserId
    ) -> None:
        """Remove the `delivered` records from each user's cache document."""

    async def drop_known(self, user_id: int, delivered: frozenset[str]) -> bool:
        """Remove them by the remembered `_id`, if this strategy does; False: do it by user_id."""


class RiderByRiderMarks:
    """Profile `mongodb`: one compare-and-set per rider, concurrently."""

    def remember(self, user_id: int, document_id: Any) -> None:
        pass

    async def mark(
        self, user_ids: Sequence[int], delivered: frozenset[str], by_user_id: MarkByUserId
    ) -> None:
        await asyncio.gather(*(by_user_id(user_id, delivered) for user_id in user_ids))

    async def drop_known(self, user_id: int, delivered: frozenset[str]) -> bool:
        return False
