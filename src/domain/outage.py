"""Telling a Bytemark outage for everyone apart from riders that fail on their own.

The rule: a bulk run looks at its last `window` Bytemark attempts (riders it actually called;
skipped and FRESH riders are not attempts). When the window is full and at least `ratio` of it
failed the same way (UNAVAILABLE at the same endpoint), Bytemark is down for everyone: the run
stops starting riders, and the riders that failed that way are NOT put into backoff.

So a failure is held until it leaves the window (then it is the rider's own and is kept), or the
window trips (then it is dropped). Runs with fewer attempts than the window never trip.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass

DEFAULT_OUTAGE_WINDOW = 20
DEFAULT_OUTAGE_RATIO = 0.8


@dataclass(frozen=True, slots=True)
class OutageRule:
    window: int = DEFAULT_OUTAGE_WINDOW
    ratio: float = DEFAULT_OUTAGE_RATIO

    def __post_init__(self) -> None:
        if self.window < 1 or not 0 < self.ratio <= 1:
            raise ValueError("outage rule needs window >= 1 and 0 < ratio <= 1")

    @property
    def threshold(self) -> int:
        return math.ceil(self.window * self.ratio)


@dataclass(frozen=True, slots=True)
class Outage:
    """Why a run stopped: `failures` of the last `window` attempts failed at `failure_key`."""

    failure_key: str
    failures: int
    window: int


class OutageWatch:
    """One bulk run's sliding window of attempts. `observe` says which held failures are now
    the rider's own (they left the window without it tripping)."""

    def __init__(self, rule: OutageRule | None = None) -> None:
        self.rule = rule or OutageRule()
        self._recent: deque[tuple[int, str | None]] = deque()
        self.outage: Outage | None = None

    def observe(self, user_id: int, failure_key: str | None) -> list[int]:
        """Record one attempt (`failure_key` None for one that did not fail UNAVAILABLE)."""
        self._recent.append((user_id, failure_key))
        kept: list[int] = []
        if len(self._recent) > self.rule.window:
            old_user, old_key = self._recent.popleft()
            if old_key is not None:
                kept.append(old_user)
        if self.outage is None and len(self._recent) == self.rule.window:
            counts = Counter(key for _, key in self._recent if key is not None)
            if counts:
                key, failures = counts.most_common(1)[0]
                if failures >= self.rule.threshold:
                    self.outage = Outage(key, failures, self.rule.window)
        return kept

    def held(self) -> list[tuple[int, str]]:
        """Failures still in the window: (user id, failure key)."""
        return [(user_id, key) for user_id, key in self._recent if key is not None]

    def excuses(self, failure_key: str) -> bool:
        """Whether a failure is part of the outage (so it must not put the rider into backoff)."""
        return self.outage is not None and self.outage.failure_key == failure_key
