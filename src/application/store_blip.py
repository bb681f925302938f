"""Riding out a blip of our own store in a bulk run.

When a rider's refresh fails because a store of ours stops answering (StoreUnavailable), the
run does not fail that rider: it retries it, and starts no new rider, until the store answers
again. A store that stays away longer than the grace stops the run instead, with a reason, like
a general Bytemark outage does; no rider is put into backoff for it (store failures never are).
Unary calls do not come through here: they fail fast with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from application.errors import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_STORE_OUTAGE_GRACE_SECONDS = 30.0
#: How often a rider caught by the blip tries again: each retry is also the probe that ends it.
RETRY_SECONDS = 0.25


class StoreBlip:
    """One bulk run's view of its stores: `ride_out` retries a rider through a blip, `paused`
    holds new riders back during one, `stopped` says why the run must stop (else "")."""

    def __init__(
        self,
        grace_seconds: float = DEFAULT_STORE_OUTAGE_GRACE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        retry_seconds: float = RETRY_SECONDS,
    ) -> None:
        self._grace = grace_seconds
        self._monotonic = monotonic
        self._retry = retry_seconds
        self._down_since: float | None = None
        self._answering = asyncio.Event()
        self._answering.set()
        self.stopped = ""

    async def paused(self) -> None:
        """Return once the store answers (or the run is stopped): before a new rider starts."""
        await self._answering.wait()

    async def ride_out(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()`, retried while a store is unavailable, up to the grace."""
        while True:
            try:
                result = await attempt()
            except StoreUnavailable as error:
                if not self._still_within_grace(error):
                    raise
                await asyncio.sleep(self._retry)
                continue
            self._answered()
            return result

    def _still_within_grace(self, error: StoreUnavailable) -> bool:
        now = self._monotonic()
        if self._down_since is None and not self.stopped:
            self._down_since = now
            self._answering.clear()
            log.warning(
                "store unavailable: bulk run paused, retrying its riders",
                extra={"store": error.store, "grace_seconds": self._grace},
            )
        if self._down_since is None or now - self._down_since < self._grace:
            return not self.stopped
        self.stopped = (
            f"stopped early: our store did not answer for {self._grace:g} s; the riders not"
            " refreshed keep their previous sync state (no backoff)"
        )
        self._down_since = None
        self._answering.set()  # the paused workers wake to see the run stopped
        log.error("store unavailable past the grace: bulk run stopped", extra={"store": error.store})
        return False

    def _answered(self) -> None:
        if self._down_since is not None and not self.stopped:
            paused = self._monotonic() - self._down_since
            self._down_since = None
            self._answering.set()
            log.info("store answers again: bulk run resumed", extra={"paused_seconds": round(paused, 3)})
