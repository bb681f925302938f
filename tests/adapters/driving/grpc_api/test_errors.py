"""Application errors -> status codes (adapters.driving.grpc_api.errors), deadlines, request ids."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from adapters.driving.grpc_api.error_catalogue import REASON_BY_ERROR
from application import errors as application_errors
from application.errors import (
    ApplicationError,
    CacheNotFound,
    CacheNotStorable,
    CacheTooLarge,
    InvalidArgument,
    StoreUnavailable,
    UpstreamUnavailable,
    WriteConflict,
)
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from tests.adapters.driving.grpc_api.conftest import RunningServer


@pytest.mark.parametrize(
    ("error", "code", "message_part"),
    [
        (InvalidArgument("user_id", "must be > 0"), grpc.StatusCode.INVALID_ARGUMENT, "user_id: must be > 0"),
        (CacheNotFound(7), grpc.StatusCode.NOT_FOUND, "no ticket cache for user 7"),
        (
            UpstreamUnavailable("GET /v4.0/passes", "timed out"),
            grpc.StatusCode.UNAVAILABLE,
            "GET /v4.0/passes",
        ),
        (StoreUnavailable("cache store", "connection refused"), grpc.StatusCode.UNAVAILABLE, "cache store"),
        (WriteConflict(7, 3), grpc.StatusCode.ABORTED, "changed concurrently"),
        (
            CacheTooLarge(7, 17_825_929, 16_777_216),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "ticket cache of user 7 would be 17,825,929 bytes",
        ),
        (
            CacheNotStorable(7, "MongoDB", 'invalid key: "a.b"'),
            grpc.StatusCode.FAILED_PRECONDITION,
            'MongoDB refused the ticket cache of user 7: invalid key: "a.b"',
        ),
    ],
)
async def test_each_application_error_becomes_its_status_code(
    grpc_server: RunningServer, error: Exception, code: grpc.StatusCode, message_part: str
) -> None:
    grpc_server.use_cases.failures["update"] = error

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=7))

    assert raised.value.code() == code
    assert message_part in (raised.value.details() or "")


async def test_an_unexpected_error_is_internal_with_a_request_id_and_no_details(
    grpc_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    grpc_server.use_cases.failures["build"] = RuntimeError("db password=hunter2 leaked into a message")

    with caplog.at_level(logging.ERROR, logger="adapters.driving.grpc_api.errors"):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await grpc_server.stub.BuildTicketCache(
                pb.BuildTicketCacheRequest(user_id=7), metadata=(("x-request-id", "req-123"),)
            )

    details = raised.value.details() or ""
    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "req-123" in details
    assert "hunter2" not in details and "RuntimeError" not in details
    logged = [r for r in caplog.records if "req-123" in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback stays server-side


async def test_a_deadline_cancels_the_work_and_answers_deadline_exceeded(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.delay = 5

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=7), timeout=0.2)

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await grpc_server.use_cases.cancelled.wait()  # the use case did not run on past the deadline


async def test_the_request_id_comes_back_in_trailing_metadata(grpc_server: RunningServer) -> None:
    call = grpc_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=42), metadata=(("x-request-id", "abc-1"),)
    )
    await call

    assert ("x-request-id", "abc-1") in tuple(await call.trailing_metadata())


async def test_the_request_id_comes_back_with_an_error_too(grpc_server: RunningServer) -> None:
    call = grpc_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=404), metadata=(("x-request-id", "abc-2"),)
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call

    assert ("x-request-id", "abc-2") in tuple(raised.value.trailing_metadata() or ())


async def test_a_stream_sends_the_request_id_before_its_first_event(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.hold_stream_open = True
    call = grpc_server.stub.RefreshStaleCaches(
        pb.RefreshStaleCachesRequest(), metadata=(("x-request-id", "job-7"),)
    )

    assert ("x-request-id", "job-7") in tuple(await call.initial_metadata())
    call.cancel()


async def test_a_request_id_is_generated_when_the_caller_sends_none_or_a_bad_one(
    grpc_server: RunningServer,
) -> None:
    call = grpc_server.stub.GetTicketCache(
        pb.GetTicketCacheRequest(user_id=42), metadata=(("x-request-id", "bad id with spaces"),)
    )
    await call

    ids = [value for key, value in await call.trailing_metadata() if key == "x-request-id"]
    assert len(ids) == 1 and len(ids[0]) == 32 and ids[0] != "bad id with spaces"


async def test_without_a_callers_id_only_a_failed_call_carries_one_back(grpc_server: RunningServer) -> None:
    succeeded = grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=42))
    await succeeded
    failed = grpc_server.stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=404))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await failed

    assert not [key for key, _ in await succeeded.trailing_metadata() if key == "x-request-id"]
    ids = [value for key, value in raised.value.trailing_metadata() or () if key == "x-request-id"]
    status = rpc_status.from_call(raised.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert len(ids) == 1 and len(ids[0]) == 32 and info.metadata["request_id"] == ids[0]


async def test_a_bug_without_a_callers_id_carries_back_the_id_it_names(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.failures["build"] = RuntimeError("boom")

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=7))

    ids = [value for key, value in raised.value.trailing_metadata() or () if key == "x-request-id"]
    assert len(ids) == 1 and ids[0] in (raised.value.details() or "")


def test_every_typed_application_error_maps_to_a_status_exactly_once() -> None:
    typed = [
        value
        for value in vars(application_errors).values()
        if isinstance(value, type) and issubclass(value, ApplicationError) and value is not ApplicationError
    ]
    mapped = [error_type for error_type, _ in REASON_BY_ERROR]

    assert sorted(t.__name__ for t in mapped) == sorted(t.__name__ for t in typed)
