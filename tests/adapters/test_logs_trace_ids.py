"""A log line written inside a recorded span carries its trace_id and span_id (W3C hex), so a
line in the logs leads to its trace, and the trace back to its lines."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace

from adapters.common.logs import JsonFormatter, TextFormatter
from tests.traces import RecordedSpans


def _record() -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, "refreshed", None, None)


def test_json_lines_name_the_trace_and_span_they_were_written_in(spans: RecordedSpans) -> None:
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(_record()))
    context = span.get_span_context()

    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_text_lines_too(spans: RecordedSpans) -> None:
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = TextFormatter().format(_record())

    assert f"trace_id={format(span.get_span_context().trace_id, '032x')}" in line


def test_lines_outside_a_span_have_no_trace_fields(spans: RecordedSpans) -> None:
    line = json.loads(JsonFormatter().format(_record()))

    assert "trace_id" not in line and "span_id" not in line
