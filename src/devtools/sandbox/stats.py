"""Request counters, so tests can assert how often the service called Bytemark."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any


class SandboxStats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.endpoints: Counter[str] = Counter()
        self.users: defaultdict[int, Counter[str]] = defaultdict(Counter)
        self.outcomes: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def record_request(self, endpoint: str, user_id: int | None) -> None:
        self.total += 1
        self.endpoints[endpoint] += 1
        if user_id is not None:
            self.users[user_id][endpoint] += 1

    def record_outcome(self, endpoint: str, outcome: int | str) -> None:
        """`outcome` is the HTTP status, or "timeout"/"reset" for a fault with no status."""
        self.outcomes[endpoint][str(outcome)] += 1

    def user_count(self, user_id: int, endpoint: str) -> int:
        return self.users.get(user_id, Counter())[endpoint]

    def snapshot(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "endpoints": dict(self.endpoints),
            "users": {str(user_id): dict(counts) for user_id, counts in self.users.items()},
            "outcomes": {endpoint: dict(counts) for endpoint, counts in self.outcomes.items()},
        }
