"""Behaviour knobs of the sandbox; mutable so tests and benchmarks can turn them at runtime."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class SandboxConfig:
    latency_ms: float = 0.0  # added to every Bytemark API request
    error_rate: float = 0.0  # share of API requests answered 503
    rate_429: float = 0.0  # share of API requests answered 429 with Retry-After: 1
    token_ttl_seconds: float = 0.0  # access tokens expire this long after issue; 0 = never
    page_size: int = 1000  # server-side cap on `limit`, so small values force pagination
    seed: int = 0  # seeds the random draws for error_rate and rate_429
    client_id: str = "sandbox-client"
    client_secret: str = "sandbox-secret"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first knob out of range."""
        for name in ("latency_ms", "token_ttl_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        for name in ("error_rate", "rate_429"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.error_rate + self.rate_429 > 1.0:
            raise ValueError("error_rate + rate_429 must not exceed 1")
        if self.page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {self.page_size!r}")

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply knob changes (e.g. a JSON body) all or nothing; raises ValueError when invalid."""
        types = {f.name: f.type for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(types))
        if unknown:
            raise ValueError(f"unknown knobs: {', '.join(unknown)}")
        candidate = dataclasses.replace(self)
        for name, value in changes.items():
            setattr(candidate, name, _coerce(name, types[name], value))
        candidate.validate()
        for name in changes:
            setattr(self, name, getattr(candidate, name))

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values.pop("client_secret")
        return values


def _coerce(name: str, annotation: object, value: Any) -> Any:
    # Annotations are strings under `from __future__ import annotations`.
    kind = str(annotation)
    if kind == "str":
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if kind == "int":
        if value != int(value):
            raise ValueError(f"{name} must be an integer")
        return int(value)
    return float(value)
