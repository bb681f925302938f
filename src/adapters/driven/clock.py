"""The wall clock, behind the application's Clock port."""

from __future__ import annotations

import time


class SystemClock:
    def now(self) -> int:
        return int(time.time())
