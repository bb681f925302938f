"""A per-attempt timeout that counts Bytemark's time, not time our own event loop was late.

When the process is starved of CPU (a busy host or pod), stopped, or the loop is blocked, an
answer that arrived in 50 ms waits in the socket until the loop runs again; on that turn the
expired timer is handled before the waiting task resumes, so a plain `asyncio.timeout` would
cancel a call that had already succeeded. A ticker measures how late the loop runs while
attempts are in flight, and the deadline is pushed back by exactly that lateness.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

#: How often the ticker checks the loop's lateness while attempts are in flight.
TICK_SECONDS = 0.05


class LoopLag:
    """Total seconds the running loop has been late (beyond `TICK_SECONDS`) while in use."""

    def __init__(self, tick_seconds: float = TICK_SECONDS) -> None:
        self._tick_seconds = tick_seconds
        self._late = 0.0
        self._users = 0
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def late_seconds(self, now: float) -> float:
        """Lateness so far, including the ticker's own if it is overdue at `now`."""
        pending = max(0.0, now - self._due) if self._handle is not None else 0.0
        return self._late + pending

    def acquire(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a client reused on a new loop: the old ticker is gone
            self._loop, self._handle, self._users = loop, None, 0
        self._users += 1
        if self._handle is None:
            self._due = loop.time() + self._tick_seconds
            self._handle = loop.call_at(self._due, self._tick)

    def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        self._late += max(0.0, now - self._due)
        self._due = now + self._tick_seconds
        self._handle = self._loop.call_at(self._due, self._tick)


class TimeoutExcludingLoopLag:
    """Like `asyncio.timeout(seconds)`, raising TimeoutError, except that time the loop was
    late during the block does not count towards `seconds`. A class, not a generator: it
    wraps every Bytemark attempt, so its few microseconds count."""

    __slots__ = ("_seconds", "_lag", "_loop", "_scope", "_started", "_late_before", "_handle")

    def __init__(self, seconds: float, lag: LoopLag) -> None:
        self._seconds = seconds
        self._lag = lag

    async def __aenter__(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        self._scope = asyncio.Timeout(None)
        await self._scope.__aenter__()
        self._started = loop.time()
        self._lag.acquire()
        self._late_before = self._lag.late_seconds(self._started)
        self._handle = loop.call_at(self._started + self._seconds, self._check)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._handle.cancel()
        self._lag.release()
        await self._scope.__aexit__(exc_type, exc, tb)  # turns its own cancellation into TimeoutError

    def _check(self) -> None:
        now = self._loop.time()
        spent = now - self._started - (self._lag.late_seconds(now) - self._late_before)
        if spent >= self._seconds:
            self._scope.reschedule(now)  # expire now, as asyncio.timeout would
        else:
            self._handle = self._loop.call_at(now + self._seconds - spent, self._check)
