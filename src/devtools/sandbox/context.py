"""What every sandbox handler shares, stored on the aiohttp application under one key."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from devtools.sandbox.config import SandboxConfig
from devtools.sandbox.faults import FaultBook
from devtools.sandbox.state import SandboxState
from devtools.sandbox.stats import SandboxStats


@dataclass(slots=True)
class SandboxContext:
    state: SandboxState
    config: SandboxConfig
    faults: FaultBook = field(default_factory=FaultBook)
    stats: SandboxStats = field(default_factory=SandboxStats)
    rng: random.Random = field(init=False)  # draws for error_rate / rate_429

    def __post_init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        """Restart the random failure draws from `config.seed`."""
        self.rng = random.Random(f"bytemark-sandbox-faults:{self.config.seed}")


CONTEXT = web.AppKey("sandbox_context", SandboxContext)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )
