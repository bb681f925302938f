"""What a traced refresh exports, through the real container: the Bytemark calls as aiohttp
client spans and the SQLite statements as store spans, beneath the caller's span; a bulk run as
one span with one trace per rider linked to it; and no token, refresh token or secret anywhere."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tests.traced_service import RIDERS, TracedService, http_attribute, traced_service
from tests.traces import RecordedSpans


@pytest.fixture
async def traced(tmp_path: Path, spans: RecordedSpans) -> AsyncIterator[TracedService]:
    async with traced_service({"SQLITE_PATH": str(tmp_path / "cache.sqlite3")}) as service:
        yield service


async def test_a_refresh_shows_its_bytemark_calls_and_store_statements(
    traced: TracedService, spans: RecordedSpans
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller"):
        await traced.use_cases.build(1)

    subtree = spans.beneath(spans.one("caller"))
    http = [s for s in subtree if s.kind is SpanKind.CLIENT and http_attribute(s, "method")]
    assert sorted(http_attribute(s, "method") for s in http) == [
        "GET",
        "GET",
        "POST",
    ]  # token refresh, both lists
    assert sorted(http_attribute(s, "url").rsplit("/", 1)[-1] for s in http) == ["passes", "passes", "token"]
    store = [s for s in subtree if (s.attributes or {}).get("db.system.name") == "sqlite"]
    tables = {(s.attributes or {}).get("db.collection.name") for s in store}
    operations = {(s.attributes or {}).get("db.operation.name") for s in store}
    assert "bytemark_tokens" in tables  # the token read and the rotated tokens' write
    assert "BATCH" in operations  # the cache write, group-committed on SQLite's worker thread


async def test_no_token_refresh_token_or_secret_is_in_any_span(
    traced: TracedService, spans: RecordedSpans
) -> None:
    with trace.get_tracer("test").start_as_current_span("caller"):
        for user_id in RIDERS:
            await traced.use_cases.build(user_id)
        await traced.use_cases.check(1)
        await traced.use_cases.get_cache(2)

    exported = spans.as_text()
    assert len(spans.all()) > 20
    leaked = [secret for secret in traced.secrets() if secret in exported]
    assert not leaked, f"{len(leaked)} secret(s) in exported spans"


async def test_a_bulk_run_is_one_span_and_one_linked_trace_per_rider(
    traced: TracedService, spans: RecordedSpans
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
        assert any(http_attribute(s, "method") for s in spans.beneath(rider))
