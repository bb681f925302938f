"""Work `serve` repeats for as long as it runs (retention sweeps, gauge refreshes)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from application.errors import ApplicationError

log = logging.getLogger(__name__)


async def repeat_every(
    seconds: float, step: Callable[[], Awaitable[object]], what: str, busy_share: float = 1.0
) -> None:
    """`step` at once, then every `seconds`, until cancelled. A failed round is logged and the next
    one still comes: a store that blinks must not end the task for the life of the process.
    With `busy_share` < 1 a slow step waits longer, so the steps take at most that share of the
    time (a scan that slows as the store grows never runs back to back)."""
    while True:
        started = time.monotonic()
        try:
            await step()
        except ApplicationError as exc:  # a store down for now: expected, no traceback
            log.warning("%s failed; next round", what, extra={"reason": str(exc)})
        except Exception:
            log.exception("%s failed; next round", what)
        took = time.monotonic() - started
        await asyncio.sleep(max(seconds, took / busy_share - took))
