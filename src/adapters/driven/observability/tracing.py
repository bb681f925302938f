"""The OpenTelemetry tracer provider of one process: exporter, sampler, instrumentations.

Set it up in each process that serves, after any fork (`BatchSpanProcessor` runs a thread,
which a fork does not copy), and shut it down on exit so the last spans are sent. The OTLP
exporter is chosen by protocol here: `OTEL_EXPORTER_OTLP_PROTOCOL` is honoured by the SDK's
auto-configuration only, not by an exporter constructed in code."""

from __future__ import annotations

import os
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from yarl import URL

#: Header values the HTTP instrumentation would copy into spans if an operator asked it to
#: capture request headers (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST).
_SANITIZE_HEADERS_VARIABLE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
_SECRET_HEADERS = ("authorization", "cookie", "set-cookie", "proxy-authorization")


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """The standard OTEL_* choices this service reads (docs/tracing.md)."""

    service_name: str = "bytemark-ticket-cache"
    protocol: str = "http/protobuf"  # or "grpc"
    endpoint: str | None = None  # OTEL_EXPORTER_OTLP_ENDPOINT: a base URL
    traces_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full URL
    sampler: str = "parentbased_always_on"
    sampler_arg: float | None = None


def make_sampler(name: str, arg: float | None) -> Sampler:
    """OTEL_TRACES_SAMPLER's names; `arg` is the ratio of the traceidratio ones (default 1.0)."""
    ratio = TraceIdRatioBased(1.0 if arg is None else arg)
    samplers: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "traceidratio": ratio,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
        "parentbased_traceidratio": ParentBased(ratio),
    }
    return samplers[name]


def make_exporter(config: TracingConfig) -> SpanExporter:
    """OTLP over gRPC or HTTP/protobuf, to the configured endpoint (the exporter's own default,
    localhost, when none is set). Headers, certificates, timeout and compression come from the
    exporters' own OTEL_EXPORTER_OTLP_* variables."""
    if config.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=config.traces_endpoint or config.endpoint)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    endpoint = config.traces_endpoint
    if endpoint is None and config.endpoint is not None:
        endpoint = config.endpoint.rstrip("/") + "/v1/traces"  # the spec's rule for the base URL
    return HttpExporter(endpoint=endpoint)


def make_provider(config: TracingConfig, processor: SpanProcessor) -> TracerProvider:
    provider = TracerProvider(
        sampler=make_sampler(config.sampler, config.sampler_arg),
        resource=Resource.create({SERVICE_NAME: config.service_name}),
    )
    provider.add_span_processor(processor)
    return provider


class Tracing:
    """This process's tracing, from `install` to `shutdown`."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    @classmethod
    def install(cls, provider: TracerProvider) -> Tracing:
        """Make `provider` the process's tracer provider, instrument aiohttp's client sessions
        (Bytemark calls) and PyMongo's commands (motor and AsyncMongoClient). Sessions and
        clients made afterwards are traced; the SQL stores open their own spans beneath any
        recorded one."""
        if trace.get_tracer_provider() is not provider:  # the SDK lets a process set it once
            trace.set_tracer_provider(provider)
        _sanitize_captured_headers()
        AioHttpClientInstrumentor().instrument(tracer_provider=provider, url_filter=_without_query)
        # capture_statement stays off: a filter or document can hold a rider's token.
        PymongoInstrumentor().instrument(tracer_provider=provider)
        return cls(provider)

    def uninstall(self) -> None:
        """Stop instrumenting Bytemark and MongoDB calls."""
        AioHttpClientInstrumentor().uninstrument()
        PymongoInstrumentor().uninstrument()

    def shutdown(self) -> None:
        """Uninstall, then send the spans still buffered (bounded by the exporter's timeout)."""
        self.uninstall()
        self.provider.shutdown()


def start_tracing(config: TracingConfig) -> Tracing:
    return Tracing.install(make_provider(config, BatchSpanProcessor(make_exporter(config))))


def _without_query(url: URL) -> str:
    """The URL in span attributes, without its query (redact_url drops user:password itself)."""
    return str(url.with_query(None).with_fragment(None))


def _sanitize_captured_headers() -> None:
    """Redact credential headers, should an operator ask the HTTP instrumentation to capture
    request headers: the Bytemark calls carry riders' access tokens in Authorization."""
    listed = [name for name in os.environ.get(_SANITIZE_HEADERS_VARIABLE, "").split(",") if name.strip()]
    missing = [name for name in _SECRET_HEADERS if name not in {item.strip().lower() for item in listed}]
    if missing:
        os.environ[_SANITIZE_HEADERS_VARIABLE] = ",".join([*listed, *missing])
