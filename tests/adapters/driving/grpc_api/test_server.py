"""Server wiring: health, reflection, metrics and graceful shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client import REGISTRY

from adapters.driving.grpc_api.server import SERVICE_NAME, create_server, graceful_shutdown
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases

#: go-grpc-prometheus's labels of each method: what stock gRPC dashboards select on
GET_METHOD = {"grpc_type": "unary", "grpc_service": SERVICE_NAME, "grpc_method": "GetTicketCache"}
REFRESH_METHOD = {
    "grpc_type": "server_stream",
    "grpc_service": SERVICE_NAME,
    "grpc_method": "RefreshStaleCaches",
}


def handled(method: dict[str, str], code: str) -> float:
    return REGISTRY.get_sample_value("grpc_server_handled_total", {**method, "grpc_code": code}) or 0.0


def started(method: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("grpc_server_started_total", method) or 0.0


def observed(method: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("grpc_server_handling_seconds_count", method) or 0.0


def observed_within(method: dict[str, str], seconds: str) -> float:
    return REGISTRY.get_sample_value("grpc_server_handling_seconds_bucket", {**method, "le": seconds}) or 0.0


async def counted(read: Callable[[], float], expected: float) -> float:
    """The metric once it reaches `expected`, or as it stands after 5 s. A call is counted when
    the server's handler finishes, which may be just after the client has its status."""
    for _ in range(500):
        if read() == expected:
            break
        await asyncio.sleep(0.01)
    return read()


async def test_health_reports_the_server_and_the_service_serving(grpc_server: RunningServer) -> None:
    health = health_pb2_grpc.HealthStub(grpc_server.channel)

    for service in ("", SERVICE_NAME):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_the_service_health_and_reflection(grpc_server: RunningServer) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(grpc_server.channel)

    responses = [
        r
        async for r in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
    ]

    names = {s.name for s in responses[0].list_services_response.service}
    assert {SERVICE_NAME, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names


async def test_reflection_v1_answers_like_v1alpha_and_describes_the_service(
    grpc_server: RunningServer,
) -> None:
    # grpcio-reflection has no v1 stub; the messages are the same on the wire under either name.
    info = grpc_server.channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE_NAME),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
    ]

    listed, service_file, v1_file = [r async for r in info(iter(requests))]

    names = {s.name for s in listed.list_services_response.service}
    assert {SERVICE_NAME, "grpc.reflection.v1.ServerReflection"} <= names
    assert "grpc.reflection.v1alpha.ServerReflection" in names
    described = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in service_file.file_descriptor_response.file_descriptor_proto
    ]
    assert "TicketCacheService" in {s.name for f in described for s in f.service}
    [v1] = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in v1_file.file_descriptor_response.file_descriptor_proto
    ]
    assert (v1.package, v1.service[0].method[0].input_type) == (
        "grpc.reflection.v1",
        ".grpc.reflection.v1.ServerReflectionRequest",
    )


@pytest.mark.parametrize("version", ["v1", "v1alpha"])
@pytest.mark.parametrize("garbage", [b"\xff", b"\x0a\xff\x01", b"\x08"], ids=["ff", "truncated", "bare-tag"])
async def test_reflection_answers_garbage_with_invalid_argument_naming_no_library_internals(
    grpc_server: RunningServer, version: str, garbage: bytes
) -> None:
    info = grpc_server.channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo"
    )
    valid = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        _ = [response async for response in info(iter([valid, garbage]))]
    still_listed = [response async for response in info(iter([valid]))]

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = refused.value.details() or ""
    assert details.startswith("request: ") and "ServerReflectionRequest" in details
    assert "DecodeError" not in details and "google.protobuf" not in details
    assert len(still_listed) == 1


async def test_metrics_count_calls_by_method_and_code(grpc_server: RunningServer) -> None:
    ok_before, missing_before, seconds_before = (
        handled(GET_METHOD, "OK"),
        handled(GET_METHOD, "NOT_FOUND"),
        observed(GET_METHOD),
    )
    stream_before, started_before = handled(REFRESH_METHOD, "OK"), started(GET_METHOD)
    slowest_before = observed_within(GET_METHOD, "+Inf")

    await grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42))
    try:
        await grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=404))
    except grpc.aio.AioRpcError:
        pass
    [e async for e in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest())]

    assert await counted(lambda: handled(GET_METHOD, "OK"), ok_before + 1) == ok_before + 1
    assert await counted(lambda: handled(GET_METHOD, "NOT_FOUND"), missing_before + 1) == missing_before + 1
    assert await counted(lambda: observed(GET_METHOD), seconds_before + 2) == seconds_before + 2
    assert await counted(lambda: handled(REFRESH_METHOD, "OK"), stream_before + 1) == stream_before + 1
    assert started(GET_METHOD) == started_before + 2
    assert observed_within(GET_METHOD, "+Inf") == slowest_before + 2  # buckets are cumulative


async def test_metrics_count_rejected_calls(authed_server: RunningServer) -> None:
    before = handled(GET_METHOD, "UNAUTHENTICATED")

    try:
        await authed_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42))
    except grpc.aio.AioRpcError:
        pass

    assert await counted(lambda: handled(GET_METHOD, "UNAUTHENTICATED"), before + 1) == before + 1


async def test_graceful_shutdown_reports_not_serving_then_stops() -> None:
    server, port, health = await create_server(FakeUseCases(), listen="127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

        shutdown = asyncio.create_task(graceful_shutdown(server, health, grace=0.2))
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        await asyncio.wait_for(shutdown, timeout=5)

        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await pb_grpc.TicketCacheServiceStub(channel).PurgeOrphanedCaches(
                pb.PurgeOrphanedCachesRequest(), timeout=1
            )
        assert raised.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
