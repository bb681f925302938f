"""A local stand-in for Bytemark's customer and account APIs, for the demo, tests and benchmarks.

Not production code. Usage::

    state = SandboxState.seeded(users=100, passes_per_user=3, expired_per_user=2)
    sandbox = await start_sandbox("127.0.0.1", 0, state, SandboxConfig(latency_ms=50))
    ...  # BYTEMARK_CUSTOMER_API_URL = BYTEMARK_ACCOUNT_API_URL = sandbox.url
    await sandbox.stop()
"""

from devtools.sandbox.app import build_sandbox_app
from devtools.sandbox.config import SandboxConfig
from devtools.sandbox.context import CONTEXT, SandboxContext
from devtools.sandbox.faults import FAULT_KINDS, FaultRule
from devtools.sandbox.passes import FREE_TICKET_PRODUCT_UUIDS
from devtools.sandbox.server import RunningSandbox, start_sandbox
from devtools.sandbox.state import SandboxState, SandboxUser, UserCredentials

__all__ = [
    "CONTEXT",
    "FAULT_KINDS",
    "FREE_TICKET_PRODUCT_UUIDS",
    "FaultRule",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxContext",
    "SandboxState",
    "SandboxUser",
    "UserCredentials",
    "build_sandbox_app",
    "start_sandbox",
]
