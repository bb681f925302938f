"""Spans recorded in memory for tests: one tracer provider per test process (OpenTelemetry lets a
process set its global provider once), installed as `serve` installs its own, for one test at a
time. The tracing set-up is the real one; only the exporter is an in-memory one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.driven.observability.tracing import Tracing, TracingConfig, make_provider

_EXPORTER = InMemorySpanExporter()
# Spans are exported as they end (the batch processor's thread would make tests wait for it).
_PROVIDER: TracerProvider = make_provider(TracingConfig(), SimpleSpanProcessor(_EXPORTER))


class RecordedSpans:
    def __init__(self, exporter: InMemorySpanExporter) -> None:
        self._exporter = exporter

    def all(self) -> Sequence[ReadableSpan]:
        return self._exporter.get_finished_spans()

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.all() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.named(name)
        assert len(found) == 1, f"{len(found)} spans named {name!r} among {[s.name for s in self.all()]}"
        return found[0]

    def beneath(self, root: ReadableSpan) -> list[ReadableSpan]:
        """Every span in `root`'s subtree (children, their children, ...)."""
        by_parent: dict[int, list[ReadableSpan]] = {}
        for span in self.all():
            if span.parent is not None:
                by_parent.setdefault(span.parent.span_id, []).append(span)
        found, todo = [], [root.context.span_id]
        while todo:
            for child in by_parent.get(todo.pop(), []):
                found.append(child)
                todo.append(child.context.span_id)
        return found

    async def ended(self, name: str, count: int = 1, within: float = 5.0) -> list[ReadableSpan]:
        """The `count` spans named `name` once they have ended. A call's span ends when the server
        has run the handler's cleanup, which may be just after the client has its status (a
        refused or cancelled call)."""
        deadline = asyncio.get_running_loop().time() + within
        while len(self.named(name)) < count and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        found = self.named(name)
        assert len(found) == count, f"{len(found)} spans named {name!r}, not {count}"
        return found

    def as_text(self) -> str:
        """Every exported span as OTLP JSON would carry it (attributes, events, links, resource)."""
        return "\n".join(span.to_json() for span in self.all())


@pytest.fixture
def spans() -> Iterator[RecordedSpans]:
    """Tracing on for the test, as `serve` turns it on; the spans it ended."""
    _EXPORTER.clear()
    tracing = Tracing.install(_PROVIDER)
    try:
        yield RecordedSpans(_EXPORTER)
    finally:
        tracing.uninstall()
        _EXPORTER.clear()
