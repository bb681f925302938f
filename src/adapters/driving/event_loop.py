"""GRPC_EVENT_LOOP: run the service on uvloop (libuv) or on the standard asyncio loop.

uvloop is opt-in: its effect on a refresh stayed inside the shared machine's noise (bench/RESULTS.md,
round 3). Where it cannot be imported the service falls back to asyncio."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> LoopFactory | None:
    """The factory for `choice` ("uvloop" or "asyncio"); None means asyncio's default loop."""
    if choice != "uvloop":
        return None
    try:
        import uvloop
    except ImportError as exc:
        log.warning("uvloop cannot be imported; using asyncio", extra={"reason": str(exc)})
        return None
    factory: LoopFactory = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], choice: str) -> T:
    """`asyncio.run(main)` on the chosen loop (same Ctrl-C and shutdown behaviour)."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
