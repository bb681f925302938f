"""Run the sandbox on a TCP port inside the current event loop."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from devtools.sandbox.app import build_sandbox_app
from devtools.sandbox.config import SandboxConfig
from devtools.sandbox.context import CONTEXT, SandboxContext
from devtools.sandbox.faults import FaultBook
from devtools.sandbox.state import SandboxState
from devtools.sandbox.stats import SandboxStats

#: Hung "timeout" handlers must not hold up stop() for aiohttp's default 60 s.
SHUTDOWN_TIMEOUT_SECONDS = 0.5


@dataclass(slots=True)
class RunningSandbox:
    """A started sandbox. `url` is the base URL for both BYTEMARK_*_API_URL settings."""

    url: str
    port: int
    context: SandboxContext
    _runner: web.AppRunner

    @property
    def state(self) -> SandboxState:
        return self.context.state

    @property
    def config(self) -> SandboxConfig:
        return self.context.config

    @property
    def faults(self) -> FaultBook:
        return self.context.faults

    @property
    def stats(self) -> SandboxStats:
        return self.context.stats

    async def stop(self) -> None:
        await self._runner.cleanup()


async def start_sandbox(host: str, port: int, state: SandboxState, config: SandboxConfig) -> RunningSandbox:
    """Serve the sandbox on host:port (port 0 picks a free one) until `stop()`."""
    app = build_sandbox_app(state, config)
    runner = web.AppRunner(
        app,
        access_log=None,  # per-request logging would dominate benchmark cost
        handler_cancellation=True,  # a client giving up ends a hung "timeout" handler
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
    except BaseException:
        await runner.cleanup()
        raise
    url_host = f"[{host}]" if ":" in host else host
    return RunningSandbox(
        url=f"http://{url_host}:{bound_port}", port=bound_port, context=app[CONTEXT], _runner=runner
    )
