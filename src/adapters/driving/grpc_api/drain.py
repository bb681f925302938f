"""Ending open bulk streams when the server shuts down, with a status the caller can act on.

grpc's `server.stop(grace)` lets calls run until the grace ends and then cancels them; a bulk
stream can run for an hour, so at shutdown each stream stops waiting for its next rider and
ends with UNAVAILABLE, well before the grace is over.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from grpc_health.v1._async import HealthServicer

T = TypeVar("T")


class Draining(Exception):
    """The server is shutting down: the stream must end now."""


class Drain:
    def __init__(self) -> None:
        self._started = False
        self._waiting: set[asyncio.Timeout] = set()

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Interrupt every stream waiting for its next event; later waits raise at once."""
        self._started = True
        now = asyncio.get_running_loop().time()
        for scope in self._waiting:
            scope.reschedule(now)

    async def next(self, events: AsyncIterator[T]) -> T:
        """`anext(events)`, or Draining once shutdown starts (the wait is cancelled, not leaked).
        One scope per event: a timeout scope must not span the stream's yields."""
        if self._started:
            raise Draining
        scope = asyncio.timeout(None)
        try:
            async with scope:
                self._waiting.add(scope)
                try:
                    return await anext(events)
                finally:
                    self._waiting.discard(scope)
        except TimeoutError:
            if scope.expired():
                raise Draining from None
            raise


class DrainingHealthServicer(HealthServicer):  # type: ignore[misc]
    """Health that, on entering graceful shutdown, also ends the server's open bulk streams."""

    def __init__(self, drain: Drain) -> None:
        super().__init__()
        self.drain = drain

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self.drain.start()
