"""A server span per RPC with tracing on: every kind of method (unary, server streams, health
Watch, reflection's stream-stream ServerReflectionInfo), the caller's traceparent continued, the
status code recorded, and the bearer token nowhere in what is exported."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from opentelemetry.trace import SpanKind, StatusCode

from adapters.driving.grpc_api.server import SERVICE_NAME
from application.results import BulkProgress
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from domain.model import Outcome
from tests.adapters.driving.grpc_api.conftest import AUTH_TOKEN, RunningServer, serve
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases, make_result
from tests.traces import RecordedSpans

CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"
AUTHED = (("authorization", f"Bearer {AUTH_TOKEN}"),)


@pytest.fixture
async def traced_server(use_cases: FakeUseCases, spans: RecordedSpans) -> AsyncIterator[RunningServer]:
    async for running in serve(use_cases, AUTH_TOKEN, traced=True):
        yield running


async def test_a_call_continues_the_callers_trace(traced_server: RunningServer, spans: RecordedSpans) -> None:
    metadata = (*AUTHED, ("traceparent", TRACEPARENT))

    await traced_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42), metadata=metadata)

    span = spans.one(f"{SERVICE_NAME}/GetTicketCache")
    assert span.kind is SpanKind.SERVER
    assert format(span.context.trace_id, "032x") == CALLER_TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == CALLER_SPAN_ID
    assert span.attributes is not None
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.service"] == SERVICE_NAME
    assert span.attributes["rpc.method"] == "GetTicketCache"
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]


async def test_a_call_without_traceparent_starts_a_trace(
    traced_server: RunningServer, spans: RecordedSpans
) -> None:
    await traced_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42), metadata=AUTHED)

    span = spans.one(f"{SERVICE_NAME}/GetTicketCache")
    assert span.parent is None and span.context.is_valid


async def test_a_callers_error_is_its_code_not_a_server_error(
    traced_server: RunningServer,
    spans: RecordedSpans,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await traced_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=404), metadata=AUTHED)
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await traced_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED

    ended = await spans.ended(f"{SERVICE_NAME}/GetTicketCache", count=2)
    codes = [span.attributes["rpc.grpc.status_code"] for span in ended]
    assert sorted(codes) == sorted(
        [grpc.StatusCode.NOT_FOUND.value[0], grpc.StatusCode.UNAUTHENTICATED.value[0]]
    )
    assert all(span.status.status_code is StatusCode.UNSET for span in spans.all())


async def test_an_unexpected_failure_is_a_server_error_named_by_its_code(
    traced_server: RunningServer,
    spans: RecordedSpans,
) -> None:
    traced_server.use_cases.failures["build"] = RuntimeError(f"boom with {AUTH_TOKEN}")

    with pytest.raises(grpc.aio.AioRpcError):
        await traced_server.stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=42), metadata=AUTHED)

    (span,) = await spans.ended(f"{SERVICE_NAME}/BuildTicketCache")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["error.type"] == "INTERNAL"
    assert AUTH_TOKEN not in spans.as_text()


async def test_server_streams_are_traced_and_still_stream(
    traced_server: RunningServer,
    spans: RecordedSpans,
) -> None:
    traced_server.use_cases.events = [
        BulkProgress(user_id=1, result=make_result(1, Outcome.UPDATED), error=None, done=1, total=1, failed=0)
    ]
    metadata = (*AUTHED, ("traceparent", TRACEPARENT))
    stub = traced_server.stub

    refreshed = [e async for e in stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(), metadata=metadata)]
    built = [e async for e in stub.BuildCacheIfEmpty(pb.BuildCacheIfEmptyRequest(), metadata=metadata)]
    watch = stub.WatchChanges(pb.WatchChangesRequest(), metadata=metadata)
    first_batch = await watch.read()
    watch.cancel()  # a real feed stays open until its subscriber leaves (the fake's ends after one)

    assert [e.user_id for e in refreshed] == [1] and [e.user_id for e in built] == [1]
    assert first_batch.cursor
    for method in ("RefreshStaleCaches", "BuildCacheIfEmpty"):
        span = spans.one(f"{SERVICE_NAME}/{method}")
        assert format(span.context.trace_id, "032x") == CALLER_TRACE_ID
        assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 0
    (watched,) = await spans.ended(f"{SERVICE_NAME}/WatchChanges")
    assert format(watched.context.trace_id, "032x") == CALLER_TRACE_ID
    assert watched.attributes is not None and "rpc.grpc.status_code" in watched.attributes


async def test_health_check_and_watch_are_traced(traced_server: RunningServer, spans: RecordedSpans) -> None:
    health = health_pb2_grpc.HealthStub(traced_server.channel)

    checked = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    first = await watch.read()
    watch.cancel()

    assert checked.status == first.status == health_pb2.HealthCheckResponse.SERVING
    assert spans.one("grpc.health.v1.Health/Check").attributes["rpc.grpc.status_code"] == 0
    (watched,) = await spans.ended("grpc.health.v1.Health/Watch")
    assert watched.attributes is not None and "rpc.grpc.status_code" in watched.attributes


async def test_reflection_a_stream_stream_method_is_traced(
    traced_server: RunningServer,
    spans: RecordedSpans,
) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(traced_server.channel)
    requests = iter(
        [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
        ]
    )

    responses = [r async for r in stub.ServerReflectionInfo(requests, metadata=AUTHED)]

    names = {service.name for service in responses[0].list_services_response.service}
    assert SERVICE_NAME in names
    assert responses[1].file_descriptor_response.file_descriptor_proto
    span = spans.one("grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 0


async def test_the_bearer_token_is_in_no_exported_span(
    traced_server: RunningServer, spans: RecordedSpans
) -> None:
    metadata = (*AUTHED, ("traceparent", TRACEPARENT), ("x-request-id", "req-1"))

    await traced_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42), metadata=metadata)
    await traced_server.stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=42), metadata=metadata)

    assert len(spans.all()) == 2
    assert AUTH_TOKEN not in spans.as_text()
    assert "authorization" not in spans.as_text().lower()
