"""The tracing set-up from the OTEL_* settings: off unless asked, the exporter by protocol, the
sampler by name and ratio (bulk-run riders sampled one by one), and a run's rider spans."""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.composition.container import tracing_config
from adapters.composition.settings import ConfigError, load_settings
from adapters.driven.observability.bulk_tracing import OtelBulkTracer
from adapters.driven.observability.tracing import TracingConfig, make_exporter, make_provider
from application.ports import BulkJob


@pytest.mark.parametrize(
    ("environ", "enabled"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, False),
    ],
)
def test_tracing_is_off_unless_an_endpoint_or_the_exporter_asks(
    environ: dict[str, str], enabled: bool
) -> None:
    assert load_settings(environ).tracing_enabled is enabled


def test_bad_otel_values_are_named_at_start_up() -> None:
    with pytest.raises(ConfigError) as error:
        load_settings(
            {
                "OTEL_TRACES_SAMPLER": "sometimes",
                "OTEL_TRACES_SAMPLER_ARG": "1.5",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                "OTEL_TRACES_EXPORTER": "jaeger",
            }
        )
    named = {problem.split(":", 1)[0] for problem in error.value.problems}
    assert named == {
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        "OTEL_TRACES_EXPORTER",
    }


def test_the_protocol_picks_the_exporter_and_the_base_url_gets_the_traces_path() -> None:
    http = make_exporter(
        tracing_config(load_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}))
    )
    grpc = make_exporter(
        tracing_config(
            load_settings(
                {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                }
            )
        )
    )
    assert isinstance(http, HttpExporter) and http._endpoint == "http://collector:4318/v1/traces"
    assert isinstance(grpc, GrpcExporter)
    http.shutdown()
    grpc.shutdown()


def test_bulk_riders_are_sampled_one_by_one_at_the_configured_ratio() -> None:
    settings = load_settings(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }
    )
    exporter = InMemorySpanExporter()
    provider = make_provider(tracing_config(settings), SimpleSpanProcessor(exporter))
    run = OtelBulkTracer(provider).start_run(BulkJob.REFRESH_STALE, 2000)

    for user_id in range(2000):
        with run.rider(user_id):
            pass
    run.end()

    riders = [span for span in exporter.get_finished_spans() if span.name.endswith("rider")]
    assert 120 <= len(riders) <= 280  # 10 % of 2000, give or take ~6 standard deviations
    provider.shutdown()


def test_a_failed_rider_is_marked_by_its_error_type_only() -> None:
    exporter = InMemorySpanExporter()
    provider = make_provider(TracingConfig(), SimpleSpanProcessor(exporter))
    run = OtelBulkTracer(provider).start_run(BulkJob.BOOTSTRAP, 1)

    with pytest.raises(ValueError), run.rider(7):
        raise ValueError("refresh token abc123 rejected")
    run.end()

    rider = next(span for span in exporter.get_finished_spans() if span.name == "bulk bootstrap rider")
    assert rider.attributes is not None and rider.attributes["error.type"] == "ValueError"
    assert "abc123" not in "".join(span.to_json() for span in exporter.get_finished_spans())
    provider.shutdown()
