"""The HTTP port (HTTP_LISTEN) of a real server process: the same service as Connect JSON (curl),
Connect and gRPC-Web (connectrpc's client), gRPC over HTTP/2, with the gRPC port's bearer auth,
message limit, request id and metrics, and server streams."""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.protocol import ProtocolType
from google.rpc import error_details_pb2
from pyqwest import Client, HTTPTransport, HTTPVersion

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1.ticket_cache_connect import TicketCacheServiceClient
from devtools.harness import SERVICE, SandboxProcess, ServerProcess, free_port, start_server
from tests.e2e.http_calls import curl, envelope, method_url, unframe
from tests.e2e.test_change_feed import remove_one_pass
from tests.e2e.tls_files import write_tls_files

TOKEN = "http-port-token"
BEARER = f"Authorization: Bearer {TOKEN}"
JSON = "Content-Type: application/json"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        HTTP_LISTEN=f"127.0.0.1:{free_port()}",
        METRICS_LISTEN=f"127.0.0.1:{free_port()}",
        GRPC_AUTH_TOKEN=TOKEN,
        GRPC_MAX_RECEIVE_BYTES=str(MIB),
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def http(server: ServerProcess) -> str:
    return server.env["HTTP_LISTEN"]


def test_curl_with_json_builds_then_reads_a_cache(
    http: str, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=3, expired=1)
    built = curl(
        method_url(http, "CheckTicketCache"), json.dumps({"user_id": user_id}).encode(), JSON, BEARER
    )
    assert built.status == 200 and built.json()["result"]["outcome"] == "OUTCOME_BUILT"

    body = json.dumps({"user_id": user_id, "view": "CACHE_VIEW_SUMMARY"}).encode()
    read = curl(method_url(http, "GetTicketCache"), body, JSON, BEARER, "X-Request-Id: curl-read-1")
    assert read.status == 200
    assert read.headers["content-type"] == "application/json"
    assert read.headers["x-request-id"] == "curl-read-1"
    assert read.json()["cache"]["userId"] == str(user_id)  # int64 is a string in protobuf's JSON
    assert len(read.json()["cache"]["passes"]) == 3


def error_info(answer_json: dict[str, Any]) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo among a Connect error's details (base64 of the message)."""
    (info,) = [d for d in answer_json.get("details", []) if d["type"] == "google.rpc.ErrorInfo"]
    return error_details_pb2.ErrorInfo.FromString(base64.b64decode(info["value"] + "=="))


def test_errors_are_connect_error_json_with_the_grpc_ports_message_and_details(http: str) -> None:
    invalid = curl(method_url(http, "GetTicketCache"), b'{"user_id": 0}', JSON, BEARER, "X-Request-Id: bad-1")
    assert invalid.status == 400
    assert invalid.json()["code"] == "invalid_argument" and invalid.json()["message"].startswith("user_id")
    info = error_info(invalid.json())
    assert (info.reason, info.domain, info.metadata["request_id"]) == (
        "INVALID_FIELD",
        "ticketcache.bytemark",
        "bad-1",
    )
    (bad_request,) = [d for d in invalid.json()["details"] if d["type"] == "google.rpc.BadRequest"]
    violations = error_details_pb2.BadRequest.FromString(base64.b64decode(bad_request["value"] + "=="))
    assert [v.field for v in violations.field_violations] == ["user_id"]

    missing = curl(method_url(http, "GetTicketCache"), b'{"user_id": 987654321}', JSON, BEARER)
    assert (missing.status, missing.json()["code"]) == (404, "not_found")
    assert error_info(missing.json()).reason == "CACHE_NOT_FOUND"

    garbled = curl(method_url(http, "GetTicketCache"), b'{"user_id": "one"}', JSON, BEARER)
    assert garbled.json()["code"] == "invalid_argument"


def test_no_or_a_wrong_token_is_refused_on_unary_and_streaming_calls(http: str) -> None:
    refused = curl(method_url(http, "GetTicketCache"), b'{"user_id": 1}', JSON)
    assert (refused.status, refused.json()["code"]) == (401, "unauthenticated")
    assert error_info(refused.json()).reason == "UNAUTHENTICATED"
    assert TOKEN not in refused.body.decode()

    stream = curl(
        method_url(http, "WatchChanges"), envelope({}), "Content-Type: application/connect+json",
        "Authorization: Bearer not-the-token",
    )  # fmt: skip
    ((flags, end),) = unframe(stream.body)
    assert (flags, end["error"]["code"]) == (2, "unauthenticated")
    assert error_info(end["error"]).reason == "UNAUTHENTICATED"


