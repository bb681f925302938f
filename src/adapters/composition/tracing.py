"""Tracing from the settings: the process's tracer provider (for as long as a command runs) and
the bulk-run tracer the use cases get. docs/tracing.md says what is traced and how to turn it on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from adapters.composition.settings import Settings
from adapters.driven.observability.bulk_tracing import OtelBulkTracer
from adapters.driven.observability.tracing import TracingConfig, start_tracing


def tracing_config(settings: Settings) -> TracingConfig:
    return TracingConfig(
        service_name=settings.otel_service_name,
        protocol=settings.otel_exporter_otlp_protocol,
        endpoint=settings.otel_exporter_otlp_endpoint,
        traces_endpoint=settings.otel_exporter_otlp_traces_endpoint,
        sampler=settings.otel_traces_sampler,
        sampler_arg=settings.otel_traces_sampler_arg,
    )


@contextlib.contextmanager
def tracing_session(settings: Settings) -> Iterator[None]:
    """Tracing on for the block when the settings ask for it; spans still buffered are sent when
    it ends. Enter it in the process that does the work: after a fork, never before."""
    if not settings.tracing_enabled:
        yield
        return
    tracing = start_tracing(tracing_config(settings))
    try:
        yield
    finally:
        tracing.shutdown()


def bulk_tracer(settings: Settings) -> OtelBulkTracer | None:
    """Spans for bulk runs when tracing is on; None lets the use cases skip them."""
    return OtelBulkTracer() if settings.tracing_enabled else None
