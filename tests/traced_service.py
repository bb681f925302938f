"""The real service (container, stores, Bytemark client) against an in-process Bytemark sandbox,
with tracing on: what the tracing tests of each store backend drive."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.trace import ReadableSpan

from adapters.composition.container import build_container, migrate_stores, resolve
from adapters.composition.settings import load_settings
from application.api import TicketCacheApi
from devtools.sandbox import RunningSandbox, SandboxConfig, SandboxState, start_sandbox

CLIENT_SECRET = "sandbox-secret-for-tracing"
RIDERS = (1, 2, 3)


@dataclass
class TracedService:
    use_cases: TicketCacheApi
    sandbox: RunningSandbox
    first_tokens: list[str]

    def secrets(self) -> list[str]:
        """The riders' first tokens, those they hold now (rotated by refreshes), and our secret."""
        tokens = [CLIENT_SECRET, *self.first_tokens]
        for user in self.sandbox.state.users.values():
            tokens += [user.access_token, user.refresh_token]
        return tokens


@asynccontextmanager
async def traced_service(stores: Mapping[str, str]) -> AsyncIterator[TracedService]:
    """The service on `stores` (SQLITE_PATH, MYSQL_URL, MONGODB_URL, ...) with riders 1-3 holding
    expired access tokens (each refresh renews them first). Use it inside the `spans` fixture:
    tracing must be on before the container opens its HTTP session and database clients."""
    state = SandboxState.seeded(users=len(RIDERS), passes_per_user=3, expired_per_user=1, seed=3)
    sandbox = await start_sandbox("127.0.0.1", 0, state, SandboxConfig(client_secret=CLIENT_SECRET))
    settings = load_settings(
        {
            **stores,
            "BYTEMARK_CUSTOMER_API_URL": sandbox.url,
            "BYTEMARK_ACCOUNT_API_URL": sandbox.url,
            "BYTEMARK_CLIENT_ID": "sandbox-client",
            "BYTEMARK_CLIENT_SECRET": CLIENT_SECRET,
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        }
    )
    assert settings.tracing_enabled
    container = build_container(settings)
    try:
        await migrate_stores(container)
        tokens = await resolve(container.token_stores.token_store)
        expired = datetime.now(UTC) - timedelta(minutes=5)
        for user in state.credentials():
            await tokens.save_tokens(user.user_id, user.access_token, user.refresh_token, expired)
        use_cases = await resolve(container.use_cases)
        first = [token for user in state.credentials() for token in (user.access_token, user.refresh_token)]
        yield TracedService(use_cases, sandbox, first)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
        await sandbox.stop()


def http_attribute(span: ReadableSpan, what: str) -> str:
    """An HTTP client span's method or URL, under the old or the stable semantic conventions
    (OTEL_SEMCONV_STABILITY_OPT_IN chooses); "" on other spans."""
    names = {"method": ("http.request.method", "http.method"), "url": ("url.full", "http.url")}[what]
    attributes = span.attributes or {}
    return next((str(attributes[name]) for name in names if name in attributes), "")
