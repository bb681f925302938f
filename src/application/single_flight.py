"""In-process single-flight: concurrent calls for the same key share one execution."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._in_flight: dict[Hashable, asyncio.Task[T]] = {}

    def in_flight(self, key: Hashable) -> bool:
        return key in self._in_flight

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        """Join the running execution for `key`, or start one. A caller that is cancelled (client
        gone, deadline) stops waiting; the shared work finishes for the others and is stored."""
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._in_flight[key] = task
            task.add_done_callback(functools.partial(self._forget, key))
        return await asyncio.shield(task)

    def _forget(self, key: Hashable, done: asyncio.Task[T]) -> None:
        self._in_flight.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here so a result nobody waits for any more is not warned about
