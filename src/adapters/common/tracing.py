"""Spans that adapters of every kind open themselves (store statements on asyncmy and aiosqlite,
which have no OpenTelemetry instrumentation), and the ids of the current span for the logs.

Off until `enable_store_spans()` (called by the tracing set-up): then each statement costs one
shared no-op context manager and no tracer call, so the read path with tracing off is as fast
as without this module."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager

from opentelemetry import trace

TRACER_NAME = "bytemark_ticket_cache"
_NO_SPAN: AbstractContextManager[object] = contextlib.nullcontext()
_TABLE = re.compile(r"(?is)\b(?:from|into|update|table(?:\s+if\s+(?:not\s+)?exists)?)\s+[`\"]?(\w+)")


class _StoreSpans:
    enabled = False


def enable_store_spans(enabled: bool = True) -> None:
    """Open a span per store statement from now on (or stop, with False)."""
    _StoreSpans.enabled = enabled


def store_span(system: str, statement: str) -> AbstractContextManager[object]:
    """A CLIENT span around one statement on `system` ("sqlite", "mysql"), named like OTel's
    database conventions ("SELECT bytemark_tokens"). Only the operation and table go into the
    span, never the statement's parameters (they hold riders' tokens)."""
    if not _StoreSpans.enabled:
        return _NO_SPAN
    operation, table = _describe(statement)
    return _client_span(system, operation, table)


def store_operation_span(system: str, operation: str) -> AbstractContextManager[object]:
    """A span around a unit of store work that is not one statement (a transaction, a batch)."""
    if not _StoreSpans.enabled:
        return _NO_SPAN
    return _client_span(system, operation, "")


@contextlib.contextmanager
def _client_span(system: str, operation: str, table: str) -> Iterator[trace.Span]:
    attributes = {"db.system.name": system, "db.operation.name": operation}
    if table:
        attributes["db.collection.name"] = table
    with trace.get_tracer(TRACER_NAME).start_as_current_span(
        f"{operation} {table}" if table else operation,
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,  # a driver's message may quote a value (MySQL: "Duplicate entry '...'")
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            mark_failed(span, exc)
            raise


def mark_failed(span: trace.Span, exc: BaseException) -> None:
    """Status ERROR naming the exception type only: a message may carry a value from the request."""
    kind = type(exc).__name__
    span.set_attribute("error.type", kind)
    span.set_status(trace.StatusCode.ERROR, kind)


@functools.lru_cache(maxsize=512)  # the statements are the stores' constants: a few dozen
def _describe(statement: str) -> tuple[str, str]:
    words = statement.split(None, 1)
    operation = words[0].upper() if words else "SQL"
    match = _TABLE.search(statement)
    return operation, match.group(1) if match else ""


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span in W3C hex form, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
