"""In-process single-flight: one execution per key at a time, shared by the calls that accept
its answer; a call that needs another kind of answer waits for it to end, then runs its own."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Flight(Generic[T]):
    kind: Hashable
    task: asyncio.Task[T]


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._in_flight: dict[Hashable, _Flight[T]] = {}

    def running(self, key: Hashable) -> Hashable | None:
        """The kind of the execution in flight for `key`, or None."""
        flight = self._in_flight.get(key)
        return flight.kind if flight is not None and not flight.task.done() else None

    async def run(
        self,
        key: Hashable,
        kind: Hashable,
        work: Callable[[], Awaitable[T]],
        *,
        joins: Collection[Hashable] | None = None,
    ) -> T:
        """Join the execution in flight for `key` when its kind is in `joins` (default: the same
        kind), else wait for it to end and try again; with none in flight, start `work`.

        A caller that is cancelled (client gone, deadline) stops waiting; the shared work finishes
        for the others and is stored."""
        joinable = (kind,) if joins is None else joins
        while True:
            flight = self._in_flight.get(key)
            if flight is None or flight.task.done():
                task = asyncio.ensure_future(work())
                flight = self._in_flight[key] = _Flight(kind, task)
                task.add_done_callback(functools.partial(self._forget, key, flight))
                return await asyncio.shield(task)
            if flight.kind in joinable:
                return await asyncio.shield(flight.task)
            await asyncio.wait((flight.task,))  # its outcome is its callers'; ours comes next

    def _forget(self, key: Hashable, flight: _Flight[T], done: asyncio.Task[T]) -> None:
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]
        if not done.cancelled():
            done.exception()  # retrieved here so a result nobody waits for any more is not warned about
