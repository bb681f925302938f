"""Scoped, rotatable credentials in a real `serve`: GRPC_AUTH_TOKENS_FILE's `read` tokens are
refused on operate methods (unary and streaming), a rewritten file takes effect without a restart
(old and new tokens both work during the overlap), a file that does not parse keeps the last good
set, and with mutual TLS a client certificate's SAN grants the scope the file maps it to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SandboxProcess, ServerProcess, free_port, start_server, wait_until
from tests.e2e.http_calls import curl, method_url
from tests.e2e.tls_files import write_tls_files

READER = "e2e-reader-token-41c7a0"
OPERATOR = "e2e-operator-token-9d2e55"
NEXT_OPERATOR = "e2e-operator-token-next-07b3f1"
SINGLE_TOKEN = "e2e-single-token-c0ffee"
CLIENT_NAME = "dashboard.example.internal"
CALL_TIMEOUT = 10.0
POLL = {"GRPC_AUTH_TOKENS_POLL_SECONDS": "0.2"}


def purge(stub: pb_grpc.TicketCacheServiceStub, token: str | None = None) -> grpc.StatusCode:
    """An operate-scope unary call (a dry run: it changes nothing)."""
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    try:
        stub.PurgeOrphanedCaches(
            pb.PurgeOrphanedCachesRequest(dry_run=True), metadata=metadata, timeout=CALL_TIMEOUT
        )
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


@pytest.fixture(scope="module")
def tokens_file(work_dir: Path) -> Path:
    path = work_dir / "scoped-tokens"
    path.write_text(f"# dashboards read, the operator refreshes\nread {READER}\n\noperate {OPERATOR}\n")
    return path


@pytest.fixture(scope="module")
def scoped_server(sandbox: SandboxProcess, work_dir: Path, tokens_file: Path) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        GRPC_AUTH_TOKENS_FILE=str(tokens_file),
        GRPC_AUTH_TOKEN=SINGLE_TOKEN,
        HTTP_LISTEN=f"127.0.0.1:{free_port()}",
        **POLL,
    )
    yield process
    process.stop()


def test_a_read_token_reads_but_is_refused_on_operate_methods_unary_and_streaming(
    scoped_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    rider = scoped_server.seed_user(sandbox, passes=2, expired=0)
    as_reader = (("authorization", f"Bearer {READER}"),)
    as_operator = (("authorization", f"Bearer {OPERATOR}"),)
    with grpc.insecure_channel(scoped_server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        stub.BuildTicketCache(pb.BuildTicketCacheRequest(user_id=rider), metadata=as_operator, timeout=30)
        read = stub.GetTicketCache(pb.GetTicketCacheRequest(user_id=rider), metadata=as_reader, timeout=30)
        with pytest.raises(grpc.RpcError) as unary:
            stub.PurgeOrphanedCaches(
                pb.PurgeOrphanedCachesRequest(dry_run=True), metadata=as_reader, timeout=CALL_TIMEOUT
            )
        with pytest.raises(grpc.RpcError) as streaming:
            for _ in stub.RefreshStaleCaches(
                pb.RefreshStaleCachesRequest(user_ids=[rider]), metadata=as_reader, timeout=CALL_TIMEOUT
            ):
                pass
        single = purge(stub, SINGLE_TOKEN)

    assert len(read.cache.passes) == 2
    for refused in (unary.value, streaming.value):
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "needs the `operate` scope" in refused.details() and READER not in refused.details()
    assert single == grpc.StatusCode.OK  # GRPC_AUTH_TOKEN stays an operate token beside the file


def test_rotation_by_rewriting_the_file_overlaps_then_retires_the_old_token(
    sandbox: SandboxProcess, work_dir: Path
) -> None:
    path = work_dir / "rotated-tokens"
    path.write_text(f"operate {OPERATOR}\n")
    server = start_server(sandbox, work_dir, GRPC_AUTH_TOKENS_FILE=str(path), **POLL)
    try:
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            before = purge(stub, NEXT_OPERATOR)
            path.write_text(f"operate {OPERATOR}\noperate {NEXT_OPERATOR}\n")
            wait_until(lambda: purge(stub, NEXT_OPERATOR) == grpc.StatusCode.OK, 30, "overlap", server.proc)
            overlap_old = purge(stub, OPERATOR)
            path.write_text(f"operate {NEXT_OPERATOR}\n")
            wait_until(lambda: purge(stub, OPERATOR) != grpc.StatusCode.OK, 30, "retirement", server.proc)
            retired, kept = purge(stub, OPERATOR), purge(stub, NEXT_OPERATOR)

            path.write_text(f"operate {OPERATOR}\nsuperuser {NEXT_OPERATOR}\n")  # does not parse
            wait_until(lambda: "not reloaded" in server.logs(), 30, "the refused reload", server.proc)
            after_bad = purge(stub, NEXT_OPERATOR), purge(stub, OPERATOR)
    finally:
        server.stop()

    assert before == grpc.StatusCode.UNAUTHENTICATED
    assert overlap_old == grpc.StatusCode.OK
    assert (retired, kept) == (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OK)
    assert after_bad == (grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED)  # the last good set
    logs = server.logs()
    assert "line 2: the scope must be `read` or `operate`" in logs
    assert OPERATOR not in logs and NEXT_OPERATOR not in logs


@pytest.fixture(scope="module")
def pems(work_dir: Path) -> dict[str, Path]:
    return write_tls_files(work_dir, "scoped", CLIENT_NAME)


def test_with_mutual_tls_a_certificate_san_grants_its_mapped_scope(
    sandbox: SandboxProcess, work_dir: Path, pems: dict[str, Path]
) -> None:
    path = work_dir / "san-tokens"
    path.write_text(f"read san:{CLIENT_NAME}\noperate {OPERATOR}\n")
    server = start_server(
        sandbox,
        work_dir,
        GRPC_TLS_CERT_FILE=str(pems["server-cert"]),
        GRPC_TLS_KEY_FILE=str(pems["server-key"]),
        GRPC_TLS_CLIENT_CA_FILE=str(pems["client-ca"]),
        GRPC_AUTH_TOKENS_FILE=str(path),
        **POLL,
    )
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pems["ca"].read_bytes(),
        private_key=pems["client-key"].read_bytes(),
        certificate_chain=pems["client-cert"].read_bytes(),
    )
    try:
        with grpc.secure_channel(server.address, credentials) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            try:
                stub.GetSyncStatus(pb.GetSyncStatusRequest(user_id=987654), timeout=CALL_TIMEOUT)
                read = grpc.StatusCode.OK
            except grpc.RpcError as error:
                read = error.code()
            by_name, with_token = purge(stub), purge(stub, OPERATOR)
            path.write_text(f"operate {OPERATOR}\n")  # the name is unmapped: the certificate alone is refused
            wait_until(lambda: purge(stub) == grpc.StatusCode.UNAUTHENTICATED, 30, "unmapping", server.proc)
    finally:
        server.stop()

    assert read == grpc.StatusCode.NOT_FOUND  # got past auth to the handler: no such rider
    assert by_name == grpc.StatusCode.PERMISSION_DENIED
    assert with_token == grpc.StatusCode.OK


def test_the_http_port_grants_the_same_scopes(scoped_server: ServerProcess) -> None:
    http = scoped_server.env["HTTP_LISTEN"]
    json_type = "Content-Type: application/json"
    purge = method_url(http, "PurgeOrphanedCaches")

    as_reader = curl(purge, b'{"dry_run": true}', json_type, f"Authorization: Bearer {READER}")
    as_operator = curl(purge, b'{"dry_run": true}', json_type, f"Authorization: Bearer {OPERATOR}")
    read = curl(
        method_url(http, "GetSyncStatus"),
        b'{"user_id": 987654}',
        json_type,
        f"Authorization: Bearer {READER}",
    )

    assert (as_reader.status, as_reader.json()["code"]) == (403, "permission_denied")
    assert (
        "needs the `operate` scope" in as_reader.json()["message"] and READER not in as_reader.body.decode()
    )
    assert as_operator.status == 200 and as_operator.json().get("dryRun") is True
    assert (read.status, read.json()["code"]) == (404, "not_found")  # past auth, to the handler
