"""Work `serve` repeats for as long as it runs (retention sweeps, gauge refreshes)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from application.errors import ApplicationError

log = logging.getLogger(__name__)


async def repeat_every(seconds: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    """`step` at once, then every `seconds`, until cancelled. A failed round is logged and the next
    one still comes: a store that blinks must not end the task for the life of the process."""
    while True:
        try:
            await step()
        except ApplicationError as exc:  # a store down for now: expected, no traceback
            log.warning("%s failed; next round", what, extra={"reason": str(exc)})
        except Exception:
            log.exception("%s failed; next round", what)
        await asyncio.sleep(seconds)
