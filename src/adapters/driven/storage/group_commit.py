"""Group commit: requests that queue up while a group is being sent go together as the next group.

SQLite commits a group in one worker-thread hop and one transaction; FerretDB v1's single writer
inserts 60 documents for about the cost of one. A request waits only for the group before it, so
one alone is sent at once. Each caller gets its own request's outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from enum import Enum
from typing import Any, Generic, TypeVar

from adapters.driven.storage.unawaited_work import consume_exception

Item = TypeVar("Item")
Result = TypeVar("Result")

#: Sends one group; returns each request's outcome in order: its result, or the exception it failed with.
Flush = Callable[[Sequence[Item]], Awaitable[Sequence[Result | BaseException]]]


class IfCallerCancelled(Enum):
    """What happens to a request whose caller is cancelled while it waits for its group."""

    #: Dropped if its group has not been taken yet: nothing of it reached the store (a local file).
    DROP_UNSENT = "drop unsent"
    #: Sent anyway: the caller cannot know whether it is on the wire already (a networked store).
    SEND_ANYWAY = "send anyway"


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self,
        flush: Flush[Item, Result],
        max_group: int,
        if_cancelled: IfCallerCancelled,
        turn: AbstractAsyncContextManager[Any] | None = None,
    ) -> None:
        """`turn`, when given (a lock), is held while each group is taken and sent: the group
        waits behind its other holders and takes whatever queued meanwhile."""
        self._flush = flush
        self._max_group = max_group
        self._if_cancelled = if_cancelled
        self._turn = turn or contextlib.nullcontext()
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Returns once the group holding `item` is sent, with its result; raises its failure."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        done.add_done_callback(consume_exception)  # a cancelled caller's failure is reported nowhere else
        self._queue.append((item, done))
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_all())
        if self._if_cancelled is IfCallerCancelled.SEND_ANYWAY:
            return await asyncio.shield(done)
        return await done  # cancelling the caller cancels `done`, so its group leaves it out

    async def _send_all(self) -> None:
        while self._queue:
            async with self._turn:
                group = [entry for entry in self._queue[: self._max_group] if not entry[1].cancelled()]
                del self._queue[: self._max_group]
                if group:
                    await self._send(group)

    async def _send(self, group: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            outcomes = await self._flush([item for item, _ in group])
        except BaseException as exc:  # the whole group failed (or this task was cancelled)
            for _, done in group:
                _settle(done, exc)
            if not isinstance(exc, Exception):
                for _, done in self._queue:
                    _settle(done, exc)
                self._queue.clear()
                raise
            return
        for (_, done), outcome in zip(group, outcomes, strict=True):
            _settle(done, outcome)  # a caller cancelled while its group ran: the outcome is dropped


def _settle(done: asyncio.Future[Result], outcome: Result | BaseException) -> None:
    if done.done():
        return
    if isinstance(outcome, asyncio.CancelledError):
        done.cancel()
    elif isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
