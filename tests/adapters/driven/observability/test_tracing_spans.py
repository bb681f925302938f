"""What a traced refresh exports, through the real container: the Bytemark calls as aiohttp
client spans and the SQLite statements as store spans, beneath the caller's span; a bulk run as
one span with one trace per rider linked to it; and no token, refresh token or secret anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from adapters.composition.container import Container, build_container, migrate_stores, resolve
from adapters.composition.settings import load_settings
from application.api import TicketCacheApi
from devtools.sandbox import RunningSandbox, SandboxConfig, SandboxState, start_sandbox
from tests.traces import RecordedSpans

CLIENT_SECRET = "sandbox-secret-for-tracing"
RIDERS = (1, 2, 3)
EXPIRED = datetime.now(UTC) - timedelta(minutes=5)


@dataclass
class Traced:
    use_cases: TicketCacheApi
    sandbox: RunningSandbox
    container: Container
    first_tokens: list[str]

    def secrets(self) -> list[str]:
        """The riders' first tokens, those they hold now (rotated by refreshes), and our secret."""
        tokens = [CLIENT_SECRET, *self.first_tokens]
        for user in self.sandbox.state.users.values():
            tokens += [user.access_token, user.refresh_token]
        return tokens


@pytest.fixture
async def traced(tmp_path: Path, spans: RecordedSpans) -> AsyncIterator[Traced]:
    state = SandboxState.seeded(users=len(RIDERS), passes_per_user=3, expired_per_user=1, seed=3)
    sandbox = await start_sandbox("127.0.0.1", 0, state, SandboxConfig(client_secret=CLIENT_SECRET))
    settings = load_settings(
        {
            "SQLITE_PATH": str(tmp_path / "cache.sqlite3"),
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
        tokens = await resolve(container.token_store)
        for user in state.credentials():  # access tokens already expired: each refresh renews first
            await tokens.save_tokens(user.user_id, user.access_token, user.refresh_token, EXPIRED)
        use_cases = await resolve(container.use_cases)
        first = [token for user in state.credentials() for token in (user.access_token, user.refresh_token)]
        yield Traced(use_cases, sandbox, container, first)
    finally:
        await container.shutdown_resources()  # type: ignore[misc]
        await sandbox.stop()


def beneath(spans: RecordedSpans, root: ReadableSpan) -> list[ReadableSpan]:
    """Every span in `root`'s subtree (children, their children, ...)."""
    by_parent: dict[int, list[ReadableSpan]] = {}
    for span in spans.all():
        if span.parent is not None:
            by_parent.setdefault(span.parent.span_id, []).append(span)
    found, todo = [], [root.context.span_id]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.context.span_id)
    return found


async def test_a_refresh_shows_its_bytemark_calls_and_store_statements(
    traced: Traced, spans: RecordedSpans
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller"):
        await traced.use_cases.build(1)

    subtree = beneath(spans, spans.one("caller"))
    http = [s for s in subtree if s.kind is SpanKind.CLIENT and _http(s, "method")]
    assert sorted(_http(s, "method") for s in http) == ["GET", "GET", "POST"]  # token refresh, both lists
    assert sorted(_http(s, "url").rsplit("/", 1)[-1] for s in http) == ["passes", "passes", "token"]
    store = [s for s in subtree if (s.attributes or {}).get("db.system.name") == "sqlite"]
    tables = {(s.attributes or {}).get("db.collection.name") for s in store}
    operations = {(s.attributes or {}).get("db.operation.name") for s in store}
    assert "bytemark_tokens" in tables  # the token read and the rotated tokens' write
    assert "BATCH" in operations  # the cache write, group-committed on SQLite's worker thread


async def test_no_token_refresh_token_or_secret_is_in_any_span(traced: Traced, spans: RecordedSpans) -> None:
    for user_id in RIDERS:
        await traced.use_cases.build(user_id)
    await traced.use_cases.check(1)
    await traced.use_cases.get_cache(2)

    exported = spans.as_text()
    assert len(spans.all()) > 20
    leaked = [secret for secret in traced.secrets() if secret in exported]
    assert not leaked, f"{len(leaked)} secret(s) in exported spans"


async def test_a_bulk_run_is_one_span_and_one_linked_trace_per_rider(
    traced: Traced, spans: RecordedSpans
) -> None:
    events = traced.use_cases.refresh_stale(
        max_age_seconds=None, concurrency=2, shard_index=0, shard_count=0, user_ids=[]
    )
    async with aclosing(events) as stream:
        done = [event async for event in stream]

    assert len(done) == len(RIDERS)
    run = spans.one("bulk refresh_stale")
    riders = spans.named("bulk refresh_stale rider")
    assert sorted((s.attributes or {})["ticket_cache.user_id"] for s in riders) == list(RIDERS)
    for rider in riders:
        assert rider.parent is None  # its own trace, sampled on its own
        assert [link.context.span_id for link in rider.links] == [run.context.span_id]
        assert any(_http(s, "method") for s in beneath(spans, rider))


def _http(span: ReadableSpan, what: str) -> str:
    """An HTTP client span's method or URL, under the old or the stable semantic conventions
    (OTEL_SEMCONV_STABILITY_OPT_IN chooses); "" on other spans."""
    names = {"method": ("http.request.method", "http.method"), "url": ("url.full", "http.url")}[what]
    attributes = span.attributes or {}
    return next((str(attributes[name]) for name in names if name in attributes), "")
