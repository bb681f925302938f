"""Assembles the sandbox aiohttp application: both Bytemark APIs and the control API on one port."""

from __future__ import annotations

from aiohttp import web

from devtools.sandbox.bytemark_api import list_passes_v1, list_passes_v4, refresh_token
from devtools.sandbox.config import SandboxConfig
from devtools.sandbox.context import CONTEXT, SandboxContext
from devtools.sandbox.control import add_control_routes
from devtools.sandbox.state import SandboxState


def build_sandbox_app(state: SandboxState, config: SandboxConfig) -> web.Application:
    """The app; `app[CONTEXT]` exposes state, config, faults and stats to in-process callers."""
    app = web.Application()
    app[CONTEXT] = SandboxContext(state=state, config=config)
    app.router.add_get("/passes", list_passes_v1)
    app.router.add_get("/v4.0/passes", list_passes_v4)
    app.router.add_post("/oauth/token", refresh_token)
    add_control_routes(app)
    return app
