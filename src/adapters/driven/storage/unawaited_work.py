"""Work a store leaves running after the call that started it is gone (a cancelled caller's lock
release, mark or group commit): kept referenced until done, its failure never left unretrieved."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

_running: set[asyncio.Future[Any]] = set()  # strong references until each is done


def in_background(work: Awaitable[Any]) -> None:
    task = asyncio.ensure_future(work)
    _running.add(task)
    task.add_done_callback(_running.discard)


def consume_exception(done: asyncio.Future[Any]) -> None:
    """A done callback for work whose failure nobody waits for (its caller was cancelled): the
    failure is taken, so asyncio does not report it as never retrieved."""
    if not done.cancelled():
        done.exception()
