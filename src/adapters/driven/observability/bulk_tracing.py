"""Bulk runs in traces: one span per run, and one trace per rider linked to it.

A run of 100,000 riders would be one unreadable trace; instead each rider's refresh (its store
reads and Bytemark calls beneath it) is the root of its own trace, sampled by the configured
sampler like any other (at 10 %, one rider in ten), with a link to the run's span. The run's
span is a child of whatever started it (the RefreshStaleCaches call's server span)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from opentelemetry import trace
from opentelemetry.context import Context

from application.ports import BulkJob


class OtelBulkTracer:
    """Implements application.ports.BulkTracer with OpenTelemetry spans."""

    def __init__(self, tracer_provider: trace.TracerProvider | None = None) -> None:
        self._tracer = trace.get_tracer("bytemark_ticket_cache.bulk", tracer_provider=tracer_provider)

    def start_run(self, job: BulkJob, total: int) -> _RunTrace:
        span = self._tracer.start_span(
            f"bulk {job.value}",
            attributes={"ticket_cache.bulk.job": job.value, "ticket_cache.bulk.riders": total},
        )
        return _RunTrace(self._tracer, span, job)


class _RunTrace:
    def __init__(self, tracer: trace.Tracer, span: trace.Span, job: BulkJob) -> None:
        self._tracer = tracer
        self._span = span
        self._links = [trace.Link(span.get_span_context())] if span.get_span_context().is_valid else []
        self._name = f"bulk {job.value} rider"
        self._job = job.value

    @contextlib.contextmanager
    def rider(self, user_id: int) -> Iterator[object]:
        with self._tracer.start_as_current_span(
            self._name,
            context=Context(),  # a root: sampled on its own, not with the run
            links=self._links,
            attributes={"ticket_cache.bulk.job": self._job, "ticket_cache.user_id": user_id},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except BaseException as exc:  # the error's type, never its message (it may quote a token)
                span.set_attribute("error.type", type(exc).__name__)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
                raise

    def end(self) -> None:
        self._span.end()