def test_a_request_over_the_message_limit_is_refused(http: str) -> None:
    too_big = json.dumps({"user_id": 1, "padding": "x" * MIB}).encode()  # GRPC_MAX_RECEIVE_BYTES is 1 MiB
    answer = curl(method_url(http, "GetTicketCache"), too_big, JSON, BEARER)
    assert (answer.status, answer.json()["code"]) == (429, "resource_exhausted")


def test_curl_streams_bulk_progress_as_connect_json_frames(
    http: str, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    riders = [server.seed_user(sandbox) for _ in range(2)]
    answer = curl(
        method_url(http, "RefreshStaleCaches"), envelope({"user_ids": riders}),
        "Content-Type: application/connect+json", BEARER,
    )  # fmt: skip
    assert answer.status == 200 and answer.headers["content-type"] == "application/connect+json"
    *events, (end_flags, end) = unframe(answer.body)
    assert (end_flags, end) == (2, {})  # the end-of-stream message: no error
    assert sorted(int(event["userId"]) for _, event in events) == sorted(riders)
    assert [event["done"] for _, event in events] == ["1", "2"]


def test_grpc_over_http1_is_refused_with_the_reason(http: str) -> None:
    answer = curl(method_url(http, "GetTicketCache"), b"\0\0\0\0\0", "Content-Type: application/grpc", BEARER)
    assert answer.status == 505 and b"gRPC needs HTTP/2" in answer.body


@pytest_asyncio.fixture(params=[ProtocolType.CONNECT, ProtocolType.GRPC_WEB, ProtocolType.GRPC])
async def connect_client(
    request: pytest.FixtureRequest, http: str
) -> AsyncIterator[TicketCacheServiceClient]:
    """connectrpc's Python client, in each protocol; gRPC needs HTTP/2 (prior knowledge here)."""
    transport = HTTPTransport(http_version=HTTPVersion.HTTP2) if request.param is ProtocolType.GRPC else None
    client = Client(transport) if transport else None
    async with TicketCacheServiceClient(f"http://{http}", protocol=request.param, http_client=client) as stub:
        yield stub


async def test_connect_grpc_web_and_grpc_clients_call_streams_and_see_error_codes(
    connect_client: TicketCacheServiceClient, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox, passes=2, expired=0)
    headers = {"authorization": f"Bearer {TOKEN}"}
    built = await connect_client.build_ticket_cache(
        pb.BuildTicketCacheRequest(user_id=user_id), headers=headers
    )
    assert built.result.outcome == pb.OUTCOME_BUILT

    cache = await connect_client.get_ticket_cache(pb.GetTicketCacheRequest(user_id=user_id), headers=headers)
    assert len(cache.cache.passes) == 2

    events = [
        event
        async for event in connect_client.refresh_stale_caches(
            pb.RefreshStaleCachesRequest(user_ids=[user_id], max_age_seconds=3600), headers=headers
        )
    ]
    assert [(e.done, e.total, e.result.outcome) for e in events] == [(1, 1, pb.OUTCOME_FRESH)]

    with pytest.raises(ConnectError) as refused:
        await connect_client.get_ticket_cache(pb.GetTicketCacheRequest(user_id=user_id))
    assert refused.value.code is Code.UNAUTHENTICATED
    infos = [d for d in refused.value.details if d.type_name == "google.rpc.ErrorInfo"]
    assert [error_details_pb2.ErrorInfo.FromString(d.message_bytes).reason for d in infos] == [
        "UNAUTHENTICATED"
    ]


async def test_watch_changes_streams_a_removed_pass_as_it_is_written(
    server: ServerProcess, sandbox: SandboxProcess, http: str
) -> None:
    headers = {"authorization": f"Bearer {TOKEN}"}
    user_id = server.seed_user(sandbox, passes=2, expired=0)
    async with TicketCacheServiceClient(f"http://{http}") as client:
        await client.build_ticket_cache(pb.BuildTicketCacheRequest(user_id=user_id), headers=headers)
        watch = client.watch_changes(pb.WatchChangesRequest(user_ids=[user_id]), headers=headers)
        try:
            assert not (await anext(watch)).events  # from now: the stream opens with its cursor
            remove_one_pass(sandbox, user_id)
            await client.update_ticket_cache(pb.UpdateTicketCacheRequest(user_id=user_id), headers=headers)
            changed = await anext(watch)
            while not changed.events:  # batches with only a newer cursor may come first
                changed = await anext(watch)
        finally:
            await watch.aclose()
    assert [(e.user_id, e.kind) for e in changed.events] == [(user_id, pb.CHANGE_KIND_REMOVED)]


def test_calls_on_the_http_port_are_counted_by_method_code_and_protocol(
    server: ServerProcess, http: str
) -> None:
    curl(method_url(http, "GetTicketCache"), b'{"user_id": 0}', JSON, BEARER)
    with urllib.request.urlopen(f"http://{server.env['METRICS_LISTEN']}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert (
        'http_rpc_server_handled_total{grpc_code="INVALID_ARGUMENT",'
        'grpc_method="/bytemark.ticketcache.v1.TicketCacheService/GetTicketCache",protocol="connect"}'
    ) in text
    assert 'grpc_code="UNAUTHENTICATED"' in text.split("http_rpc_server_handled_total", 1)[1]


def test_a_connect_timeout_bounds_the_call_as_a_grpc_deadline_does(
    http: str, server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user_id = server.seed_user(sandbox)
    sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": 3000})
    try:
        body = json.dumps({"user_id": user_id}).encode()
        late = curl(method_url(http, "CheckTicketCache"), body, JSON, BEARER, "Connect-Timeout-Ms: 300")
    finally:
        sandbox.call("PATCH", "/_sandbox/config", {"latency_ms": 0})
    assert (late.status, late.json()["code"]) == (504, "deadline_exceeded")


def test_with_the_grpc_ports_mutual_tls_the_http_port_asks_for_the_client_certificate_too(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    pems = write_tls_files(work_dir, "http", "http-client")
    own = start_server(
        sandbox, work_dir, HTTP_LISTEN=f"127.0.0.1:{free_port()}",
        GRPC_TLS_CERT_FILE=str(pems["server-cert"]), GRPC_TLS_KEY_FILE=str(pems["server-key"]),
        GRPC_TLS_CLIENT_CA_FILE=str(pems["client-ca"]),
    )  # fmt: skip
    url = f"https://{own.env['HTTP_LISTEN']}/{SERVICE}/GetTicketCache"
    trust = ["--cacert", str(pems["ca"])]
    try:
        identified = trust + ["--cert", str(pems["client-cert"]), "--key", str(pems["client-key"])]
        answer = curl(url, b'{"user_id": 987654321}', JSON, options=identified)
        anonymous = subprocess.run(
            ["curl", "-sS", *trust, "-H", JSON, "-d", "{}", url], capture_output=True, timeout=60
        )
    finally:
        own.stop()
    assert (answer.http_version, answer.status, answer.json()["code"]) == ("HTTP/2", 404, "not_found")
    assert anonymous.returncode != 0 and not anonymous.stdout  # refused in the TLS handshake


async def test_shutdown_ends_an_open_http_stream_with_unavailable_and_the_process_exits_cleanly(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    own = start_server(
        sandbox, work_dir, HTTP_LISTEN=f"127.0.0.1:{free_port()}", GRPC_SHUTDOWN_GRACE_SECONDS="5"
    )
    try:
        async with TicketCacheServiceClient(f"http://{own.env['HTTP_LISTEN']}") as client:
            watch = client.watch_changes(pb.WatchChangesRequest())
            await anext(watch)  # open: the first batch carries the cursor
            own.proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectError) as ended:
                while True:
                    await anext(watch)
        assert ended.value.code is Code.UNAVAILABLE
        assert "watch again from the last cursor" in ended.value.message
        assert own.proc.wait(timeout=15) == 0
        assert "Traceback" not in own.logs()
    finally:
        own.stop()


def test_a_busy_http_port_stops_the_start_with_the_reason(sandbox: SandboxProcess, work_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        refused = start_server(sandbox, work_dir, wait_ready=False, HTTP_LISTEN=address)
        assert refused.proc.wait(timeout=60) == 1
    assert f"error: cannot serve HTTP on {address} (HTTP_LISTEN; is the port in use?)" in refused.logs()
    assert "Traceback" not in refused.logs()
