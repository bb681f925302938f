"""Spans around the SQL stores' statements (asyncmy and aiosqlite have no OpenTelemetry
instrumentation; PyMongo's covers MongoDB), opened only beneath a span being recorded: with
tracing off, or in a call the sampler left out, each statement costs one context lookup."""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager

from opentelemetry import trace

_TRACER = trace.get_tracer("bytemark_ticket_cache.storage")
_NO_SPAN: AbstractContextManager[object] = contextlib.nullcontext()
_TABLE = re.compile(r"(?is)\b(?:from|into|update|table(?:\s+if\s+(?:not\s+)?exists)?)\s+[`\"]?(\w+)")


def store_span(system: str, statement: str) -> AbstractContextManager[object]:
    """A CLIENT span around one statement on `system` ("sqlite", "mysql"), named like OTel's
    database conventions ("SELECT bytemark_tokens"). Only the operation and table go into the
    span, never the statement's parameters (they hold riders' tokens)."""
    if not trace.get_current_span().is_recording():
        return _NO_SPAN
    operation, table = _describe(statement)
    return _client_span(system, operation, table)


def store_operation_span(system: str, operation: str) -> AbstractContextManager[object]:
    """A span around a unit of store work that is not one statement (a transaction, a batch)."""
    if not trace.get_current_span().is_recording():
        return _NO_SPAN
    return _client_span(system, operation, "")


@contextlib.contextmanager
def _client_span(system: str, operation: str, table: str) -> Iterator[trace.Span]:
    attributes = {"db.system.name": system, "db.operation.name": operation}
    if table:
        attributes["db.collection.name"] = table
    with _TRACER.start_as_current_span(
        f"{operation} {table}" if table else operation,
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,  # a driver's message may quote a value (MySQL: "Duplicate entry '...'")
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            raise


@functools.lru_cache(maxsize=512)  # the statements are the stores' constants: a few dozen
def _describe(statement: str) -> tuple[str, str]:
    words = statement.split(None, 1)
    operation = words[0].upper() if words else "SQL"
    match = _TABLE.search(statement)
    return operation, match.group(1) if match else ""
