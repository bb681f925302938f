"""Security of a real server process: the settings switch on bearer auth, TLS and mutual TLS
(their full matrix is in tests/adapters/driving/grpc_api/test_security.py), tokens are encrypted at
rest, and no secret appears anywhere in the output of a full session at DEBUG."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bytemark.ticketcache.v1 import ticket_cache_pb2 as pb
from bytemark.ticketcache.v1 import ticket_cache_pb2_grpc as pb_grpc
from devtools.harness import SERVICE, SandboxProcess, ServerProcess, grpcurl, start_server
from tests.e2e.slack_stand_in import SlackStandIn
from tests.e2e.tls_files import write_tls_files

AUTH_TOKEN = "e2e-auth-token-7f3a9c2b41d8"
CALL_TIMEOUT = 10.0


# --- (a) bearer auth, switched on by GRPC_AUTH_TOKEN ------------------------------------------
# Every RPC, every kind of bad credentials: tests/adapters/driving/grpc_api/test_security.py.


@pytest.fixture(scope="module")
def authed_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, GRPC_AUTH_TOKEN=AUTH_TOKEN)
    yield process
    process.stop()


def test_with_grpc_auth_token_set_calls_need_it_but_health_does_not(authed_server: ServerProcess) -> None:
    with grpc.insecure_channel(authed_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        stub = pb_grpc.TicketCacheServiceStub(channel)
        with pytest.raises(grpc.RpcError) as anonymous_purge:
            stub.PurgeOrphanedCaches(pb.PurgeOrphanedCachesRequest(dry_run=True), timeout=CALL_TIMEOUT)
        purge = stub.PurgeOrphanedCaches(
            pb.PurgeOrphanedCachesRequest(dry_run=True),
            metadata=(("authorization", f"Bearer {AUTH_TOKEN}"),),
            timeout=CALL_TIMEOUT,
        )
    anonymous = grpcurl("-plaintext", authed_server.address, "list")
    authorized = grpcurl(
        "-plaintext", "-H", f"authorization: Bearer {AUTH_TOKEN}", authed_server.address, "list"
    )

    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert anonymous_purge.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert AUTH_TOKEN not in (anonymous_purge.value.details() or "")
    assert purge.dry_run
    assert anonymous.returncode != 0 and "Unauthenticated" in anonymous.stderr
    assert authorized.returncode == 0 and SERVICE in authorized.stdout


# --- (b) TLS and mutual TLS, switched on by GRPC_TLS_* ----------------------------------------
# Plaintext, untrusting and stranger clients refused: tests/adapters/driving/grpc_api/test_security.py.


@pytest.fixture(scope="module")
def cert_files(work_dir: Path) -> dict[str, Path]:
    return write_tls_files(work_dir, "tls", "batch-job@example.internal")


@pytest.fixture(scope="module")
def tls_server(
    sandbox: SandboxProcess, work_dir: Path, cert_files: dict[str, Path]
) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        GRPC_TLS_CERT_FILE=str(cert_files["server-cert"]),
        GRPC_TLS_KEY_FILE=str(cert_files["server-key"]),
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def mtls_server(
    sandbox: SandboxProcess, work_dir: Path, cert_files: dict[str, Path]
) -> Iterator[ServerProcess]:
    process = start_server(
        sandbox,
        work_dir,
        GRPC_TLS_CERT_FILE=str(cert_files["server-cert"]),
        GRPC_TLS_KEY_FILE=str(cert_files["server-key"]),
        GRPC_TLS_CLIENT_CA_FILE=str(cert_files["client-ca"]),
    )
    yield process
    process.stop()


def test_grpcurl_with_the_ca_certificate_talks_to_the_tls_server(
    tls_server: ServerProcess, cert_files: dict[str, Path]
) -> None:
    done = grpcurl(
        "-cacert",
        str(cert_files["ca"]),
        "-d",
        '{"dry_run": true}',
        tls_server.address,
        f"{SERVICE}/PurgeOrphanedCaches",
    )
    plaintext = grpcurl("-plaintext", "-connect-timeout", "2", tls_server.address, "list")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) in ({"dry_run": True}, {"dryRun": True})
    assert plaintext.returncode != 0


def test_with_a_client_ca_set_grpcurl_with_a_certificate_from_it_is_served(
    mtls_server: ServerProcess, cert_files: dict[str, Path]
) -> None:
    served = grpcurl(
        "-cacert",
        str(cert_files["ca"]),
        "-cert",
        str(cert_files["client-cert"]),
        "-key",
        str(cert_files["client-key"]),
        mtls_server.address,
        "list",
    )
    refused = grpcurl("-cacert", str(cert_files["ca"]), "-connect-timeout", "2", mtls_server.address, "list")

    assert served.returncode == 0 and SERVICE in served.stdout, served.stderr
    assert refused.returncode != 0


# --- (c) tokens encrypted at rest -----------------------------------------------------------

ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def encrypting_server(sandbox: SandboxProcess, work_dir: Path) -> Iterator[ServerProcess]:
    process = start_server(sandbox, work_dir, TOKEN_ENCRYPTION_KEY=ENCRYPTION_KEY)
    yield process
    process.stop()


def store_bytes(server: ServerProcess) -> bytes:
    """The SQLite file and its write-ahead log, as a reader of the disk would see them."""
    paths = [server.sqlite_path, Path(f"{server.sqlite_path}-wal")]
    return b"".join(path.read_bytes() for path in paths if path.exists())


def test_a_legacy_plaintext_token_is_read_and_stored_encrypted_after_a_refresh(
    encrypting_server: ServerProcess, sandbox: SandboxProcess
) -> None:
    user = encrypting_server.seed_user(sandbox)  # plaintext row, as the old service wrote it
    select = "SELECT token, refresh_token FROM bytemark_tokens WHERE user_id = ?"
    legacy = encrypting_server.query(select, (user,))
    sandbox.call("POST", f"/_sandbox/users/{user}/expire-token")
    with grpc.insecure_channel(encrypting_server.address) as channel:
        stub = pb_grpc.TicketCacheServiceStub(channel)
        first = stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user), timeout=CALL_TIMEOUT)
        rows = encrypting_server.query(
            "SELECT token, refresh_token FROM bytemark_tokens WHERE user_id = ?", (user,)
        )
        renewed = sandbox.call("GET", f"/_sandbox/users/{user}")
        sandbox.call("POST", "/_sandbox/stats/reset")
        second = stub.CheckTicketCache(pb.CheckTicketCacheRequest(user_id=user), timeout=CALL_TIMEOUT)
    stats = sandbox.stats()

    assert legacy[0][0].startswith("sandbox-access-")
    assert first.result.outcome == pb.OUTCOME_BUILT
    assert len(rows) == 1
    token, refresh_token = rows[0]
    assert token.startswith("enc:v1:") and refresh_token.startswith("enc:v1:")
    on_disk = store_bytes(encrypting_server)
    for plaintext in (renewed["access_token"], renewed["refresh_token"]):
        assert plaintext.encode() not in on_disk
        assert plaintext not in token + refresh_token
    # The second check decrypts the stored token and uses it without another refresh.
    assert second.result.outcome == pb.OUTCOME_UNCHANGED
    assert stats["endpoints"].get("token", 0) == 0, stats


# --- (d) a full session leaks no secret -------------------------------------------------------


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    yield stand_in
    stand_in.stop()


SLACK_TOKEN = "xoxb-e2e-1234567890-abcdefSLACKsecret"
SESSION_AUTH_TOKEN = "session-auth-9d8c7b6a5f4e"
SESSION_ENCRYPTION_KEY = base64.b64encode(os.urandom(32)).decode()
CLIENT_SECRET = "sandbox-secret"  # what the sandbox accepts; the harness passes it


def test_a_full_session_at_debug_level_prints_no_secret_and_notifies_slack_once_each(
    sandbox: SandboxProcess, work_dir: Path, slack: SlackStandIn
) -> None:
    server = start_server(
        sandbox,
        work_dir,
        LOG_LEVEL="DEBUG",
        BYTEMARK_CLIENT_SECRET=CLIENT_SECRET,
        GRPC_AUTH_TOKEN=SESSION_AUTH_TOKEN,
        TOKEN_ENCRYPTION_KEY=SESSION_ENCRYPTION_KEY,
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        SLACK_CHANNEL_ID="C0E2E",
        SLACK_API_URL=slack.url,
        # the explicit Check below leaves the failing rider FAILING; a bulk run skips it until
        # its backoff ends, so keep that short enough to wait out
        SYNC_BACKOFF_BASE_SECONDS="1",
        SYNC_BACKOFF_MAX_SECONDS="1",
    )
    try:
        first = sandbox.create_user(passes=3, expired=1)
        failing = sandbox.create_user(passes=1, expired=0)
        for creds in (first, failing):
            server.seed_token(int(creds["user_id"]), creds["access_token"], creds["refresh_token"])
        user, failing_user = int(first["user_id"]), int(failing["user_id"])
        metadata = (("authorization", f"Bearer {SESSION_AUTH_TOKEN}"),)
        with grpc.insecure_channel(server.address) as channel:
            stub = pb_grpc.TicketCacheServiceStub(channel)
            built = stub.BuildTicketCache(
                pb.BuildTicketCacheRequest(user_id=user), metadata=metadata, timeout=CALL_TIMEOUT
            )
            sandbox.call("POST", f"/_sandbox/users/{user}/expire-token")
            sandbox.call("POST", f"/_sandbox/users/{user}/passes", {"free": True})
            updated = stub.UpdateTicketCache(
                pb.UpdateTicketCacheRequest(user_id=user), metadata=metadata, timeout=CALL_TIMEOUT
            )
            sandbox.add_faults({"endpoint": "v1", "kind": "500", "times": -1, "user_id": failing_user})
            with pytest.raises(grpc.RpcError) as unauthenticated:
                stub.GetTicketCache(
                    pb.GetTicketCacheRequest(user_id=user),
                    metadata=(("authorization", f"Bearer {SESSION_AUTH_TOKEN[:-1]}"),),
                    timeout=CALL_TIMEOUT,
                )
            time.sleep(2.1)  # past the failing rider's 1 s backoff (epoch seconds)
            events = list(
                stub.RefreshStaleCaches(
                    pb.RefreshStaleCachesRequest(user_ids=[user, failing_user], max_age_seconds=1),
                    metadata=metadata,
                    timeout=60,
                )
            )
            # After the bulk run: the failure puts the rider in backoff, which the run would skip.
            with pytest.raises(grpc.RpcError) as failed_call:
                stub.CheckTicketCache(
                    pb.CheckTicketCacheRequest(user_id=failing_user), metadata=metadata, timeout=CALL_TIMEOUT
                )
            sandbox.clear_faults()
        renewed = sandbox.call("GET", f"/_sandbox/users/{user}")
    finally:
        server.stop()  # flushes everything the process printed
    output = server.logs()

    assert built.result.outcome == pb.OUTCOME_BUILT
    assert updated.result.counts.new_free == 1
    assert failed_call.value.code() == grpc.StatusCode.UNAVAILABLE
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert sorted(e.WhichOneof("event") for e in events) == ["error", "result"]
    assert renewed["access_token"] != first["access_token"]  # the update did refresh the token

    secrets = {
        "old access token": first["access_token"],
        "old refresh token": first["refresh_token"],
        "new access token": renewed["access_token"],
        "new refresh token": renewed["refresh_token"],
        "failing user's access token": failing["access_token"],
        "failing user's refresh token": failing["refresh_token"],
        "client secret": CLIENT_SECRET,
        "Slack token": SLACK_TOKEN,
        "gRPC auth token": SESSION_AUTH_TOKEN,
        "encryption key": SESSION_ENCRYPTION_KEY,
    }
    assert len(output.splitlines()) > 50  # DEBUG really was on: the check is not vacuous
    assert [name for name, secret in secrets.items() if secret in output] == []
    # Not even a recognisable piece of one (e.g. a token cut by a formatter).
    assert [name for name, secret in secrets.items() if secret[-12:] in output] == []

    texts = [message.get("text", "") for message in slack.messages]
    free_notices = [t for t in texts if "Free ticket" in t]
    summaries = [t for t in texts if "Bulk run" in t]
    assert len(free_notices) == 1 and str(user) in free_notices[0]
    assert len(summaries) == 1 and "1 failed" in summaries[0]
    assert len(texts) == 2
    assert slack.authorizations and set(slack.authorizations) == {f"Bearer {SLACK_TOKEN}"}
    assert not any(secret in text for text in texts for secret in secrets.values())
