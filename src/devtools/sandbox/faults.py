"""Scripted failures: rules that make the next N matching requests misbehave in one way."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

Endpoint = Literal["v1", "v4", "token"]
FaultKind = Literal["500", "timeout", "malformed_json", "wrong_shape", "reset", "429", "401", "invalid_grant"]
ENDPOINTS: tuple[str, ...] = get_args(Endpoint)
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
FOREVER = -1


@dataclass(slots=True)
class FaultRule:
    endpoint: str
    kind: str
    times: int = 1  # requests left to spoil; FOREVER (-1) never runs out
    page: int | None = None  # only this page of a customer API list
    user_id: int | None = None  # only requests made with this user's tokens
    retry_after: float | None = None  # the Retry-After of a "429"

    @classmethod
    def from_json(cls, obj: Any) -> FaultRule:
        """Parse one rule of a control request; raises ValueError saying what is wrong."""
        if not isinstance(obj, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = sorted(set(obj) - {"endpoint", "kind", "times", "page", "user_id", "retry_after"})
        if unknown:
            raise ValueError(f"unknown fault rule fields: {', '.join(unknown)}")
        endpoint, kind = obj.get("endpoint"), obj.get("kind")
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        times = obj.get("times", 1)
        if not _is_int(times) or (times < 1 and times != FOREVER):
            raise ValueError(f"times must be a positive integer or -1, got {times!r}")
        page, user_id, retry_after = obj.get("page"), obj.get("user_id"), obj.get("retry_after")
        if page is not None and (not _is_int(page) or page < 1):
            raise ValueError(f"page must be a positive integer, got {page!r}")
        if user_id is not None and not _is_int(user_id):
            raise ValueError(f"user_id must be an integer, got {user_id!r}")
        if retry_after is not None and (
            isinstance(retry_after, bool) or not isinstance(retry_after, int | float) or retry_after < 0
        ):
            raise ValueError(f"retry_after must be a number >= 0, got {retry_after!r}")
        return cls(str(endpoint), str(kind), times, page, user_id, retry_after)

    def matches(self, endpoint: str, page: int | None, user_id: int | None) -> bool:
        return (
            self.endpoint == endpoint
            and (self.page is None or self.page == page)
            and (self.user_id is None or self.user_id == user_id)
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultBook:
    """Active rules, first match wins, each consumed as it fires."""

    def __init__(self) -> None:
        self.rules: list[FaultRule] = []

    def add(self, rules: list[FaultRule]) -> None:
        self.rules.extend(rules)

    def clear(self) -> int:
        count = len(self.rules)
        self.rules.clear()
        return count

    def take(self, endpoint: str, page: int | None, user_id: int | None) -> FaultRule | None:
        """The first rule matching this request, with one use consumed; None when none does."""
        if not self.rules:  # the benchmark fast path
            return None
        for index, rule in enumerate(self.rules):
            if rule.matches(endpoint, page, user_id):
                if rule.times != FOREVER:
                    rule.times -= 1
                    if rule.times == 0:
                        del self.rules[index]
                return rule
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
