"""Walks the whole error catalogue (adapters.driving.grpc_api.error_catalogue) through the real gRPC
server: every reason reaches a caller as a google.rpc.Status with its ErrorInfo, a BadRequest on
INVALID_ARGUMENT and a RetryInfo when the wait is known, read by the Python client's errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from adapters.driving.grpc_api.error_catalogue import (
    ADAPTER_REASONS,
    CATALOGUE,
    DOMAIN,
    INTERNAL,
    MALFORMED_REQUEST,
    REASON_BY_ERROR,
    SCOPE_INSUFFICIENT,
    SERVER_SHUTTING_DOWN,
    UNAUTHENTICATED,
    Reason,
    catalogue_markdown,
)
from adapters.driving.grpc_api.server import create_server, graceful_shutdown
from application import errors as app
from application.results import BulkProgress
from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from tests.adapters.driving.grpc_api.conftest import RunningServer
from tests.adapters.driving.grpc_api.fake_use_cases import FakeUseCases
from ticket_cache_client import ErrorDetails, FieldViolation, TicketCacheError, rider_error

ROOT = Path(__file__).resolve().parents[4]
SERVICE = "/bytemark.ticketcache.v1.TicketCacheService"

#: One real instance of every application error the catalogue maps (most as the stores raise them).
EXAMPLES: dict[type[Exception], Exception] = {
    type(error): error
    for error in (
        app.CursorForeign("ct-nonsense", "not a cursor this service issued: 'ct-nonsense'"),
        app.InvalidArgument("user_ids[2]", "must be a positive user id, got 0"),
        app.CacheNotFound(7),
        app.SyncStatusNotFound(7),
        app.CursorExpired(7),
        app.Unsupported("the change feed is not configured on this server"),
        app.UpstreamUnavailable("GET /v4.0/passes", "rate limited (429)", retry_after=90.0),
        app.StoreUnavailable("cache store", "connection refused"),
        app.AccessTokenRejected("GET /v4.0/passes"),
        app.RefreshTokenInvalid(),
        app.TokenDecryptionError(7, "cannot be decrypted"),
        app.WriteConflict(7, 3),
        app.CacheTooLarge(7, 17_825_929, 16_777_216),
        app.CacheNotStorable(7, "MongoDB", 'invalid key: "a.b"'),
        app.DeadlineExceeded(),
        app.InternalError(RuntimeError("a bug")),
    )
}


def test_every_reason_is_walked_by_a_test_below() -> None:
    assert set(EXAMPLES) == {error_type for error_type, _ in REASON_BY_ERROR}
    # SCOPE_INSUFFICIENT: test_credentials.py
    walked_by_adapter_tests = {
        MALFORMED_REQUEST,
        UNAUTHENTICATED,
        SCOPE_INSUFFICIENT,
        SERVER_SHUTTING_DOWN,
        INTERNAL,
    }
    assert set(ADAPTER_REASONS) == walked_by_adapter_tests
    names = [reason.name for reason in CATALOGUE]
    assert len(names) == len(set(names))
    assert all(name.isupper() and name.replace("_", "").isalpha() for name in names)


def test_the_errors_page_is_the_catalogue_rendered() -> None:
    page = (ROOT / "docs" / "errors.md").read_text()
    assert page == catalogue_markdown(), "docs/errors.md is stale: regenerate it as its header says"


def details_of(raised: pytest.ExceptionInfo[grpc.aio.AioRpcError], reason: Reason) -> TicketCacheError:
    error = TicketCacheError(raised.value)
    assert error.code() == reason.code
    assert error.reason == reason.name
    assert error.error_details.domain == DOMAIN
    return error


@pytest.mark.parametrize(("error_type", "reason"), REASON_BY_ERROR, ids=[r.name for _, r in REASON_BY_ERROR])
async def test_each_application_error_reaches_the_caller_with_its_reason(
    grpc_server: RunningServer, error_type: type[Exception], reason: Reason
) -> None:
    grpc_server.use_cases.failures["update"] = EXAMPLES[error_type]
    request_id = f"walk-{reason.name.lower()}"

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.UpdateTicketCache(
            pb.UpdateTicketCacheRequest(user_id=7), metadata=(("x-request-id", request_id),)
        )

    error = details_of(raised, reason)
    assert error.metadata["request_id"] == request_id
    if hasattr(EXAMPLES[error_type], "user_id"):
        assert error.metadata["user_id"] == "7"
    if reason.code == grpc.StatusCode.INVALID_ARGUMENT:
        field = "start_cursor" if error_type is app.CursorForeign else "user_ids[2]"
        assert [v.field for v in error.field_violations] == [field]
        assert error.field_violations[0].description in (error.details() or "")
    else:
        assert error.field_violations == ()
    expected_delay = timedelta(seconds=90) if error_type is app.UpstreamUnavailable else None
    assert error.retry_delay == expected_delay


async def test_a_foreign_cursor_names_the_cursor(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.failures["update"] = EXAMPLES[app.CursorForeign]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.UpdateTicketCache(pb.UpdateTicketCacheRequest(user_id=7))
    assert TicketCacheError(raised.value).metadata["cursor"] == "ct-nonsense"


async def test_a_bug_is_internal_with_only_the_request_id(grpc_server: RunningServer) -> None:
    grpc_server.use_cases.failures["update"] = RuntimeError("secret internals")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.stub.UpdateTicketCache(
            pb.UpdateTicketCacheRequest(user_id=7), metadata=(("x-request-id", "bug-1"),)
        )
    error = details_of(raised, INTERNAL)
    assert dict(error.metadata) == {"request_id": "bug-1"}
    assert "secret" not in (error.details() or "")


async def test_a_corrupt_request_is_a_malformed_request_on_field_request(grpc_server: RunningServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await grpc_server.channel.unary_unary(f"{SERVICE}/GetTicketCache")(b"\xff")
    error = details_of(raised, MALFORMED_REQUEST)
    assert error.field_violations == (
        FieldViolation(
            "request", "not a valid bytemark.ticketcache.v1.GetTicketCacheRequest (corrupt wire format)"
        ),
    )


async def test_a_call_without_the_token_is_unauthenticated_with_a_reason(
    authed_server: RunningServer,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await authed_server.stub.GetTicketCache(
            pb.GetTicketCacheRequest(user_id=42), metadata=(("x-request-id", "no-token"),)
        )
    assert details_of(raised, UNAUTHENTICATED).metadata["request_id"] == "no-token"


async def test_a_stream_ended_by_shutdown_says_so_with_a_reason() -> None:
    use_cases = FakeUseCases(
        events=[BulkProgress(1, None, None, done=1, total=2, failed=0)], hold_stream_open=True
    )
    server, port, health = await create_server(use_cases, listen="127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stream = pb_grpc.TicketCacheServiceStub(channel).RefreshStaleCaches(pb.RefreshStaleCachesRequest())
        await stream.read()  # the run is under way
        shutdown = asyncio.create_task(graceful_shutdown(server, health, grace=0.5))
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stream.read()
        await asyncio.wait_for(shutdown, timeout=5)
    assert "server shutting down" in (details_of(raised, SERVER_SHUTTING_DOWN).details() or "")


@pytest.mark.parametrize("max_batch", [0, 4])
async def test_a_failed_rider_in_a_bulk_stream_carries_the_same_status(
    grpc_server: RunningServer, max_batch: int
) -> None:
    failure = app.UpstreamUnavailable("GET /v4.0/passes", "HTTP 503 after 4 attempts", retry_after=12.5)
    grpc_server.use_cases.events = [BulkProgress(9, None, failure, done=1, total=1, failed=1)]

    events = [
        e
        async for e in grpc_server.stub.RefreshStaleCaches(pb.RefreshStaleCachesRequest(max_batch=max_batch))
    ]

    rider = events[0].batch[0] if max_batch else events[0]
    assert rider.status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    assert rider.status.message == str(failure)
    details = rider_error(rider)
    assert isinstance(details, ErrorDetails)
    assert details.reason == "BYTEMARK_UNAVAILABLE"
    assert details.metadata["endpoint"] == "GET /v4.0/passes"
    assert details.retry_delay == timedelta(seconds=12.5)
    assert (rider.error.code, rider.error.message) == ("UNAVAILABLE", str(failure))  # deprecated, kept
