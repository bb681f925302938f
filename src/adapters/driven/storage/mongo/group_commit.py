"""Sends the requests that queue up while a command is on the wire as the next command.

FerretDB v1 has a single writer: an insert of 60 documents costs it about what an insert of one
does, so 60 riders' appends (or marks) in one command wait far less than 60 in a row. A request
waits only for the command before it, so one alone is sent at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from adapters.driven.storage.mongo.background import consume_exception

Item = TypeVar("Item")

#: Sends one group; returns each request's failure (None when it succeeded), in order.
Flush = Callable[[Sequence[Item]], Awaitable[Sequence[BaseException | None]]]


class GroupCommit(Generic[Item]):
    def __init__(self, flush: Flush[Item], max_group: int) -> None:
        self._flush = flush
        self._max_group = max_group
        self._queue: list[tuple[Item, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> None:
        """Returns once the group holding `item` is sent; raises its failure. A caller cancelled
        while waiting does not withdraw the request (it may be on the wire already)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.add_done_callback(consume_exception)  # a cancelled caller's failure is reported nowhere else
        self._queue.append((item, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_all())
        await asyncio.shield(done)

    async def _send_all(self) -> None:
        while self._queue:
            group = self._queue[: self._max_group]
            del self._queue[: self._max_group]
            try:
                failures = await self._flush([item for item, _ in group])
            except BaseException as exc:  # the whole group failed (or this task was cancelled)
                for _, done in group:
                    _settle(done, exc)
                if not isinstance(exc, Exception):
                    for _, done in self._queue:
                        _settle(done, exc)
                    self._queue.clear()
                    raise
                continue
            for (_, done), failure in zip(group, failures, strict=True):
                _settle(done, failure)


def _settle(done: asyncio.Future[None], failure: BaseException | None) -> None:
    if done.done():
        return
    if failure is None:
        done.set_result(None)
    elif isinstance(failure, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(failure)
